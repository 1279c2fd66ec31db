/* SPDX-License-Identifier: Apache-2.0 */
/* Token endpoints (POST /tokens/user, /tokens/dataplane) and bearer user-token
 * authentication. Keys and revocations are read from the store on each use. */
#include "cp/api/tokens.h"

#include <string.h>

#include "base/err.h"

int cp_api_tokens_authenticate(struct cp_api_ctx *c, const char *token)
{
	c->user.name = "user tokens are not wired yet";
	return -KM_E_UNAUTHENTICATED;
}

void cp_api_token_user(struct cp_api_ctx *c)
{
	cp_api_write_error(c->req, 501, "Not implemented", "user token issuer not wired yet", NULL);
}

void cp_api_token_dataplane(struct cp_api_ctx *c)
{
	cp_api_write_error(c->req, 501, "Not implemented", "dataplane token issuer not wired yet", NULL);
}
