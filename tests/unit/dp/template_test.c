/* SPDX-License-Identifier: Apache-2.0 */
/* Dataplane templates: the mustache subset upstream's engine implements
 * (escaping, raw tags, sections, dotted names, delimiters, parse errors) and
 * the Dataplane decoding/validation that follows the render. */
#include <errno.h>

#include "../test.h"
#include "base/err.h"
#include "base/log.h"
#include "dp/dp.h"

static const char *render(const char *t, const struct dp_var *v, size_t n)
{
	static struct km_buf out;
	struct km_buf err = KM_BUF_INIT;
	km_buf_reset(&out);
	if (dp_template_render(km_str_c(t), v, n, &out, &err) != 0)
		km_buf_printf(&out, "ERR %s", km_buf_cstr(&err));
	km_buf_fini(&err);
	return km_buf_cstr(&out);
}

int main(void)
{
	km_log_threshold = KM_LOG_ERROR;
	struct dp_var v[] = {{"name", "dp-1"}, {"address", "10.0.0.1"}, {"html", "<a&\"b'>"},
			     {"svc.port", "8080"}, {"svc.name", "web"}, {"blank", "  "}};
	size_t n = sizeof(v) / sizeof(v[0]);
	CHECK_STREQ(render("name: {{ name }}\naddr: {{address}}", v, n), "name: dp-1\naddr: 10.0.0.1");
	CHECK_STREQ(render("x: {{missing}}.", v, n), "x: .");
	CHECK_STREQ(render("{{html}}", v, n), "&lt;a&amp;&#34;b&#39;&gt;");
	CHECK_STREQ(render("{{{html}}}", v, n), "<a&\"b'>");
	CHECK_STREQ(render("[{{{ html }}}]", v, n), "[]"); /* upstream does not trim raw names */
	CHECK_STREQ(render("{{svc.port}}/{{svc.name}}", v, n), "8080/web");
	CHECK_STREQ(render("{{#svc}}{{port}}{{/svc}}", v, n), "8080");
	CHECK_STREQ(render("{{#name}}\nhas {{name}}\n{{/name}}", v, n), "has dp-1\n");
	CHECK_STREQ(render("{{#blank}}no{{/blank}}{{^blank}}empty{{/blank}}", v, n), "empty");
	CHECK_STREQ(render("{{^missing}}none{{/missing}}", v, n), "none");
	CHECK_STREQ(render("a{{! comment }}b", v, n), "ab");
	CHECK_STREQ(render("{{=<% %>=}}<% name %> {{name}}", v, n), "dp-1 {{name}}");
	CHECK_STREQ(render("no tags at all", v, n), "no tags at all");
	CHECK_STREQ(render("{{> partial}}x", v, n), "x");
	/* errors */
	CHECK_STREQ(render("a\nb {{ name", v, n), "ERR line 2: unmatched open tag");
	CHECK_STREQ(render("{{ }}", v, n), "ERR line 1: empty tag");
	CHECK_STREQ(render("x\n{{/a}}", v, n), "ERR line 2: unmatched close tag");
	CHECK_STREQ(render("\n{{#a}}\n\nx", v, n), "ERR line 2: Section a has no closing tag");
	CHECK_STREQ(render("{{#a}}{{/b}}", v, n), "ERR line 1: interleaved closing tag: b");
	CHECK_STREQ(render("{{=<% %>}}", v, n), "ERR line 1: Invalid meta tag");

	/* Dataplane loading */
	struct km_arena *a = km_arena_new(0);
	struct dp_config c;
	dp_flags_defaults(&c, a);
	struct km_buf err = KM_BUF_INIT;
	const char *json, *mesh, *name;
	CHECK(dp_template_load(&c, &json, &mesh, &name, &err) == 0 && json == NULL);
	c.resource = "type: Dataplane\nmesh: demo\nname: {{ name }}\nnetworking:\n  address: "
		     "{{ address }}\n  inbound:\n  - port: 8080\n    servicePort: 80\n";
	c.vars = v;
	c.nvars = 2;
	CHECK(dp_template_load(&c, &json, &mesh, &name, &err) == 0);
	CHECK_STREQ(mesh, "demo");
	CHECK_STREQ(name, "dp-1");
	CHECK(json && strncmp(json, "{\"type\":\"Dataplane\",\"mesh\":\"demo\",\"name\":\"dp-1\","
				    "\"creationTime\":\"0001-01-01T00:00:00Z\",\"modificationTime\":"
				    "\"0001-01-01T00:00:00Z\",\"kri\":\"kri_dp_demo___dp-1_\"",
			  strlen("{\"type\":\"Dataplane\",\"mesh\":\"demo\",\"name\":\"dp-1\","
				 "\"creationTime\":\"0001-01-01T00:00:00Z\",\"modificationTime\":"
				 "\"0001-01-01T00:00:00Z\",\"kri\":\"kri_dp_demo___dp-1_\"")) == 0);
	CHECK(json && strstr(json, "\"networking\":{\"address\":\"10.0.0.1\""));

	struct {
		const char *text, *want;
	} bad[] = {
	    {"type: Dataplane\nname: {{ name\n", "failed to render the Dataplane template: line 2: unmatched open tag"},
	    {"type: Foo\n", "invalid resource type \"Foo\""},
	    {"just a string\n", "invalid meta type: \"error unmarshaling JSON: while decoding JSON: json: "
				"cannot unmarshal string into Go value of type v1alpha1.ResourceMeta\""},
	    {"type: Mesh\nname: m\n", "invalid proxy resource type \"Mesh\", expected Dataplane"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c.resource = bad[i].text;
		km_buf_reset(&err);
		CHECK(dp_template_load(&c, &json, &mesh, &name, &err) == -EINVAL);
		CHECK_STREQ(km_buf_cstr(&err), bad[i].want);
	}
	c.resource = "type: Dataplane\nmesh: demo\nname: Bad_Name\nnetworking:\n  address: 1.1.1.1\n"
		     "  inbound:\n  - port: 1\n";
	km_buf_reset(&err);
	CHECK(dp_template_load(&c, &json, &mesh, &name, &err) == -EINVAL);
	CHECK(strncmp(km_buf_cstr(&err), "name: invalid characters.", 25) == 0);
	c.resource = NULL;
	c.resource_path = "/nonexistent/dp.yaml";
	km_buf_reset(&err);
	CHECK(dp_template_load(&c, &json, &mesh, &name, &err) == -EIO);
	CHECK_STREQ(km_buf_cstr(&err), "error while reading provided file: open /nonexistent/dp.yaml: "
				       "no such file or directory");
	km_buf_fini(&err);
	km_arena_free(a);
	return test_summary();
}
