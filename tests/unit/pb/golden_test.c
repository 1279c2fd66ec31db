/* SPDX-License-Identifier: Apache-2.0 */
/* Round-trips every xDS resource of the upstream e2e envoyconfig goldens
 * (conformance data, "xds": {typeUrl: {name: resource}}) through
 * JSON -> protobuf bytes -> JSON and requires an equal tree. Skips cleanly
 * when the conformance directory is absent (KUMA_CONFORMANCE_DIR overrides). */
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "base/err.h"
#include "pb/json.h"
#include "pb/registry.h"
#include "../test.h"

#define DEFAULT_DIR "/work/shared/conformance/kuma/test/e2e_env/universal/envoyconfig/testdata"

static int files_seen, resources_seen;

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct km_buf b = KM_BUF_INIT;
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		km_buf_append(&b, chunk, n);
	fclose(f);
	*len = b.len;
	return b.data ? km_buf_steal(&b) : NULL;
}

/* The goldens redact certificates as "CERT_REDACTED", which is not base64:
 * swap in its base64 form so bytes fields stay decodable (strings too). */
static void unredact(struct km_arena *a, struct km_json *v)
{
	if (!v)
		return;
	if (v->kind == KM_JSON_STRING && km_str_eqc(v->s, "CERT_REDACTED"))
		v->s = km_str_c(km_arena_strdup(a, "Q0VSVF9SRURBQ1RFRA=="));
	for (size_t i = 0; v->kind == KM_JSON_ARRAY && i < v->len; i++)
		unredact(a, v->items[i]);
	for (size_t i = 0; v->kind == KM_JSON_OBJECT && i < v->len; i++)
		unredact(a, v->members[i].val);
}

static void roundtrip_file(const char *path)
{
	size_t len;
	char *text = slurp(path, &len);
	if (!text)
		return;
	struct km_arena *a = km_arena_new(0);
	struct km_json *doc;
	struct km_buf err = KM_BUF_INIT;
	CHECK(km_json_parse(a, text, len, &doc, &err) == 0);
	struct km_json *xds = doc ? km_json_get(doc, "xds") : NULL;
	unredact(a, xds);
	files_seen++;
	for (size_t t = 0; xds && t < xds->len; t++) {
		struct km_str url = xds->members[t].key;
		char *type = km_arena_strndup(a, url.ptr, url.len);
		const struct km_json *byname = xds->members[t].val;
		for (size_t r = 0; r < byname->len; r++) {
			const struct km_json *res = byname->members[r].val;
			struct km_buf bytes = KM_BUF_INIT;
			struct km_json *back = NULL;
			km_buf_reset(&err);
			int rc = km_pb_encode_json(a, type, res, &bytes, &err);
			if (rc == 0)
				rc = km_pb_decode_to_json(a, type, (const uint8_t *)bytes.data, bytes.len,
							  &back, &err);
			int ok = rc == 0 && km_json_equal(res, back);
			CHECK(ok);
			if (!ok) {
				struct km_buf w = KM_BUF_INIT;
				if (back)
					km_json_write(&w, back, 0, 0);
				fprintf(stderr, "%s: %s %.*s: rc=%d %s\n  got %s\n", path, type,
					KM_STR_FMT(byname->members[r].key), rc, km_buf_cstr(&err),
					km_buf_cstr(&w));
				km_buf_fini(&w);
			}
			/* the direct writer takes every golden resource and
			 * its bytes mean the same */
			struct km_buf direct = KM_BUF_INIT;
			struct km_json *dback = NULL;
			int drc = km_pb_write_json(a, km_pb_find(url), res, &direct);
			CHECK(drc == 0);
			if (drc == 0)
				CHECK(km_pb_decode_to_json(a, type, (const uint8_t *)direct.data, direct.len, &dback,
							   NULL) == 0 &&
				      km_json_equal(res, dback));
			km_buf_fini(&direct);
			resources_seen++;
			km_buf_fini(&bytes);
		}
	}
	km_buf_fini(&err);
	km_arena_free(a);
	free(text);
}

static void walk(const char *dir, int depth)
{
	DIR *d = opendir(dir);
	if (!d || depth > 4) {
		if (d)
			closedir(d);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		struct stat st;
		if (stat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode))
			walk(path, depth + 1);
		else if (km_str_has_suffix(km_str_c(e->d_name), ".golden.json"))
			roundtrip_file(path);
	}
	closedir(d);
}

int main(void)
{
	const char *dir = getenv("KUMA_CONFORMANCE_DIR");
	char buf[4096];
	if (dir) {
		snprintf(buf, sizeof(buf), "%s/test/e2e_env/universal/envoyconfig/testdata", dir);
		dir = buf;
	} else {
		dir = DEFAULT_DIR;
	}
	struct stat st;
	if (stat(dir, &st) != 0) {
		printf("skip: %s absent\n", dir);
		return test_summary();
	}
	walk(dir, 0);
	printf("goldens: %d files, %d resources round-tripped\n", files_seen, resources_seen);
	CHECK(files_seen > 0);
	return test_summary();
}
