/* SPDX-License-Identifier: Apache-2.0 */
/* Token endpoints and bearer-token authentication (cp/api/tokens.c). */
#ifndef CP_API_TOKENS_H
#define CP_API_TOKENS_H

#include "cp/api/api.h"

/* Validates a user token; on success fills c->user (arena strings) and returns
 * 0; on failure returns a negative code and sets c->user.name to the reason. */
int cp_api_tokens_authenticate(struct cp_api_ctx *c, const char *token);

#endif
