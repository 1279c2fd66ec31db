/* SPDX-License-Identifier: Apache-2.0 */
/* Signing keys and the bootstrap admin token (cp/defaults_keys.c). */
#ifndef CP_DEFAULTS_KEYS_H
#define CP_DEFAULTS_KEYS_H

#include "cp/runtime.h"

/* Creates a <type> ("Secret"/"GlobalSecret") named <name> holding a new RSA
 * signing key, unless it exists. */
int cp_defaults_signing_key(struct cp_runtime *rt, struct km_arena *a, const char *type,
			    struct km_str mesh, const char *name);
/* Starts generating <n> (at most 3) RSA signing keys, each on a thread of
 * its own, for the next cp_defaults_signing_key calls that need a new key:
 * a fresh store needs three (user and zone token keys, the default Mesh's
 * dataplane token key), ~0.1-0.3 s each, which would otherwise run one after
 * the other before kuma-cp is ready. */
void cp_defaults_keys_prefetch(size_t n);
/* Waits for and drops the keys prefetched but not taken. */
void cp_defaults_keys_drain(void);
/* Creates GlobalSecret admin-user-token (a 10-year admin user token) unless
 * it exists. */
int cp_defaults_admin_token(struct cp_runtime *rt, struct km_arena *a);

#endif
