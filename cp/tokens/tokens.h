/* SPDX-License-Identifier: Apache-2.0 */
/* User tokens and dataplane tokens (upstream pkg/core/tokens, pkg/tokens and
 * pkg/plugins/authn/api-server/tokens) on top of lib/auth/jwt, independent of
 * the store: callers pass key bytes, a kid->key callback and the decoded
 * revocation secret. Results borrow from the caller's arena. */
#ifndef KM_CP_TOKENS_H
#define KM_CP_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/str.h"

/* Secret names (GlobalSecrets for user tokens, mesh Secrets for dataplanes). */
#define CP_TOKENS_USER_KEY_PREFIX "user-token-signing-key"
#define CP_TOKENS_USER_REVOCATIONS "user-token-revocations"
#define CP_TOKENS_DP_KEY_PREFIX "dataplane-token-signing-key-"     /* + mesh */
#define CP_TOKENS_DP_REVOCATIONS_PREFIX "dataplane-token-revocations-" /* + mesh */
#define CP_TOKENS_DEFAULT_KID "1"
#define CP_TOKENS_MAX_GROUPS 256
#define CP_TOKENS_MAX_TAGS 256

/* "dataplane-token-signing-key-<mesh>" / "dataplane-token-revocations-<mesh>". */
char *cp_tokens_dp_key_prefix(struct km_arena *a, const char *mesh);
char *cp_tokens_dp_revocations_name(struct km_arena *a, const char *mesh);
/* Secret name of key <kid> under <prefix>: "<prefix>-<kid>", or "<prefix>" for
 * kid "0" (1.3.x keys). */
char *cp_tokens_signing_key_name(struct km_arena *a, const char *prefix, const char *kid);
/* Serial of a signing-key secret: -1 when <name> does not start with <prefix>,
 * 0 when the suffix is not a number (like upstream, which ignores the error). */
long long cp_tokens_signing_key_serial(const char *name, const char *prefix);
/* Upstream's SigningKeyNotFound text; <mesh> NULL/"" for GlobalSecret keys. */
void cp_tokens_key_not_found(struct km_buf *err, const char *prefix, const char *kid,
			     const char *mesh);
/* True when <jti> is in a revocation secret's data ("id1,id2", optional
 * trailing newline). */
bool cp_tokens_is_revoked(const char *data, size_t len, const char *jti);

/* Finds the PEM key (private or public) for <kid>. Returns 0 and sets <*pem>
 * (borrowed until validation returns), -KM_E_NOT_FOUND when there is no such
 * key, or another negative code with a message in <err>. */
typedef int (*cp_tokens_key_fn)(void *ud, const char *kid, struct km_str *pem, struct km_buf *err);

struct cp_tokens_validator {
	cp_tokens_key_fn key;
	void *key_ud;
	const char *key_prefix; /* for the not-found message */
	const char *key_mesh;   /* NULL for GlobalSecret keys */
	struct km_str revoked;  /* decoded revocation secret data, may be empty */
	bool memory_store;      /* adds upstream's in-memory-store hint to parse errors */
	int64_t now;            /* unix seconds */
};

/* ---- user tokens ---- */

struct cp_tokens_user {
	const char *name;
	const char **groups; /* NULL = JSON null */
	size_t n_groups;
	const char *jti;
	int64_t exp, iat, nbf;
};

/* Issues a user token valid for <valid_for> seconds from <now>, signed with
 * <key_pem> and kid <kid> (upstream back-dates iat/nbf by 5s and pads exp by
 * 5s). <jti> NULL picks a random UUID. */
int cp_tokens_user_issue(struct km_buf *out, const char *key_pem, size_t key_len, const char *kid,
			 const char *name, const char *const *groups, size_t n_groups, int64_t now,
			 int64_t valid_for, const char *jti, struct km_buf *err);
/* Validates <token> (kid -> key, signature, exp/nbf, revocation, claim shape)
 * and fills <out> from <a>. Returns 0, -KM_E_NOT_FOUND (no signing key) or
 * -KM_E_UNAUTHENTICATED, with upstream's message in <err>. */
int cp_tokens_user_validate(struct km_arena *a, const struct cp_tokens_validator *v,
			    const char *token, size_t len, struct cp_tokens_user *out,
			    struct km_buf *err);

/* ---- dataplane tokens ---- */

struct cp_tokens_tag {
	const char *key;
	const char **values;
	size_t n_values;
};

struct cp_tokens_dp {
	const char *name; /* "" = not bound */
	const char *mesh;
	const char *type; /* "", "Dataplane", ... */
	const char *workload;
	struct cp_tokens_tag *tags; /* sorted by key when issued */
	size_t n_tags;
	const char *jti;
	int64_t exp;
};

/* Issues a dataplane token for <id> (tags and values are sorted like Go's
 * map marshalling and MultiValueTagSet.Values). */
int cp_tokens_dp_issue(struct km_buf *out, const char *key_pem, size_t key_len, const char *kid,
		       const struct cp_tokens_dp *id, int64_t now, int64_t valid_for,
		       const char *jti, struct km_buf *err);
int cp_tokens_dp_validate(struct km_arena *a, const struct cp_tokens_validator *v,
			  const char *token, size_t len, struct cp_tokens_dp *out,
			  struct km_buf *err);

/* Random RFC 4122 v4 UUID (36 chars + NUL) into <buf>. */
void cp_tokens_uuid(char buf[37]);

#endif
