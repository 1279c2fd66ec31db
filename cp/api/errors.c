/* SPDX-License-Identifier: Apache-2.0 */
/* Upstream's error format (Kong AIP-193): type, status, title, detail,
 * invalid_parameters, plus the deprecated details/causes duplicates; and the
 * one table that maps error codes to HTTP status and detail text. */
#include <string.h>

#include "base/err.h"
#include "cp/api/api.h"

void cp_api_write_json(struct cp_http_req *req, int status, const struct km_json *v)
{
	req->status = status;
	req->content_type = "application/json";
	km_buf_reset(&req->out);
	km_json_write(&req->out, v, 1, 0);
	km_buf_putc(&req->out, '\n');
}

void cp_api_write_error(struct cp_http_req *req, int status, const char *title, const char *detail,
			const struct km_violations *v)
{
	struct km_arena *a = req->a;
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "type", km_json_cstring(a, "/std-errors"));
	km_json_set(a, o, "status", km_json_int(a, status));
	km_json_set(a, o, "title", km_json_cstring(a, title));
	km_json_set(a, o, "detail", km_json_cstring(a, detail));
	if (v && v->len) {
		struct km_json *ip = km_json_array(a), *causes = km_json_array(a);
		for (size_t i = 0; i < v->len; i++) {
			struct km_json *p = km_json_object(a), *cz = km_json_object(a);
			km_json_set(a, p, "field", km_json_cstring(a, v->items[i].field));
			km_json_set(a, p, "reason", km_json_cstring(a, v->items[i].message));
			km_json_array_push(a, ip, p);
			km_json_set(a, cz, "field", km_json_cstring(a, v->items[i].field));
			km_json_set(a, cz, "message", km_json_cstring(a, v->items[i].message));
			km_json_array_push(a, causes, cz);
		}
		km_json_set(a, o, "invalid_parameters", ip);
		km_json_set(a, o, "details", km_json_cstring(a, detail));
		km_json_set(a, o, "causes", causes);
	} else {
		km_json_set(a, o, "details", km_json_cstring(a, detail));
	}
	cp_api_write_json(req, status, o);
}

/* One row per error code: HTTP status and detail (NULL = use km_strerror). */
static const struct {
	int code;
	int status;
	const char *detail;
} error_table[] = {
    {KM_E_NOT_FOUND, 404, "Not found"},
    {KM_E_EXISTS, 409, "resource already exists"},
    {KM_E_CONFLICT, 409, "resource conflict: version mismatch"},
    {KM_E_INVALID, 400, "Resource is not valid"},
    {KM_E_PARSE, 400, "invalid request body"},
    {KM_E_MESH_NOT_FOUND, 400, "Mesh is not found"},
    {KM_E_READ_ONLY, 405, "Method not Allowed"},
    {KM_E_UNAUTHENTICATED, 401, "Unauthenticated"},
    {KM_E_FORBIDDEN, 403, "Access Denied"},
    {KM_E_UNAVAILABLE, 503, "store is unavailable"},
};

void cp_api_write_store_error(struct cp_http_req *req, int rc, const char *title)
{
	int code = rc < 0 ? -rc : rc;
	for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++)
		if (error_table[i].code == code) {
			const char *t = title;
			if (code == KM_E_CONFLICT || code == KM_E_EXISTS)
				t = "Conflict";
			cp_api_write_error(req, error_table[i].status, t, error_table[i].detail, NULL);
			return;
		}
	cp_api_write_error(req, 500, title, "Internal Server Error", NULL);
}
