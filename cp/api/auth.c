/* SPDX-License-Identifier: Apache-2.0 */
/* API authentication as upstream: a direct loopback request (loopback peer,
 * loopback Host, no proxy headers, same-origin) is mesh-system:admin when
 * localhostIsAdmin; a bearer user token names its user and groups; anything
 * else is mesh-system:anonymous. */
#include <string.h>
#include <strings.h>

#include "cp/api/api.h"
#include "base/log.h"
#include "cp/api/tokens.h"

static const char *const admin_groups[] = {"mesh-system:admin", "mesh-system:authenticated", NULL};
static const char *const anon_groups[] = {"mesh-system:unauthenticated", NULL};

static bool loopback_host(const char *h, size_t n)
{
	if (n && h[n - 1] == '.')
		n--;
	if (n == 9 && strncasecmp(h, "localhost", 9) == 0)
		return true;
	if (n >= 4 && strncmp(h, "127.", 4) == 0) {
		for (size_t i = 0; i < n; i++)
			if (!((h[i] >= '0' && h[i] <= '9') || h[i] == '.'))
				return false;
		return true;
	}
	return n == 3 && strncmp(h, "::1", 3) == 0;
}

/* "host:port", "[::1]:port" or "host" → host part */
static void split_host(const char *hostport, const char **h, size_t *n)
{
	if (hostport[0] == '[') {
		const char *e = strchr(hostport, ']');
		*h = hostport + 1;
		*n = e ? (size_t)(e - hostport - 1) : strlen(hostport + 1);
		return;
	}
	const char *colon = strrchr(hostport, ':');
	*h = hostport;
	*n = colon && strchr(hostport, ':') == colon ? (size_t)(colon - hostport) : strlen(hostport);
}

static bool direct_loopback(const struct cp_http_req *req)
{
	if (!req->remote_loopback)
		return false;
	if (cp_http_header(req, "Forwarded") || cp_http_header(req, "X-Forwarded-For") ||
	    cp_http_header(req, "X-Real-IP"))
		return false;
	const char *host = cp_http_header(req, "Host");
	if (!host)
		return false;
	const char *h;
	size_t n;
	split_host(host, &h, &n);
	if (!loopback_host(h, n))
		return false;
	const char *site = cp_http_header(req, "Sec-Fetch-Site");
	if (site && strcmp(site, "cross-site") == 0)
		return false;
	const char *origin = cp_http_header(req, "Origin");
	if (!origin || !*origin)
		return true;
	const char *rest = NULL;
	if (strncmp(origin, "http://", 7) == 0)
		rest = origin + 7;
	else if (strncmp(origin, "https://", 8) == 0)
		rest = origin + 8;
	if (!rest)
		return false;
	const char *oh;
	size_t on;
	split_host(rest, &oh, &on);
	return loopback_host(oh, on) && strcasecmp(rest, host) == 0;
}

bool cp_api_authenticate(struct cp_api_ctx *c)
{
	/* a direct loopback caller is admin and its token is not even looked at */
	if (c->rt->localhost_is_admin && direct_loopback(c->req)) {
		c->user = (struct cp_user){"mesh-system:admin", admin_groups, true};
		return true;
	}
	const char *authz = cp_http_header(c->req, "Authorization");
	if (authz && strncmp(authz, "Bearer ", 7) == 0) {
		int rc = cp_api_tokens_authenticate(c, authz + 7);
		if (rc == 0)
			return true;
		km_info("api", "authentication rejected reason=%s", c->user.name ? c->user.name : "");
		cp_api_write_error(c->req, 401, "Invalid authentication data", "Unauthenticated", NULL);
		return false;
	}
	c->user = (struct cp_user){"mesh-system:anonymous", anon_groups, false};
	return true;
}

const char *cp_api_user_string(struct km_arena *a, const struct cp_user *u)
{
	struct km_buf b = KM_BUF_INIT;
	km_buf_printf(&b, "%s/", u->name);
	for (const char *const *g = u->groups; g && *g; g++)
		km_buf_printf(&b, "%s%s", g == u->groups ? "" : ",", *g);
	const char *r = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return r;
}

bool cp_api_user_in(const struct cp_user *u, const struct cp_config_strlist *users,
		    const struct cp_config_strlist *groups)
{
	size_t n = 0;
	while (u->groups && u->groups[n])
		n++;
	return cp_config_access_allows(users, groups, u->name, u->groups, n);
}
