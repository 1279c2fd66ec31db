/* SPDX-License-Identifier: Apache-2.0 */
/* Validators of MeshTLS, MeshZoneAddress and HostnameGenerator. The
 * HostnameGenerator template check renders a small subset of Go templates
 * ({{ .Field }}, {{ label "k" }}) with upstream's stub values and reproduces
 * the Go template errors for the cases seen upstream. */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "resource/validate_util.h"

static struct km_json *arr(const struct km_json *obj, const char *key)
{
	struct km_json *v = km_v_get(obj, key);
	return v && v->kind == KM_JSON_ARRAY ? v : NULL;
}

/* ---- MeshTLS ------------------------------------------------------------------ */

void km_validate_meshtls(struct km_arena *a, const struct km_resource_doc *doc,
			 struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	static const char *const top_kinds[] = {"Mesh", "Dataplane", NULL};
	struct km_json *top = km_v_get(spec, "targetRef");
	if (top) {
		struct km_target_ref_opts o = {top_kinds, km_v_affects_inbounds(spec)};
		km_validate_target_ref(a, out, "spec.targetRef", top, &o);
	}
	struct km_str tk = km_v_str(top, "kind");
	bool mesh = !top || km_str_eqc(tk, "Mesh");
	static const char *const modes[] = {"Strict", "Permissive", NULL};
	static const char *const ciphers[] = {"ECDHE-ECDSA-AES128-GCM-SHA256",
					      "ECDHE-ECDSA-AES256-GCM-SHA384",
					      "ECDHE-ECDSA-CHACHA20-POLY1305",
					      "ECDHE-RSA-AES128-GCM-SHA256",
					      "ECDHE-RSA-AES256-GCM-SHA384",
					      "ECDHE-RSA-CHACHA20-POLY1305",
					      NULL};
	struct km_json *rules = arr(spec, "rules");
	for (size_t i = 0; rules && i < rules->len; i++) {
		struct km_json *conf = km_v_get(rules->items[i], "default");
		const char *p = km_v_path(a, "spec.rules[%zu].default", i);
		struct km_json *mode = km_v_get(conf, "mode");
		if (mode && !km_v_in(mode->kind == KM_JSON_STRING ? mode->s : KM_STR(""), modes))
			km_v_must_be_one_of(out, km_v_path(a, "%s.mode", p), "mode", modes);
		struct km_json *cs = arr(conf, "tlsCiphers");
		if (cs && cs->len && !mesh) {
			km_violations_add(
				out, km_v_path(a, "%s.tlsCiphers", p),
				"tlsCiphers can only be defined with top level targetRef kind: Mesh");
		} else {
			bool ok = true;
			for (size_t j = 0; cs && j < cs->len; j++)
				ok = ok && cs->items[j]->kind == KM_JSON_STRING &&
				     km_v_in(cs->items[j]->s, ciphers);
			if (!ok)
				km_v_must_be_one_of(out, km_v_path(a, "%s.tlsCiphers", p),
						    "tlsCiphers", ciphers);
		}
		struct km_json *ver = km_v_get(conf, "tlsVersion");
		if (ver) {
			if (!mesh)
				km_violations_add(
					out, km_v_path(a, "%s.tlsVersion", p),
					"tlsVersion can only be defined with top level targetRef kind: Mesh");
			else
				km_v_tls_version(a, out, km_v_path(a, "%s.tlsVersion", p), ver);
		}
	}
}

/* ---- MeshZoneAddress ------------------------------------------------------------ */

void km_validate_meshzoneaddress(struct km_arena *a, const struct km_resource_doc *doc,
				 struct km_violations *out)
{
	(void)a;
	struct km_str addr = km_v_str(doc->spec, "address");
	if (!addr.len)
		km_violations_add(out, "spec.address", "must not be empty");
	else if (km_str_eqc(addr, "0.0.0.0") || km_str_eqc(addr, "::"))
		km_violations_add(out, "spec.address", "must not be 0.0.0.0 or ::");
	else if (!km_v_is_ip(addr) && !km_v_is_dns_name(addr))
		km_violations_add(out, "spec.address", "must be a valid IP address or domain name");
	int64_t port = km_v_int(doc->spec, "port", 0);
	if (port <= 0 || port > 65535)
		km_violations_add(out, "spec.port", "port must be a valid (1-65535)");
}

/* ---- HostnameGenerator ------------------------------------------------------------ */

