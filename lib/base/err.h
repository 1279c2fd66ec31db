/* SPDX-License-Identifier: Apache-2.0 */
/* Error codes. Fallible functions return 0 or a negative code: either a
 * negative errno or one of the project codes below (all above errno range).
 * cp/api/errors.c maps every code to an HTTP status in one table. */
#ifndef KM_BASE_ERR_H
#define KM_BASE_ERR_H

#include <errno.h>

enum km_err {
	KM_E_FIRST = 4096,
	KM_E_NOT_FOUND,      /* resource does not exist */
	KM_E_EXISTS,         /* resource already exists */
	KM_E_CONFLICT,       /* version mismatch on update */
	KM_E_INVALID,        /* validation failed; violations carry details */
	KM_E_PARSE,          /* malformed JSON/YAML */
	KM_E_MESH_NOT_FOUND, /* mesh-scoped write into a missing mesh */
	KM_E_READ_ONLY,      /* write to a read-only type */
	KM_E_UNAUTHENTICATED,
	KM_E_FORBIDDEN,
	KM_E_UNAVAILABLE, /* store unreachable */
	KM_E_LAST
};

const char *km_strerror(int code);

#endif
