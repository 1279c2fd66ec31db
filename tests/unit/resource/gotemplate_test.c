/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the Go text/template subset in lib/resource/gotemplate.c: Go's
 * parse error messages, whitespace trimming and rendering through a lookup. */
#include "resource/gotemplate.h"

#include "../test.h"

static const char *const funcs[] = {"label", NULL};

/* "" when <text> parses, else the message */
static const char *parse_err(struct km_arena *a, const char *text)
{
	struct km_gotemplate *t;
	const char *err = NULL;
	if (km_gotemplate_parse(a, "", km_str_c(text), funcs, &t, &err) == 0)
		return "";
	return err;
}

static const char *lookup(void *ctx, enum km_gotemplate_ref kind, struct km_str name,
			  const struct km_str *args, size_t nargs, struct km_str *value)
{
	struct km_arena *a = ctx;
	if (kind == KM_GOTEMPLATE_FIELD) {
		if (km_str_eqc(name, "Mesh"))
			*value = KM_STR("default");
		else if (km_str_eqc(name, "Zone"))
			*value = KM_STR("zone-1");
		else if (km_str_eqc(name, "Empty"))
			*value = KM_STR("");
		else
			return km_arena_printf(
				a, "can't evaluate field %.*s in type struct { Mesh string }",
				KM_STR_FMT(name));
		return NULL;
	}
	if (!km_str_eqc(name, "label"))
		return "no such function";
	if (nargs != 1)
		return "wrong number of args";
	if (km_str_eqc(args[0], "missing"))
		return "label \"missing\" not found";
	*value = km_str_eqc(args[0], "default") ? KM_STR("from-pipe") : (struct km_str){"web", 3};
	return NULL;
}

/* rendered text, or the error message */
static const char *render(struct km_arena *a, const char *text)
{
	struct km_gotemplate *t;
	const char *err = NULL;
	if (km_gotemplate_parse(a, "", km_str_c(text), funcs, &t, &err) != 0)
		return err;
	struct km_buf b = KM_BUF_INIT;
	const char *res;
	if (km_gotemplate_render(t, lookup, a, &b, &err) == 0)
		res = km_arena_strdup(a, km_buf_cstr(&b));
	else
		res = err;
	km_buf_fini(&b);
	return res;
}