static bool ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* Renders <t> into <b>; on error returns a Go-style message. */
static const char *render_template(struct km_arena *a, struct km_str t, struct km_buf *b)
{
	static const struct {
		const char *field, *value;
	} stub[] = {{"Name", "name"},
		    {"DisplayName", "displayname"},
		    {"Namespace", "namespace"},
		    {"Mesh", "mesh"},
		    {"Zone", "zone"}};
	size_t i = 0;
	while (i < t.len) {
		if (i + 1 < t.len && t.ptr[i] == '{' && t.ptr[i + 1] == '{') {
			i += 2;
			/* lex the action up to "}}" */
			const char *field = NULL;
			size_t flen = 0;
			bool label = false, str = false;
			for (;;) {
				if (i >= t.len)
					return "couldn't parse template: template: :1: unclosed action";
				char c = t.ptr[i];
				if (c == ' ' || c == '\t' || c == '-') {
					i++;
				} else if (c == '}' && i + 1 < t.len && t.ptr[i + 1] == '}') {
					i += 2;
					break;
				} else if (c == '.') {
					size_t s = ++i;
					while (i < t.len && ident_char(t.ptr[i]))
						i++;
					field = t.ptr + s;
					flen = i - s;
				} else if (c == '"') {
					i++;
					while (i < t.len && t.ptr[i] != '"')
						i++;
					i++;
					str = true;
				} else if (c == '|') {
					i++;
				} else if (ident_char(c)) {
					size_t s = i;
					while (i < t.len && ident_char(t.ptr[i]))
						i++;
					struct km_str fn = {t.ptr + s, i - s};
					if (km_str_eqc(fn, "label"))
						label = true;
					else
						return km_arena_printf(
							a,
							"couldn't parse template: template: :1: "
							"function \"%.*s\" not defined",
							KM_STR_FMT(fn));
				} else {
					return km_arena_printf(
						a,
						"couldn't parse template: template: :1: bad "
						"character U+%04X '%c'",
						(unsigned)(unsigned char)c, c);
				}
			}
			if (label && str) {
				km_buf_puts(b, "label");
			} else if (field) {
				size_t k = 0;
				while (k < 5 && !km_str_eq((struct km_str){field, flen},
							   km_str_c(stub[k].field)))
					k++;
				if (k == 5)
					return km_arena_printf(
						a,
						"couldn't render template with stub values: "
						"template: :1:%zu: executing \"\" at <.%.*s>: "
						"can't evaluate field %.*s in type struct { Name "
						"string; DisplayName string; Namespace string; "
						"Mesh string; Zone string }",
						(size_t)(field - t.ptr) - 1, (int)flen, field,
						(int)flen, field);
				km_buf_puts(b, stub[k].value);
			}
		} else {
			km_buf_putc(b, t.ptr[i++]);
		}
	}
	return NULL;
}

void km_validate_hostnamegenerator(struct km_arena *a, const struct km_resource_doc *doc,
				   struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	struct km_json *sel = km_v_get(spec, "selector");
	int n = !!km_v_get(sel, "meshService") + !!km_v_get(sel, "meshExternalService") +
		!!km_v_get(sel, "meshMultiZoneService");
	if (n != 1)
		km_violations_add(
			out, "spec.selector",
			"exact one selector (meshService, meshExternalService) must be defined");
	struct km_str t = km_v_str(spec, "template");
	if (!t.len) {
		km_violations_add(out, "spec.template", "must not be empty");
	} else {
		struct km_buf b = KM_BUF_INIT;
		const char *err = render_template(a, t, &b);
		if (err) {
			km_violations_add(out, "spec.template", "%s", err);
		} else {
			struct km_str r = {km_buf_cstr(&b), b.len};
			struct km_violations tmp;
			km_violations_init(&tmp, a);
			km_v_dns1123_subdomain(&tmp, "", r);
			if (tmp.len) {
				struct km_buf m = KM_BUF_INIT;
				for (size_t i = 0; i < tmp.len; i++)
					km_buf_printf(&m, "%s%s", i ? ", " : "",
						      tmp.items[i].message);
				km_violations_add(
					out, "spec.template",
					"template renders to \"%.*s\" which is not a valid DNS name: %s",
					KM_STR_FMT(r), km_buf_cstr(&m));
				km_buf_fini(&m);
			}
		}
		km_buf_fini(&b);
	}
	struct km_json *ext = km_v_get(spec, "extension");
	if (ext && !km_v_str(ext, "type").len)
		km_violations_add(out, "spec.extension.type", "must not be empty");
}

/* ---- Workload ----------------------------------------------------------------------- */

void km_validate_workload(struct km_arena *a, const struct km_resource_doc *doc,
			  struct km_violations *out)
{
	(void)a;
	struct km_str d = km_json_get_string(doc->labels, "kuma.io/display-name");
	struct km_str n = d.len ? d : doc->name;
	if (n.len > 253)
		km_violations_add(out, "name", "must not be longer than 253 characters");
}
