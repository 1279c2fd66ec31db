/* SPDX-License-Identifier: Apache-2.0 */
/* kumactl apply helpers: upstream's SplitYAML rules and the mustache-style
 * {{ var }} rendering (dotted names, HTML escaping, unknown = empty), checked
 * on upstream's apply template files. */
#include "../test.h"
#include "codec/yaml.h"
#include "ctl/ctl.h"
#include "ctl_test_util.h"

static struct km_arena *A;

static void check_split(void)
{
	const char **d = NULL;
	size_t n = ctl_apply_split(
		A, "\n\n---\na: 1\n---\n\n---   \nb: 2\n  ---\n#only a comment\n---\nc: |\n  x\n",
		&d);
	CHECK(n == 3);
	if (n == 3) {
		CHECK_STREQ(d[0], "a: 1");
		CHECK_STREQ(d[1], "b: 2\n  ---\n#only a comment");
		CHECK_STREQ(d[2], "c: |\n  x");
	}
	n = ctl_apply_split(A, "#comment\n---\ntype: Mesh\nname: x", &d);
	CHECK(n == 1);
	n = ctl_apply_split(A, "   \n", &d);
	CHECK(n == 0);
}

static void check_render(void)
{
	const char *keys[] = {"name", "type", "var.with.dots", "html"};
	const char *vals[] = {"demo", "Mesh", "1.2.3.4", "<a&'\">"};
	CHECK_STREQ(ctl_apply_render(A, "name: {{name}}\ntype: {{ type }}", keys, vals, 4),
		    "name: demo\ntype: Mesh");
	CHECK_STREQ(ctl_apply_render(A, "a: \"{{ var.with.dots }}\"", keys, vals, 4),
		    "a: \"1.2.3.4\"");
	CHECK_STREQ(ctl_apply_render(A, "{{html}}|{{{html}}}|{{& html}}", keys, vals, 4),
		    "&lt;a&amp;&#39;&#34;&gt;|<a&'\">|<a&'\">");
	CHECK_STREQ(ctl_apply_render(A, "x: {{missing}}.", keys, vals, 4), "x: .");
	CHECK_STREQ(ctl_apply_render(A, "no {{ end", keys, vals, 4), "no {{ end");

	const char *tpl = ctl_test_read(A, "cmd/apply/testdata/apply-mesh-template.yaml");
	if (!tpl) {
		fprintf(stderr, "note: apply templates not found\n");
		return;
	}
	const char *out = ctl_apply_render(A, tpl, keys, vals, 2);
	struct km_json **docs = NULL;
	size_t n = 0;
	CHECK(km_yaml_parse(A, out, strlen(out), &docs, &n, NULL) == 0 && n == 1);
	if (n == 1) {
		CHECK(km_str_eqc(km_json_get_string(docs[0], "name"), "demo"));
		CHECK(km_str_eqc(km_json_get_string(docs[0], "type"), "Mesh"));
	}
	const char *dots =
		ctl_test_read(A, "cmd/apply/testdata/apply-dataplane-template-dots.yaml");
	const char *dk[] = {"var.with.dots.in.the.name"};
	const char *dv[] = {"2.2.2.2"};
	out = ctl_apply_render(A, dots, dk, dv, 1);
	CHECK(strstr(out, "address: \"2.2.2.2\"") != NULL);
}

int main(void)
{
	A = km_arena_new(0);
	check_split();
	check_render();
	km_arena_free(A);
	return test_summary();
}