int main(void)
{
	struct km_arena *a = km_arena_new(0);

	/* the cases upstream's MeshIdentity validator tests */
	CHECK_STREQ(parse_err(a, "{{ .Mesh|1 }}.{ .Zone|2 }.mesh.local"),
		    "template: :1: non executable command in pipeline stage 2");
	CHECK_STREQ(parse_err(a, "/ns/{{ .Namespace|invalid }}/sa/{{ .ServiceAccount }}"),
		    "template: :1: function \"invalid\" not defined");
	CHECK_STREQ(parse_err(a, "{{ .Mesh }}.{{ .Zone }}.mesh.local"), "");
	CHECK_STREQ(parse_err(a, "/ns/.Namespace/sa/{ .ServiceAccount|2 }"), "");

	/* lexer errors */
	CHECK_STREQ(parse_err(a, "{{ .Mesh "), "template: :1: unclosed action");
	CHECK_STREQ(parse_err(a, "{{ \"abc }}"), "template: :1: unterminated quoted string");
	CHECK_STREQ(parse_err(a, "{{ `abc }}"), "template: :1: unterminated raw quoted string");
	CHECK_STREQ(parse_err(a, "{{ .A@ }}"), "template: :1: bad character U+0040 '@'");
	CHECK_STREQ(parse_err(a, "{{ 3.x }}"), "template: :1: bad number syntax: \"3.x\"");
	CHECK_STREQ(parse_err(a, "{{ ) }}"), "template: :1: unexpected right paren");
	CHECK_STREQ(parse_err(a, "{{ (.A }}"), "template: :1: unclosed left paren");
	CHECK_STREQ(parse_err(a, "{{/* x "), "template: :1: unclosed comment");
	CHECK_STREQ(parse_err(a, "{{/* x */ .A }}"),
		    "template: :1: comment ends before closing delimiter");
	CHECK_STREQ(parse_err(a, "{{ .A }}\n{{ .B"), "template: :2: unclosed action");

	/* parser errors */
	CHECK_STREQ(parse_err(a, "{{ }}"), "template: :1: missing value for command");
	CHECK_STREQ(parse_err(a, "{{ .A } }}"), "template: :1: unexpected \"}\" in operand");
	CHECK_STREQ(parse_err(a, "{{ /* c */ }}"), "template: :1: unexpected \"/\" in command");
	CHECK_STREQ(parse_err(a, "{{ $x }}"), "template: :1: undefined variable \"$x\"");
	CHECK_STREQ(parse_err(a, "{{ end }}"), "template: :1: unexpected {{end}}");
	CHECK_STREQ(parse_err(a, "{{ if .A }}x"), "template: :1: unexpected EOF");
	CHECK_STREQ(parse_err(a, "{{ break }}"), "template: :1: {{break}} outside {{range}}");
	CHECK_STREQ(parse_err(a, "{{ \"a\".b }}"),
		    "template: :1: unexpected . after term \"\\\"a\\\"\"");
	CHECK_STREQ(parse_err(a, "{{ .A | \"x\" }}"),
		    "template: :1: non executable command in pipeline stage 2");
	CHECK_STREQ(parse_err(a, "{{ .A | | label }}"),
		    "template: :1: unexpected \"|\" in command");
	CHECK_STREQ(parse_err(a, "{{ .A . }}"), "");
	CHECK_STREQ(parse_err(a, "{{ printf \"%s\" .A }}{{ template \"x\" }}"), "");
	CHECK_STREQ(parse_err(a, "{{ if .A }}a{{ else if .B }}b{{ else }}c{{ end }}"), "");
	CHECK_STREQ(parse_err(a, "{{ range $i, $v := .A }}{{ $v }}{{ break }}{{ end }}"), "");
	CHECK_STREQ(parse_err(a, "{{ $x := .A }}{{ $x }}"), "");
	CHECK_STREQ(parse_err(a, "{{ with .A }}x{{ else }}y{{ else }}z{{ end }}"),
		    "template: :1: expected end; found {{else}}");
	CHECK_STREQ(parse_err(a, "{{ \"\\q\" }}"), "template: :1: invalid syntax");
	CHECK_STREQ(parse_err(a, "{{ define \"x\" }}y{{ end }}z"), "");

	/* Go's own parse error table (text/template/parse errorTests) */
	CHECK_STREQ(parse_err(a, "line1\n{{"), "template: :2: unclosed action");
	CHECK_STREQ(parse_err(a, "line1\n{{\"x\"\n\"y\"\n"),
		    "template: :4: unclosed action started at :2");
	CHECK_STREQ(parse_err(a, "{{\n\n\n\n\n"), "template: :6: unclosed action started at :1");
	CHECK_STREQ(parse_err(a, "line1\n{{\nx\n}}"), "template: :3: function \"x\" not defined");
	CHECK_STREQ(parse_err(a, "{{/*}}"), "template: :1: unclosed comment");
	CHECK_STREQ(parse_err(a, "{{/*\nhello\n}}"), "template: :1: unclosed comment");
	CHECK_STREQ(parse_err(a, "{{.X (1 2 3}}"), "template: :1: unclosed left paren");
	CHECK_STREQ(parse_err(a, "{{.X 1 2 3 ) }}"), "template: :1: unexpected right paren");
	CHECK_STREQ(parse_err(a, "{{(.X 1 2 3"), "template: :1: unclosed action");
	CHECK_STREQ(parse_err(a, "{{`x`3}}"), "template: :1: unexpected \"3\" in operand");
	CHECK_STREQ(parse_err(a, "{{a#}}"), "template: :1: bad character U+0023 '#'");
	CHECK_STREQ(parse_err(a, "{{'a}}"), "template: :1: unterminated character constant");
	CHECK_STREQ(parse_err(a, "{{0xi}}"), "template: :1: illegal number syntax: \"0xi\"");
	CHECK_STREQ(parse_err(a, "{{range .X}}"), "template: :1: unexpected EOF");
	CHECK_STREQ(parse_err(a, "{{$x := 23}}{{with $x.y := 3}}{{$x 23}}{{end}}"),
		    "template: :1: unexpected \":=\" in operand");
	CHECK_STREQ(parse_err(a, "{{$a,$b,$c := 23}}"),
		    "template: :1: too many declarations in command");
	CHECK_STREQ(parse_err(a, "{{$a}}"), "template: :1: undefined variable \"$a\"");
	CHECK_STREQ(parse_err(a, "{{true.any}}"), "template: :1: unexpected . after term \"true\"");
	CHECK_STREQ(parse_err(a, "{{12|false}}"),
		    "template: :1: non executable command in pipeline stage 2");
	CHECK_STREQ(parse_err(a, "{{ ( ) }}"),
		    "template: :1: missing value for parenthesized pipeline");
	CHECK_STREQ(parse_err(a, "{{ $v := `\n` }} {{"), "template: :2: unclosed action");
	CHECK_STREQ(parse_err(a, "{{range $k}}{{end}}"), "template: :1: undefined variable \"$k\"");
	CHECK_STREQ(parse_err(a, "{{range $k,}}{{end}}"), "template: :1: missing value for range");
	CHECK_STREQ(parse_err(a, "{{range $k, $v := }}{{end}}"),
		    "template: :1: missing value for range");
	CHECK_STREQ(parse_err(a, "{{range $k, .}}{{end}}"),
		    "template: :1: range can only initialize variables");
	CHECK_STREQ(parse_err(a, "{{1.E}}"), "template: :1: illegal number syntax: \"1.E\"");
	CHECK_STREQ(parse_err(a, "{{ 0x1F }}{{ 1_000 }}{{ -2.5e3 }}{{ 'a' }}{{ 0x1p-2 }}"), "");
	CHECK_STREQ(parse_err(a, "{{block \"foo\"}}hello{{end}}"),
		    "template: :1: missing value for block clause");

	/* rendering */
	CHECK_STREQ(render(a, "{{ .Mesh }}.{{ .Zone }}.mesh.local"), "default.zone-1.mesh.local");
	CHECK_STREQ(render(a, "{{.Mesh}}"), "default");
	CHECK_STREQ(render(a, "a {{- .Mesh -}} \n b"), "adefaultb");
	CHECK_STREQ(render(a, "a {{-.Mesh}} b"), "template: :1: bad number syntax: \"-.M\"");
	CHECK_STREQ(render(a, "{{ label \"app\" }}/x"), "web/x");
	CHECK_STREQ(render(a, "{{ .Mesh | label }}"), "from-pipe");
	CHECK_STREQ(render(a, "{{ (label \"app\") }}-{{ 7 }}-{{ \"s\\tq\" }}"), "web-7-s\tq");
	CHECK_STREQ(render(a, "x{{/* comment */}}y{{- /* trimmed */ -}} z"), "xyz");
	CHECK_STREQ(render(a, "{{ .Empty }}"), "");
	CHECK_STREQ(render(a, "no actions"), "no actions");
	CHECK_STREQ(render(a, ""), "");
	CHECK_STREQ(render(a, "{{ .Bad }}"),
		    "template: :1:3: executing \"\" at <.Bad>: can't evaluate field Bad in type "
		    "struct { Mesh string }");
	CHECK_STREQ(render(a, "ab{{ label \"missing\" }}"),
		    "template: :1:5: executing \"\" at <label>: error calling label: label "
		    "\"missing\" not found");
	CHECK_STREQ(render(a, "{{ .Mesh \"x\" }}"),
		    "template: :1:3: executing \"\" at <.Mesh>: Mesh has arguments but cannot be "
		    "invoked as function");
	CHECK(strstr(render(a, "{{ if .A }}x{{ end }}"), "not supported") != NULL);

	km_arena_free(a);
	return test_summary();
}
