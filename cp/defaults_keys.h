/* SPDX-License-Identifier: Apache-2.0 */
/* Signing keys and the bootstrap admin token (cp/defaults_keys.c). */
#ifndef CP_DEFAULTS_KEYS_H
#define CP_DEFAULTS_KEYS_H

#include "cp/runtime.h"

/* Creates a <type> ("Secret"/"GlobalSecret") named <name> holding a new RSA
 * signing key, unless it exists. */
int cp_defaults_signing_key(struct cp_runtime *rt, struct km_arena *a, const char *type,
			    struct km_str mesh, const char *name);
/* Creates GlobalSecret admin-user-token (a 10-year admin user token) unless
 * it exists. */
int cp_defaults_admin_token(struct cp_runtime *rt, struct km_arena *a);

#endif
