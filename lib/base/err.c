/* SPDX-License-Identifier: Apache-2.0 */
/* Human-readable names for project error codes and errno values. */
#include "base/err.h"

#include <string.h>

const char *km_strerror(int code)
{
	if (code < 0)
		code = -code;
	switch (code) {
	case KM_E_NOT_FOUND: return "not found";
	case KM_E_EXISTS: return "already exists";
	case KM_E_CONFLICT: return "conflict";
	case KM_E_INVALID: return "invalid resource";
	case KM_E_PARSE: return "parse error";
	case KM_E_MESH_NOT_FOUND: return "mesh not found";
	case KM_E_READ_ONLY: return "read only";
	case KM_E_UNAUTHENTICATED: return "unauthenticated";
	case KM_E_FORBIDDEN: return "access denied";
	case KM_E_UNAVAILABLE: return "store unavailable";
	default: return strerror(code);
	}
}
