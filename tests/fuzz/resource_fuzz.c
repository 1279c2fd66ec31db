/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer driver for lib/resource: a JSON body goes through the REST write
 * path's decoding (km_resource_doc_from_json with every type of the table and
 * with none), schema normalisation and validation, into the stored form and
 * back out as universal JSON, which must parse. Short inputs also go through
 * the RFC 3339 and Go duration parsers, which must round-trip. One arena per
 * input. */
#include <stdint.h>
#include <stdlib.h>

#include "codec/json.h"
#include "resource/resource.h"
#include "resource/validate.h"
#include "resource/violations.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_type(struct km_arena *a, const struct km_json *doc, const struct km_rtype *t)
{
	struct km_resource_doc d;
	struct km_buf err = KM_BUF_INIT;
	int rc = km_resource_doc_from_json(a, doc, t, &d, &err);
	if (rc != 0) {
		km_buf_fini(&err);
		return;
	}
	if (!d.type || !d.spec || d.spec->kind != KM_JSON_OBJECT)
		abort(); /* a decoded doc always has a type and an object spec */
	/* Validation as the REST decoder runs it, then validator-only on a copy. */
	struct km_resource_doc dv = d;
	dv.spec = km_json_clone(a, d.spec);
	dv.status = d.status ? km_json_clone(a, d.status) : NULL;
	struct km_violations v;
	km_violations_init(&v, a);
	km_validate_resource(a, &d, &v);
	km_validate_meta(a, &d, &v);
	km_violations_init(&v, a);
	km_validate_resource_ex(a, &dv, &v, KM_VALIDATE_VALIDATOR_ONLY);
	if (!d.spec || d.spec->kind != KM_JSON_OBJECT)
		abort(); /* normalisation keeps an object spec */
	struct km_resource r;
	km_resource_from_doc(a, &d, &r);
	r.version = 1;
	struct km_buf out = KM_BUF_INIT, pretty = KM_BUF_INIT;
	if (km_resource_write_json(&out, a, &r, 0, 0) != 0 ||
	    km_resource_write_json(&pretty, a, &r, 2, 0) != 0)
		abort();
	struct km_json *back = NULL;
	if (km_json_parse(a, km_buf_cstr(&out), out.len, &back, NULL) != 0)
		abort(); /* the universal form must be valid JSON */
	/* The stored spec text parses back to the decoded spec. */
	struct km_json *spec = NULL;
	if (km_json_parse(a, r.spec.ptr, r.spec.len, &spec, NULL) != 0 ||
	    !km_json_equal(spec, d.spec))
		abort();
	struct km_resource_doc d2;
	if (km_resource_to_doc(a, &r, &d2) != 0)
		abort();
	(void)km_resource_kri(a, &r);
	km_buf_fini(&out);
	km_buf_fini(&pretty);
	km_buf_fini(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct km_arena *a = km_arena_new(0);
	struct km_json *doc = NULL;
	if (km_json_parse(a, (const char *)data, size, &doc, NULL) == 0) {
		one_type(a, doc, NULL);
		for (size_t i = 0; i < km_rtypes_len; i++)
			one_type(a, doc, &km_rtypes[i]);
	}
	/* Timestamps: whatever parses formats and parses back to itself. */
	int64_t ns = 0, ns2 = 0;
	if (size < 64 && km_time_parse((struct km_str){(const char *)data, size}, &ns) == 0) {
		const char *s = km_time_format(a, ns);
		if (km_time_parse(km_str_c(s), &ns2) != 0 || ns2 != ns)
			abort();
	}
	/* Durations: Go's String() form parses back to the same value. */
	int64_t dur = 0, dur2 = 0;
	if (size < 64 && km_duration_parse((struct km_str){(const char *)data, size}, &dur) == 0) {
		const char *s = km_duration_format(a, dur);
		if (km_duration_parse(km_str_c(s), &dur2) != 0 || dur2 != dur)
			abort();
	}
	km_arena_free(a);
	return 0;
}
