/* SPDX-License-Identifier: Apache-2.0 */
/* MeshMetric with a Prometheus backend, kuma-dp's side (upstream kuma-dp
 * configfetcher, meshmetrics and metrics): every refresh interval the fetcher
 * GETs /meshmetric from Envoy's system_dynamicconfig Unix socket (ETag /
 * If-None-Match) and swaps in the parsed config. While a config is present the
 * hijacker listens on <workdir>/kuma-mh-<name>-<mesh>.sock: a GET /meshmetric
 * scrapes every application and Envoy admin /stats, keeps Envoy's families the
 * sidecar profiles select, adds extraLabels to every sample and answers the
 * concatenation. Nothing waits on the loop: one libcurl multi handle driven by
 * the loop carries every transfer, and a scrape suspends its MHD connection
 * (MHD_suspend_connection) until its last transfer ends. A config is immutable
 * and refcounted as a whole (its arena and compiled regexes die with the last
 * holder); a scrape's buffers die with its connection. */
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/err.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "dp/dp.h"
#include "ev/curlm.h"
#include "ev/mhd.h"

#define SUB_FETCH "envoy-config-fetcher"
#define SUB_MM "mesh-metric-config-fetcher"
#define SUB_HJ "metrics-hijacker"

#define CONFIG_PATH "/meshmetric" /* upstream dpapi.PATH, also the stats path */
#define CONFIG_MAX ((size_t)1 << 20)
#define FETCH_TIMEOUT_MS 5000 /* upstream's config fetcher http.Client timeout */
#define SCRAPE_TIMEOUT_MS 10000
#define SCRAPE_MAX ((size_t)64 << 20)
/* promhttp's answer for the text format (client_golang 1.24, common 0.70) */
#define TEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"

/* ---- socket paths ---- */

/* Go's filepath.Clean of <p> (lexical: "." and "x/.." go away). */
static void path_clean(struct km_buf *out, const char *p)
{
	bool rooted = p[0] == '/';
	size_t base = out->len;
	if (rooted)
		km_buf_putc(out, '/');
	size_t start = out->len; /* where elements begin */
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = p;
		while (*e && *e != '/')
			e++;
		size_t n = (size_t)(e - p);
		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* skip */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			/* drop the last element unless it is ".." itself */
			size_t end = out->len, s = end;
			while (s > start && out->data[s - 1] != '/')
				s--;
			bool last_dotdot = end - s == 2 && out->data[s] == '.' && out->data[s + 1] == '.';
			if (end > start && !last_dotdot) {
				out->len = s > start ? s - 1 : start;
				out->data[out->len] = 0;
			} else if (!rooted) {
				if (out->len > start)
					km_buf_putc(out, '/');
				km_buf_puts(out, "..");
			}
		} else {
			if (out->len > start)
				km_buf_putc(out, '/');
			km_buf_append(out, p, n);
		}
		p = e;
	}
	if (out->len == base)
		km_buf_putc(out, '.');
}

const char *dp_metrics_socket_name(struct km_arena *a, const char *workdir, const char *file)
{
	struct km_buf b = KM_BUF_INIT;
	const char *joined = file;
	if (workdir && *workdir)
		joined = km_arena_printf(a, "%s/%s", workdir, file);
	path_clean(&b, joined);
	size_t n = b.len > 98 ? 98 : b.len;
	const char *s = km_arena_printf(a, "%.*s.sock", (int)n, km_buf_cstr(&b));
	km_buf_fini(&b);
	return s;
}

const char *dp_metrics_config_socket(struct km_arena *a, const char *workdir)
{
	return dp_metrics_socket_name(a, workdir, "kuma-mesh-metric-config");
}

const char *dp_metrics_hijacker_socket(struct km_arena *a, const char *workdir, const char *name,
				       const char *mesh)
{
	return dp_metrics_socket_name(a, workdir, km_arena_printf(a, "kuma-mh-%s-%s", name, mesh));
}

/* ---- selectors and profiles ---- */

struct sel {
	enum dp_metrics_match type;
	const char *match;
};

/* Upstream's Basic profile (app/kuma-dp/pkg/dataplane/metrics/profiles.go):
 * the golden signals, what Kuma's dashboards chart, and DNS. */
static const struct sel basic_profile[] = {
    {DP_METRICS_CONTAINS, "rq_time"},
    {DP_METRICS_CONTAINS, "cx_length_ms"},
    {DP_METRICS_CONTAINS, "cx_count"},
    {DP_METRICS_CONTAINS, "_rq"},
    {DP_METRICS_CONTAINS, "bytes"},
    {DP_METRICS_CONTAINS, "timeout"},
    {DP_METRICS_CONTAINS, "health_check"},
    {DP_METRICS_CONTAINS, "lb_healthy_panic"},
    {DP_METRICS_CONTAINS, "cx_destroy"},
    {DP_METRICS_EXACT, "envoy_cluster_membership_degraded"},
    {DP_METRICS_EXACT, "envoy_cluster_membership_healthy"},
    {DP_METRICS_CONTAINS, "error"},
    {DP_METRICS_CONTAINS, "fail"},
    {DP_METRICS_CONTAINS, "reset"},
    {DP_METRICS_CONTAINS, "eject"},
    {DP_METRICS_CONTAINS, "overflow"},
    {DP_METRICS_CONTAINS, "cancelled"},
    {DP_METRICS_CONTAINS, "max_duration_reached"},
    {DP_METRICS_CONTAINS, "no_cluster"},
    {DP_METRICS_CONTAINS, "no_route"},
    {DP_METRICS_CONTAINS, "no_filter_chain"},
    {DP_METRICS_CONTAINS, "reject"},
    {DP_METRICS_CONTAINS, "denied"},
    {DP_METRICS_CONTAINS, "days_until_first_cert_expiring"},
    /* dashboards */
    {DP_METRICS_PREFIX, "envoy_server"},
    {DP_METRICS_PREFIX, "envoy_control_plane"},
    {DP_METRICS_CONTAINS, "rbac"},
    {DP_METRICS_CONTAINS, "cx_active"},
    {DP_METRICS_CONTAINS, "cx_connect"},
    {DP_METRICS_EXACT, "envoy_cluster_ssl_handshake"},
    {DP_METRICS_EXACT, "envoy_cluster_membership_total"},
    {DP_METRICS_CONTAINS, "circuit_breakers"},
    {DP_METRICS_CONTAINS, "cx_total"},
    {DP_METRICS_CONTAINS, "ssl_handshake"},
    {DP_METRICS_CONTAINS, "ssl_context_update_by_sds"},
    /* DNS */
    {DP_METRICS_PREFIX, "envoy_dns_filter"},
    {DP_METRICS_PREFIX, "envoy_dns_cares"},
    {DP_METRICS_PREFIX, "kuma_dp_dns"},
};

/* Under Basic, samples whose entity label names one of Kuma's own clusters
 * or listeners are dropped (system_ names, "_" internal clusters, ADS, the
 * access-log sink, admin, the hijacker, OpenTelemetry). */
static const struct sel basic_internal[] = {
    {DP_METRICS_PREFIX, "system_"},
    {DP_METRICS_PREFIX, "_"},
    {DP_METRICS_EXACT, "ads_cluster"},
    {DP_METRICS_EXACT, "access_log_sink"},
    {DP_METRICS_EXACT, "kuma:envoy:admin"},
    {DP_METRICS_EXACT, "kuma:metrics:hijacker"},
    {DP_METRICS_PREFIX, "_kuma:metrics:opentelemetry"},
};

static const char *const entity_labels[] = {"envoy_cluster_name", "envoy_http_conn_manager_prefix",
					    "envoy_listener_address"};

#define NELEM(x) (sizeof(x) / sizeof((x)[0]))

static bool str_contains(struct km_str s, const char *m)
{
	size_t n = strlen(m);
	if (n == 0)
		return true;
	if (n > s.len)
		return false;
	return memmem(s.ptr, s.len, m, n) != NULL;
}

static bool sel_match(enum dp_metrics_match type, const char *match, const void *re,
		      struct km_str s, struct km_buf *scratch)
{
	switch (type) {
	case DP_METRICS_PREFIX:
		return km_str_has_prefix(s, match);
	case DP_METRICS_EXACT:
		return km_str_eqc(s, match);
	case DP_METRICS_CONTAINS:
		return str_contains(s, match);
	case DP_METRICS_REGEX:
		if (!re)
			return false;
		km_buf_reset(scratch);
		km_buf_append(scratch, s.ptr, s.len);
		return regexec(re, km_buf_cstr(scratch), 0, NULL, 0) == 0;
	case DP_METRICS_NEVER:
		break;
	}
	return false;
}

static bool table_match(const struct sel *t, size_t n, struct km_str s)
{
	for (size_t i = 0; i < n; i++)
		if (sel_match(t[i].type, t[i].match, NULL, s, NULL))
			return true;
	return false;
}

static bool list_match(const struct dp_metrics_selector *l, size_t n, struct km_str s,
		       struct km_buf *scratch)
{
	for (size_t i = 0; i < n; i++)
		if (sel_match(l[i].type, l[i].match, l[i].re, s, scratch))
			return true;
	return false;
}

/* Whether Envoy's family <name> is kept under <c> (upstream's
 * ProfileMutatorGenerator: the profiles, then exclude, then include). */
static bool family_selected(const struct dp_metrics_config *c, struct km_str name,
			    struct km_buf *scratch)
{
	bool keep;
	if (!c->profiles)
		keep = table_match(basic_profile, NELEM(basic_profile), name);
	else
		keep = (c->profiles & DP_METRICS_PROFILE_ALL) ||
		       ((c->profiles & DP_METRICS_PROFILE_BASIC) &&
			table_match(basic_profile, NELEM(basic_profile), name));
	if (keep && list_match(c->exclude, c->nexclude, name, scratch))
		keep = false;
	if (!keep && list_match(c->include, c->ninclude, name, scratch))
		keep = true;
	return keep;
}

/* ---- Go (RE2) regular expressions as POSIX extended ones ---- */

/* Copies a bracket expression starting at <s> ('['), turning RE2's escapes
 * into POSIX (where a backslash is literal inside brackets). Returns the
 * position after ']', or NULL when it has no POSIX spelling. */
static const char *re_bracket(const char *s, struct km_buf *o)
{
	struct km_buf body = KM_BUF_INIT;
	bool neg = false, rbr = false, dash = false, caret = false;
	s++;
	if (*s == '^') {
		neg = true;
		s++;
	}
	const char *ret = NULL;
	for (; *s; s++) {
		if (*s == ']') {
			ret = s + 1;
			break;
		}
		if (s[0] == '[' && s[1] == ':') { /* [:alpha:] */
			const char *e = strstr(s + 2, ":]");
			if (!e)
				break;
			km_buf_append(&body, s, (size_t)(e + 2 - s));
			s = e + 1;
			continue;
		}
		if (*s != '\\') {
			km_buf_putc(&body, *s);
			continue;
		}
		char e = *++s;
		if (e == 'd')
			km_buf_puts(&body, "0-9");
		else if (e == 'w')
			km_buf_puts(&body, "[:alnum:]_");
		else if (e == 's')
			km_buf_puts(&body, "[:space:]");
		else if (e == ']')
			rbr = true;
		else if (e == '-')
			dash = true;
		else if (e == '^')
			caret = true;
		else if (e == 'n')
			km_buf_putc(&body, '\n');
		else if (e == 't')
			km_buf_putc(&body, '\t');
		else if (e && !((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') ||
				(e >= '0' && e <= '9')))
			km_buf_putc(&body, e); /* escaped punctuation, '\\' included */
		else
			break; /* \D, \pL, ...: no POSIX form */
	}
	if (ret) {
		if (!body.len && !rbr && !dash && caret && !neg) {
			km_buf_puts(o, "\\^");
		} else {
			km_buf_putc(o, '[');
			if (neg)
				km_buf_putc(o, '^');
			if (rbr)
				km_buf_putc(o, ']');
			km_buf_append(o, km_buf_cstr(&body), body.len);
			if (caret)
				km_buf_putc(o, '^');
			if (dash)
				km_buf_putc(o, '-');
			km_buf_putc(o, ']');
		}
	}
	km_buf_fini(&body);
	return ret;
}

/* A counted repetition "{n}", "{n,}" or "{n,m}" at <s>: its end, with the
 * largest count in *<max>; NULL when RE2 reads the brace as a literal. */
static const char *re_count(const char *s, long *max)
{
	const char *p = s + 1;
	long n = 0, m = -1;
	if (*p < '0' || *p > '9')
		return NULL;
	while (*p >= '0' && *p <= '9' && n <= 100000)
		n = n * 10 + (*p++ - '0');
	if (*p == ',') {
		p++;
		if (*p >= '0' && *p <= '9') {
			m = 0;
			while (*p >= '0' && *p <= '9' && m <= 100000)
				m = m * 10 + (*p++ - '0');
		}
	} else {
		m = n;
	}
	if (*p != '}')
		return NULL;
	*max = m > n ? m : n;
	return m >= 0 && m < n ? s : p + 1; /* {3,2}: <s> itself, an error */
}

/* RE2 → POSIX ERE for what selectors use: \d, (?:...), a leading (?i) and
 * escapes inside brackets; glibc understands \w \s \b itself. What RE2
 * refuses (backreferences, nested repetitions, counts over 1000) is refused
 * here too, which also keeps glibc's regcomp from expanding counted
 * repetitions without bound. Unanchored regexec then matches like Go's
 * MatchString. */
static int re_translate(const char *s, struct km_buf *o, int *cflags)
{
	if (strlen(s) > 4096)
		return -EINVAL;
	if (strncmp(s, "(?i)", 4) == 0) {
		*cflags |= REG_ICASE;
		s += 4;
	}
	bool operand = false; /* something a repetition can apply to precedes */
	bool rep = false, lazy = false;
	long product = 1; /* of the counted repetitions: glibc copies each */
	while (*s) {
		if (*s == '*' || *s == '+' || *s == '?' || *s == '{') {
			long max = 1;
			const char *e = *s == '{' ? re_count(s, &max) : s + 1;
			if (*s == '{' && !e) { /* a literal brace */
				km_buf_puts(o, "\\{");
				s++;
				operand = true;
				rep = false;
				continue;
			}
			if (e == s)
				return -EINVAL;
			if (rep && *s == '?' && lazy) { /* lazy: the same strings match */
				lazy = false;
				s++;
				continue;
			}
			if (rep || !operand || max > 1000)
				return -EINVAL;
			product *= max > 1 ? max : 1;
			if (product > 1000)
				return -EINVAL;
			km_buf_append(o, s, (size_t)(e - s));
			s = e;
			rep = lazy = true;
			continue;
		}
		rep = lazy = false;
		operand = true;
		if (s[0] == '(' && s[1] == '?' && s[2] == ':') {
			km_buf_putc(o, '(');
			s += 3;
			operand = false;
		} else if (strncmp(s, "(?P<", 4) == 0 || strncmp(s, "(?<", 3) == 0) {
			const char *e = strchr(s, '>'); /* a named group: the name goes */
			if (!e)
				return -EINVAL;
			km_buf_putc(o, '(');
			s = e + 1;
			operand = false;
		} else if (s[0] == '(' || s[0] == '|') {
			km_buf_putc(o, *s++);
			operand = false;
		} else if (s[0] == '[') {
			s = re_bracket(s, o);
			if (!s)
				return -EINVAL;
		} else if (s[0] == '\\' && s[1] == 'd') {
			km_buf_puts(o, "[0-9]");
			s += 2;
		} else if (s[0] == '\\' && s[1] == 'D') {
			km_buf_puts(o, "[^0-9]");
			s += 2;
		} else if (s[0] == '\\' && s[1] >= '0' && s[1] <= '9') {
			return -EINVAL; /* RE2 has no backreferences: upstream never matches */
		} else if (s[0] == '\\' && s[1]) {
			km_buf_append(o, s, 2);
			s += 2;
		} else {
			km_buf_putc(o, *s++);
		}
	}
	/* glibc builds a copy of the tree per count: bound what it builds */
	if (o->len * (size_t)product > 65536)
		return -EINVAL;
	return 0;
}

/* ---- config ---- */

/* The length of the well-formed UTF-8 sequence at <p> (at most <n> bytes),
 * or 0 when there is none. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0], min;
	size_t k;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		k = 1, min = 0x80, c &= 0x1f;
	else if ((c & 0xf0) == 0xe0)
		k = 2, min = 0x800, c &= 0x0f;
	else if ((c & 0xf8) == 0xf0)
		k = 3, min = 0x10000, c &= 0x07;
	else
		return 0;
	if (n <= k)
		return 0;
	for (size_t j = 1; j <= k; j++) {
		if ((p[j] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[j] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return k + 1;
}

struct dp_metrics_config *dp_metrics_config_ref(struct dp_metrics_config *c)
{
	if (c)
		c->refs++;
	return c;
}

static void free_regexes(struct dp_metrics_selector *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (l[i].re)
			regfree(l[i].re);
}

void dp_metrics_config_unref(struct dp_metrics_config *c)
{
	if (!c || --c->refs > 0)
		return;
	free_regexes(c->include, c->ninclude);
	free_regexes(c->exclude, c->nexclude);
	km_arena_free(c->a);
}

/* Go decodes null into anything as "leave it as it is". */
static bool absent(const struct km_json *v)
{
	return !v || v->kind == KM_JSON_NULL;
}

static int want(const struct km_json *v, enum km_json_kind kind, const char *path,
		struct km_buf *err)
{
	static const char *const names[] = {"null", "bool", "number", "string", "array", "object"};
	if (absent(v) || v->kind == kind)
		return 0;
	km_buf_printf(err, "%s: cannot decode %s into %s", path, names[v->kind], names[kind]);
	return -KM_E_PARSE;
}

static const char *str_or_empty(struct km_arena *a, const struct km_json *v)
{
	return absent(v) ? "" : km_arena_strndup(a, v->s.ptr, v->s.len);
}

static int parse_selectors(struct dp_metrics_config *c, const struct km_json *arr,
			   const char *path, struct dp_metrics_selector **out, size_t *n,
			   struct km_buf *err)
{
	if (want(arr, KM_JSON_ARRAY, path, err))
		return -KM_E_PARSE;
	if (absent(arr) || !arr->len)
		return 0;
	*out = km_arena_alloc(c->a, arr->len * sizeof(**out));
	for (size_t i = 0; i < arr->len; i++) {
		const struct km_json *o = arr->items[i];
		char p[96];
		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		if (want(o, KM_JSON_OBJECT, p, err))
			return -KM_E_PARSE;
		const struct km_json *t = absent(o) ? NULL : km_json_get(o, "type");
		const struct km_json *m = absent(o) ? NULL : km_json_get(o, "match");
		if (want(t, KM_JSON_STRING, p, err) || want(m, KM_JSON_STRING, p, err))
			return -KM_E_PARSE;
		struct dp_metrics_selector *s = &(*out)[(*n)++];
		s->match = str_or_empty(c->a, m);
		const char *type = str_or_empty(c->a, t);
		if (strcmp(type, "Prefix") == 0)
			s->type = DP_METRICS_PREFIX;
		else if (strcmp(type, "Exact") == 0)
			s->type = DP_METRICS_EXACT;
		else if (strcmp(type, "Contains") == 0)
			s->type = DP_METRICS_CONTAINS;
		else if (strcmp(type, "Regex") == 0)
			s->type = DP_METRICS_REGEX;
		else
			s->type = DP_METRICS_NEVER;
		if (s->type != DP_METRICS_REGEX)
			continue;
		struct km_buf re = KM_BUF_INIT;
		int cflags = REG_EXTENDED | REG_NOSUB;
		regex_t *rx = km_arena_alloc(c->a, sizeof(*rx));
		if (re_translate(s->match, &re, &cflags) == 0 &&
		    regcomp(rx, km_buf_cstr(&re), cflags) == 0) {
			s->re = rx;
		} else {
			km_warn(SUB_MM, "regex selector has no POSIX equivalent, it matches nothing "
					"match=\"%s\"",
				s->match);
			s->type = DP_METRICS_NEVER;
		}
		km_buf_fini(&re);
	}
	return 0;
}

static int parse_sidecar(struct dp_metrics_config *c, const struct km_json *sc, struct km_buf *err)
{
	const char *path = "observability.metrics.sidecar";
	if (want(sc, KM_JSON_OBJECT, path, err))
		return -KM_E_PARSE;
	if (absent(sc))
		return 0;
	const struct km_json *iu = km_json_get(sc, "includeUnused");
	if (want(iu, KM_JSON_BOOL, "observability.metrics.sidecar.includeUnused", err))
		return -KM_E_PARSE;
	c->include_unused = !absent(iu) && iu->b;
	const struct km_json *pr = km_json_get(sc, "profiles");
	if (want(pr, KM_JSON_OBJECT, "observability.metrics.sidecar.profiles", err))
		return -KM_E_PARSE;
	if (absent(pr))
		return 0;
	const struct km_json *ap = km_json_get(pr, "appendProfiles");
	if (want(ap, KM_JSON_ARRAY, "observability.metrics.sidecar.profiles.appendProfiles", err))
		return -KM_E_PARSE;
	for (size_t i = 0; !absent(ap) && i < ap->len; i++) {
		const struct km_json *o = ap->items[i];
		char p[96];
		snprintf(p, sizeof(p), "observability.metrics.sidecar.profiles.appendProfiles[%zu]", i);
		if (want(o, KM_JSON_OBJECT, p, err))
			return -KM_E_PARSE;
		const struct km_json *n = absent(o) ? NULL : km_json_get(o, "name");
		if (want(n, KM_JSON_STRING, p, err))
			return -KM_E_PARSE;
		struct km_str name = absent(n) ? KM_STR("") : n->s;
		if (km_str_eqc(name, "All"))
			c->profiles |= DP_METRICS_PROFILE_ALL;
		else if (km_str_eqc(name, "Basic"))
			c->profiles |= DP_METRICS_PROFILE_BASIC;
		else if (km_str_eqc(name, "None"))
			c->profiles |= DP_METRICS_PROFILE_NONE;
		else
			c->profiles |= DP_METRICS_PROFILE_OTHER;
	}
	/* the broadest profile decides whether Basic's sample filter runs;
	 * upstream sorts unknown names with All */
	if (c->profiles & (DP_METRICS_PROFILE_ALL | DP_METRICS_PROFILE_OTHER))
		c->effective = c->profiles & DP_METRICS_PROFILE_ALL ? DP_METRICS_PROFILE_ALL
								     : DP_METRICS_PROFILE_OTHER;
	else if (c->profiles & DP_METRICS_PROFILE_BASIC)
		c->effective = DP_METRICS_PROFILE_BASIC;
	else if (c->profiles)
		c->effective = DP_METRICS_PROFILE_NONE;
	if (parse_selectors(c, km_json_get(pr, "exclude"),
			    "observability.metrics.sidecar.profiles.exclude", &c->exclude,
			    &c->nexclude, err) ||
	    parse_selectors(c, km_json_get(pr, "include"),
			    "observability.metrics.sidecar.profiles.include", &c->include,
			    &c->ninclude, err))
		return -KM_E_PARSE;
	return 0;
}

static int parse_apps(struct dp_metrics_config *c, const struct km_json *arr, struct km_buf *err)
{
	if (want(arr, KM_JSON_ARRAY, "observability.metrics.applications", err))
		return -KM_E_PARSE;
	if (absent(arr) || !arr->len)
		return 0;
	c->apps = km_arena_alloc(c->a, arr->len * sizeof(*c->apps));
	for (size_t i = 0; i < arr->len; i++) {
		const struct km_json *o = arr->items[i];
		char p[96];
		snprintf(p, sizeof(p), "observability.metrics.applications[%zu]", i);
		if (want(o, KM_JSON_OBJECT, p, err))
			return -KM_E_PARSE;
		struct dp_metrics_app *app = &c->apps[c->napps++];
		app->name = app->path = app->address = "";
		if (absent(o))
			continue;
		const struct km_json *name = km_json_get(o, "name"), *path = km_json_get(o, "path");
		const struct km_json *addr = km_json_get(o, "address"), *port = km_json_get(o, "port");
		if (want(name, KM_JSON_STRING, p, err) || want(path, KM_JSON_STRING, p, err) ||
		    want(addr, KM_JSON_STRING, p, err) || want(port, KM_JSON_NUMBER, p, err))
			return -KM_E_PARSE;
		app->name = str_or_empty(c->a, name);
		app->path = str_or_empty(c->a, path);
		app->address = str_or_empty(c->a, addr);
		int64_t v = 0;
		if (!absent(port) && (!km_json_as_i64(port, &v) || v < 0 || v > UINT32_MAX)) {
			km_buf_printf(err, "%s.port: %.*s is not an unsigned 32-bit integer", p,
				      KM_STR_FMT(port->s));
			return -KM_E_PARSE;
		}
		app->port = (uint32_t)v;
	}
	return 0;
}

/* A label name as the OpenTelemetry Prometheus exporter writes attribute
 * keys (otlptranslator, underscore escaping): every other character becomes
 * '_', a leading digit gets "key_", a single leading '_' gets "key". */
static const char *label_name(struct km_arena *a, struct km_str k)
{
	struct km_buf b = KM_BUF_INIT;
	if (k.len && k.ptr[0] >= '0' && k.ptr[0] <= '9')
		km_buf_puts(&b, "key_");
	else if (k.len && k.ptr[0] == '_' && !(k.len > 1 && k.ptr[1] == '_'))
		km_buf_puts(&b, "key");
	for (size_t i = 0; i < k.len;) {
		char ch = k.ptr[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '_';
		km_buf_putc(&b, ok ? ch : '_');
		size_t n = utf8_seq((const unsigned char *)k.ptr + i, k.len - i);
		i += n ? n : 1; /* one '_' per character, and per stray byte */
	}
	const char *s = km_arena_strndup(a, km_buf_cstr(&b), b.len);
	km_buf_fini(&b);
	return s;
}

/* A label value escaped for the text format (\\, \" and \n), with bytes
 * that are not UTF-8 made U+FFFD as Go's JSON decoder makes them. */
static const char *label_value(struct km_arena *a, struct km_str v)
{
	struct km_buf b = KM_BUF_INIT;
	for (size_t i = 0; i < v.len;) {
		char ch = v.ptr[i];
		size_t n = utf8_seq((const unsigned char *)v.ptr + i, v.len - i);
		if (!n) {
			km_buf_puts(&b, "\xef\xbf\xbd");
			i++;
			continue;
		}
		if (ch == '\\')
			km_buf_puts(&b, "\\\\");
		else if (ch == '"')
			km_buf_puts(&b, "\\\"");
		else if (ch == '\n')
			km_buf_puts(&b, "\\n");
		else
			km_buf_append(&b, v.ptr + i, n);
		i += n;
	}
	const char *s = km_arena_strndup(a, km_buf_cstr(&b), b.len);
	km_buf_fini(&b);
	return s;
}

static int label_cmp(const void *x, const void *y)
{
	return strcmp(((const struct dp_metrics_label *)x)->key,
		      ((const struct dp_metrics_label *)y)->key);
}

static int parse_labels(struct dp_metrics_config *c, const struct km_json *o, struct km_buf *err)
{
	if (want(o, KM_JSON_OBJECT, "observability.metrics.extraLabels", err))
		return -KM_E_PARSE;
	if (absent(o) || !o->len)
		return 0;
	c->labels = km_arena_alloc(c->a, o->len * sizeof(*c->labels));
	for (size_t i = 0; i < o->len; i++) {
		const struct km_json *v = o->members[i].val;
		if (want(v, KM_JSON_STRING, "observability.metrics.extraLabels", err))
			return -KM_E_PARSE;
		if (!o->members[i].key.len)
			continue; /* no label name: an invalid OpenTelemetry attribute */
		const char *key = label_name(c->a, o->members[i].key);
		const char *val = label_value(c->a, absent(v) ? KM_STR("") : v->s);
		size_t j;
		for (j = 0; j < c->nlabels; j++) /* a later duplicate wins, as in a Go map */
			if (strcmp(c->labels[j].key, key) == 0)
				break;
		if (j == c->nlabels)
			c->nlabels++;
		c->labels[j] = (struct dp_metrics_label){key, val};
	}
	qsort(c->labels, c->nlabels, sizeof(*c->labels), label_cmp);
	return 0;
}

int dp_metrics_config_parse(struct km_str body, struct dp_metrics_config **out,
			    struct km_buf *err)
{
	struct km_arena *a = km_arena_new(4096);
	struct dp_metrics_config *c = km_arena_alloc(a, sizeof(*c));
	c->refs = 1;
	c->a = a;
	c->effective = DP_METRICS_PROFILE_BASIC;
	struct km_json *root = NULL;
	struct km_buf why = KM_BUF_INIT;
	int rc = km_json_parse(a, body.ptr ? body.ptr : "", body.len, &root, &why);
	if (rc) {
		km_buf_printf(err, "mesh metric configuration decoding error: %s", km_buf_cstr(&why));
		km_buf_fini(&why);
		km_arena_free(a);
		return -KM_E_PARSE;
	}
	km_buf_fini(&why);
	const struct km_json *obs = NULL, *m = NULL;
	rc = -KM_E_PARSE;
	if (want(root, KM_JSON_OBJECT, "(root)", err))
		goto fail;
	obs = absent(root) ? NULL : km_json_get(root, "observability");
	if (want(obs, KM_JSON_OBJECT, "observability", err))
		goto fail;
	m = absent(obs) ? NULL : km_json_get(obs, "metrics");
	if (want(m, KM_JSON_OBJECT, "observability.metrics", err))
		goto fail;
	if (!absent(m)) {
		const struct km_json *be = km_json_get(m, "backends");
		if (want(be, KM_JSON_ARRAY, "observability.metrics.backends", err))
			goto fail;
		for (size_t i = 0; !absent(be) && i < be->len; i++) {
			const struct km_json *b = be->items[i];
			if (want(b, KM_JSON_OBJECT, "observability.metrics.backends", err))
				goto fail;
			if (!absent(b) && km_str_eqc(km_json_get_string(b, "type"), "Prometheus"))
				c->nprometheus++;
		}
		if (parse_apps(c, km_json_get(m, "applications"), err) ||
		    parse_sidecar(c, km_json_get(m, "sidecar"), err) ||
		    parse_labels(c, km_json_get(m, "extraLabels"), err))
			goto fail;
	}
	*out = c;
	return 0;
fail:;
	struct km_buf msg = KM_BUF_INIT;
	km_buf_printf(&msg, "mesh metric configuration decoding error: %s", km_buf_cstr(err));
	km_buf_reset(err);
	km_buf_append(err, km_buf_cstr(&msg), msg.len);
	km_buf_fini(&msg);
	dp_metrics_config_unref(c);
	return rc;
}

const char *dp_metrics_envoy_path(const struct dp_metrics_config *c)
{
	/* url.Values.Encode() of upstream's query: keys sorted, empty values */
	if (c && !c->include_unused)
		return "/stats?format=prometheus&text_readouts=&usedonly=";
	return "/stats?format=prometheus&text_readouts=";
}

/* ---- the Prometheus text format ---- */

enum fam_kind { F_UNTYPED, F_COUNTER, F_GAUGE, F_HISTOGRAM, F_SUMMARY };

static const char *const kind_names[] = {"untyped", "counter", "gauge", "histogram", "summary"};

struct plabel {
	struct km_str name, value; /* value as written: escapes kept */
};

struct psample {
	struct km_str name, value, ts;
	size_t lab, nlab;
	size_t next; /* next sample of the family, or SIZE_MAX */
};

struct pfamily {
	struct km_str name, help;
	enum fam_kind kind;
	bool has_help, has_type, keep;
	size_t first, last, nsamples;
};

struct prom {
	struct pfamily *fam;
	size_t nfam, capfam;
	struct psample *smp;
	size_t nsmp, capsmp;
	struct plabel *lab;
	size_t nlab, caplab;
	uint32_t *slots; /* family index + 1; open addressing by name */
	size_t nslots;
	size_t cur; /* family of the previous sample, or SIZE_MAX */
	struct km_buf scratch;
	struct km_buf *err;
	size_t line;
};

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return p;
	size_t n = *cap ? *cap * 2 : 64;
	while (n < need)
		n *= 2;
	*cap = n;
	return km_realloc(p, n * size);
}

static size_t slot_of(const struct prom *ps, struct km_str name)
{
	return (size_t)km_fnv(KM_FNV_INIT, name.ptr, name.len) & (ps->nslots - 1);
}

static void rehash(struct prom *ps)
{
	free(ps->slots);
	ps->nslots = ps->nslots ? ps->nslots * 2 : 256;
	ps->slots = km_calloc(ps->nslots, sizeof(*ps->slots));
	for (size_t i = 0; i < ps->nfam; i++) {
		size_t s = slot_of(ps, ps->fam[i].name);
		while (ps->slots[s])
			s = (s + 1) & (ps->nslots - 1);
		ps->slots[s] = (uint32_t)(i + 1);
	}
}

static size_t find_family(const struct prom *ps, struct km_str name)
{
	if (!ps->nslots)
		return SIZE_MAX;
	for (size_t s = slot_of(ps, name);; s = (s + 1) & (ps->nslots - 1)) {
		uint32_t v = ps->slots[s];
		if (!v)
			return SIZE_MAX;
		if (km_str_eq(ps->fam[v - 1].name, name))
			return v - 1;
	}
}

static size_t family(struct prom *ps, struct km_str name)
{
	size_t i = find_family(ps, name);
	if (i != SIZE_MAX)
		return i;
	ps->fam = grow(ps->fam, &ps->capfam, ps->nfam + 1, sizeof(*ps->fam));
	i = ps->nfam++;
	ps->fam[i] = (struct pfamily){.name = name, .first = SIZE_MAX, .last = SIZE_MAX};
	if (ps->nfam * 2 > ps->nslots) {
		rehash(ps);
	} else {
		size_t s = slot_of(ps, name);
		while (ps->slots[s])
			s = (s + 1) & (ps->nslots - 1);
		ps->slots[s] = (uint32_t)(i + 1);
	}
	return i;
}

static int perr(struct prom *ps, const char *msg)
{
	km_buf_printf(ps->err, "text format parsing error in line %zu: %s", ps->line, msg);
	return -KM_E_PARSE;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

static const char *skip_blank(const char *s, const char *e)
{
	while (s < e && blank(*s))
		s++;
	return s;
}

static bool name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool name_char(char c)
{
	return name_start(c) || (c >= '0' && c <= '9');
}

/* A metric name at <s>: its end, or <s> when there is none. */
static const char *metric_name(const char *s, const char *e)
{
	if (s >= e || !name_start(*s))
		return s;
	while (s < e && name_char(*s))
		s++;
	return s;
}

static const char *label_name_end(const char *s, const char *e)
{
	if (s >= e || !name_start(*s) || *s == ':')
		return s;
	while (s < e && name_char(*s) && *s != ':')
		s++;
	return s;
}

/* Well-formed UTF-8 (what Go's UTF-8 validation asks of label values). */
static bool utf8_ok(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(p + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

/* Go's strconv.ParseFloat, near enough: the whole token must convert
 * (strtod would skip leading white space Go refuses). */
static bool parse_float(struct prom *ps, struct km_str t)
{
	if (!t.len || t.ptr[0] == '\r' || t.ptr[0] == '\v' || t.ptr[0] == '\f')
		return false;
	km_buf_reset(&ps->scratch);
	km_buf_append(&ps->scratch, t.ptr, t.len);
	const char *s = km_buf_cstr(&ps->scratch);
	char *end;
	(void)strtod(s, &end);
	return end == s + t.len;
}

static bool parse_ts(struct prom *ps, struct km_str t)
{
	if (!t.len)
		return false;
	size_t i = (t.ptr[0] == '-' || t.ptr[0] == '+') ? 1 : 0;
	if (i == t.len)
		return false;
	for (size_t j = i; j < t.len; j++)
		if (t.ptr[j] < '0' || t.ptr[j] > '9')
			return false;
	km_buf_reset(&ps->scratch);
	km_buf_append(&ps->scratch, t.ptr, t.len);
	errno = 0;
	(void)strtoll(km_buf_cstr(&ps->scratch), NULL, 10);
	return errno == 0;
}

static int parse_comment(struct prom *ps, const char *s, const char *e)
{
	s = skip_blank(s + 1, e);
	const char *w = s;
	while (s < e && !blank(*s))
		s++;
	bool help = (size_t)(s - w) == 4 && memcmp(w, "HELP", 4) == 0;
	bool type = (size_t)(s - w) == 4 && memcmp(w, "TYPE", 4) == 0;
	if (!help && !type)
		return 0; /* an ordinary comment: dropped */
	s = skip_blank(s, e);
	const char *ne = metric_name(s, e);
	if (ne == s || (ne < e && !blank(*ne)))
		return perr(ps, "invalid metric name in comment");
	struct km_str name = {s, (size_t)(ne - s)};
	s = skip_blank(ne, e);
	size_t f = family(ps, name);
	struct pfamily *fam = &ps->fam[f];
	if (help) {
		if (fam->has_help)
			return perr(ps, "second HELP line for metric name");
		for (const char *p = s; p < e; p++) {
			if (*p != '\\')
				continue;
			if (p + 1 >= e || (p[1] != '\\' && p[1] != 'n'))
				return perr(ps, "invalid escape sequence in HELP");
			p++;
		}
		fam->has_help = true;
		fam->help = (struct km_str){s, (size_t)(e - s)};
		return 0;
	}
	const char *te = s;
	while (te < e && !blank(*te))
		te++;
	if (skip_blank(te, e) != e)
		return perr(ps, "unexpected text after TYPE");
	if (fam->has_type || fam->nsamples)
		return perr(ps, "second TYPE line for metric name, or TYPE reported after samples");
	size_t k;
	for (k = 0; k < NELEM(kind_names); k++)
		if ((size_t)(te - s) == strlen(kind_names[k]) &&
		    strncasecmp(s, kind_names[k], (size_t)(te - s)) == 0)
			break;
	if (k == NELEM(kind_names))
		return perr(ps, "unknown metric type");
	fam->has_type = true;
	fam->kind = (enum fam_kind)k;
	return 0;
}

static bool has_suffix_of(struct km_str name, struct km_str base, const char *suffix)
{
	size_t n = strlen(suffix);
	return name.len == base.len + n && memcmp(name.ptr, base.ptr, base.len) == 0 &&
	       memcmp(name.ptr + base.len, suffix, n) == 0;
}

/* The family a sample named <name> belongs to: x_bucket, x_sum and x_count
 * go to histogram x, x_sum and x_count to summary x (as Go's parser does). */
static size_t sample_family(struct prom *ps, struct km_str name)
{
	static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
	for (size_t i = 0; i < NELEM(suffixes); i++) {
		size_t n = strlen(suffixes[i]);
		if (name.len <= n || memcmp(name.ptr + name.len - n, suffixes[i], n) != 0)
			continue;
		size_t f = find_family(ps, (struct km_str){name.ptr, name.len - n});
		if (f == SIZE_MAX)
			continue;
		enum fam_kind k = ps->fam[f].kind;
		if (k == F_HISTOGRAM || (k == F_SUMMARY && i > 0))
			return f;
	}
	if (ps->cur != SIZE_MAX && km_str_eq(ps->fam[ps->cur].name, name))
		return ps->cur; /* the common case: the same family as the line before */
	return family(ps, name);
}

static const struct plabel *find_label(const struct prom *ps, size_t lab, size_t n,
				       const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (km_str_eqc(ps->lab[lab + i].name, name))
			return &ps->lab[lab + i];
	return NULL;
}

static int parse_sample(struct prom *ps, const char *s, const char *e)
{
	const char *ne = metric_name(s, e);
	if (ne == s)
		return perr(ps, "invalid metric name");
	struct psample smp = {.name = {s, (size_t)(ne - s)}, .lab = ps->nlab, .next = SIZE_MAX};
	s = skip_blank(ne, e);
	if (s < e && *s == '{') {
		s++;
		while (1) {
			s = skip_blank(s, e);
			if (s < e && *s == '}') {
				s++;
				break;
			}
			const char *le = label_name_end(s, e);
			if (le == s)
				return perr(ps, "invalid label name");
			struct km_str ln = {s, (size_t)(le - s)};
			s = skip_blank(le, e);
			if (s >= e || *s != '=')
				return perr(ps, "expected '=' after label name");
			s = skip_blank(s + 1, e);
			if (s >= e || *s != '"')
				return perr(ps, "expected '\"' at start of label value");
			const char *vs = ++s;
			while (s < e && *s != '"') {
				if (*s == '\\') {
					if (s + 1 >= e || (s[1] != '\\' && s[1] != '"' && s[1] != 'n'))
						return perr(ps, "invalid escape sequence in label value");
					s++;
				}
				s++;
			}
			if (s >= e)
				return perr(ps, "unterminated label value");
			struct km_str lv = {vs, (size_t)(s - vs)};
			s++;
			if (!utf8_ok((const unsigned char *)lv.ptr, lv.len))
				return perr(ps, "invalid label value");
			for (size_t i = smp.lab; i < ps->nlab; i++)
				if (km_str_eq(ps->lab[i].name, ln))
					return perr(ps, "duplicate label names");
			ps->lab = grow(ps->lab, &ps->caplab, ps->nlab + 1, sizeof(*ps->lab));
			ps->lab[ps->nlab++] = (struct plabel){ln, lv};
			s = skip_blank(s, e);
			if (s < e && *s == ',') {
				s++;
				continue;
			}
			if (s < e && *s == '}') {
				s++;
				break;
			}
			return perr(ps, "expected ',' or '}' after label value");
		}
		s = skip_blank(s, e);
	}
	smp.nlab = ps->nlab - smp.lab;
	const char *ve = s;
	while (ve < e && !blank(*ve))
		ve++;
	smp.value = (struct km_str){s, (size_t)(ve - s)};
	if (!parse_float(ps, smp.value))
		return perr(ps, "expected float as value");
	s = skip_blank(ve, e);
	if (s < e) {
		const char *te = s;
		while (te < e && !blank(*te))
			te++;
		smp.ts = (struct km_str){s, (size_t)(te - s)};
		if (!parse_ts(ps, smp.ts))
			return perr(ps, "expected integer as timestamp");
		if (skip_blank(te, e) != e)
			return perr(ps, "spurious string after timestamp");
	}
	size_t f = sample_family(ps, smp.name);
	struct pfamily *fam = &ps->fam[f];
	const char *need = NULL;
	if (fam->kind == F_HISTOGRAM && !has_suffix_of(smp.name, fam->name, "_sum") &&
	    !has_suffix_of(smp.name, fam->name, "_count"))
		need = "le";
	else if (fam->kind == F_SUMMARY && km_str_eq(smp.name, fam->name))
		need = "quantile";
	if (need) {
		const struct plabel *l = find_label(ps, smp.lab, smp.nlab, need);
		if (!l || !parse_float(ps, l->value))
			return perr(ps, fam->kind == F_HISTOGRAM ? "expected float as value for 'le' label"
							       : "expected float as value for 'quantile' label");
	}
	ps->smp = grow(ps->smp, &ps->capsmp, ps->nsmp + 1, sizeof(*ps->smp));
	size_t i = ps->nsmp++;
	ps->smp[i] = smp;
	if (fam->last == SIZE_MAX)
		fam->first = i;
	else
		ps->smp[fam->last].next = i;
	fam->last = i;
	fam->nsamples++;
	ps->cur = f;
	return 0;
}

static int parse_text(struct prom *ps, struct km_str text)
{
	const char *p = text.ptr, *end = text.ptr + text.len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		ps->line++;
		const char *s = skip_blank(p, e);
		int rc = 0;
		if (s < e)
			rc = *s == '#' ? parse_comment(ps, s, e) : parse_sample(ps, s, e);
		if (rc)
			return rc;
		p = nl ? nl + 1 : end;
	}
	return 0;
}

/* Unescapes a label value into <b> for matching. */
static struct km_str unescape(struct km_buf *b, struct km_str v)
{
	if (!memchr(v.ptr, '\\', v.len))
		return v;
	km_buf_reset(b);
	for (size_t i = 0; i < v.len; i++) {
		char ch = v.ptr[i];
		if (ch == '\\' && i + 1 < v.len) {
			ch = v.ptr[++i];
			if (ch == 'n')
				ch = '\n';
		}
		km_buf_putc(b, ch);
	}
	return (struct km_str){km_buf_cstr(b), b->len};
}

/* Basic's sample filter: does one of <s>'s entity labels name an internal
 * cluster or listener? */
static bool internal_sample(struct prom *ps, const struct psample *s)
{
	for (size_t i = 0; i < s->nlab; i++) {
		const struct plabel *l = &ps->lab[s->lab + i];
		bool entity = false;
		for (size_t j = 0; j < NELEM(entity_labels); j++)
			entity = entity || km_str_eqc(l->name, entity_labels[j]);
		if (entity &&
		    table_match(basic_internal, NELEM(basic_internal), unescape(&ps->scratch, l->value)))
			return true;
	}
	return false;
}

static void filter_envoy(struct prom *ps, const struct dp_metrics_config *c)
{
	for (size_t f = 0; f < ps->nfam; f++) {
		struct pfamily *fam = &ps->fam[f];
		if (!fam->keep)
			continue;
		fam->keep = family_selected(c, fam->name, &ps->scratch);
		if (!fam->keep || c->effective != DP_METRICS_PROFILE_BASIC)
			continue;
		size_t prev = SIZE_MAX, n = 0;
		for (size_t i = fam->first; i != SIZE_MAX; i = ps->smp[i].next) {
			if (internal_sample(ps, &ps->smp[i]))
				continue;
			if (prev == SIZE_MAX)
				fam->first = i;
			else
				ps->smp[prev].next = i;
			prev = i;
			n++;
		}
		if (prev != SIZE_MAX)
			ps->smp[prev].next = SIZE_MAX;
		fam->last = prev;
		fam->nsamples = n;
		fam->keep = n > 0;
	}
}

static void write_sample(struct km_buf *out, const struct prom *ps, const struct psample *s,
			 const struct dp_metrics_config *c)
{
	size_t nl = c ? c->nlabels : 0;
	km_buf_append(out, s->name.ptr, s->name.len);
	bool open = false;
	for (size_t i = 0; i < s->nlab; i++) {
		const struct plabel *l = &ps->lab[s->lab + i];
		bool replaced = false;
		for (size_t j = 0; j < nl && !replaced; j++)
			replaced = km_str_eqc(l->name, c->labels[j].key);
		if (replaced)
			continue; /* the extra label wins, as in an attribute set */
		km_buf_putc(out, open ? ',' : '{');
		open = true;
		km_buf_append(out, l->name.ptr, l->name.len);
		km_buf_puts(out, "=\"");
		km_buf_append(out, l->value.ptr, l->value.len);
		km_buf_putc(out, '"');
	}
	for (size_t j = 0; j < nl; j++) {
		km_buf_putc(out, open ? ',' : '{');
		open = true;
		km_buf_printf(out, "%s=\"%s\"", c->labels[j].key, c->labels[j].value);
	}
	if (open)
		km_buf_putc(out, '}');
	km_buf_putc(out, ' ');
	km_buf_append(out, s->value.ptr, s->value.len);
	if (s->ts.len) {
		km_buf_putc(out, ' ');
		km_buf_append(out, s->ts.ptr, s->ts.len);
	}
	km_buf_putc(out, '\n');
}

int dp_metrics_rewrite(const struct dp_metrics_config *c, bool envoy, struct km_str text,
		       struct km_buf *out, struct km_buf *err)
{
	struct prom ps = {.cur = SIZE_MAX, .err = err};
	int rc = parse_text(&ps, text);
	if (rc == 0) {
		for (size_t f = 0; f < ps.nfam; f++) /* a family without samples has no points */
			ps.fam[f].keep = ps.fam[f].nsamples > 0;
		if (envoy && c)
			filter_envoy(&ps, c);
		for (size_t f = 0; f < ps.nfam; f++) {
			const struct pfamily *fam = &ps.fam[f];
			if (!fam->keep)
				continue;
			if (fam->has_help)
				km_buf_printf(out, "# HELP %.*s %.*s\n", KM_STR_FMT(fam->name),
					      KM_STR_FMT(fam->help));
			if (fam->has_type)
				km_buf_printf(out, "# TYPE %.*s %s\n", KM_STR_FMT(fam->name),
					      kind_names[fam->kind]);
			for (size_t i = fam->first; i != SIZE_MAX; i = ps.smp[i].next)
				write_sample(out, &ps, &ps.smp[i], c);
		}
	}
	free(ps.fam);
	free(ps.smp);
	free(ps.lab);
	free(ps.slots);
	km_buf_fini(&ps.scratch);
	return rc;
}

/* ---- transfers: one libcurl multi handle on the loop ---- */

struct xfer;
typedef void (*xfer_fn)(struct xfer *x, CURLcode cc, long status);

struct xfer {
	struct dp_metrics *m;
	CURL *easy;
	struct curl_slist *hdrs;
	struct km_buf body;
	char etag[256];
	char errbuf[CURL_ERROR_SIZE];
	xfer_fn fn;
	void *ud;
	size_t idx;
	struct xfer *prev, *next;
};

struct part {
	struct xfer *x;
	struct km_buf out;
};

/* One GET /meshmetric on the hijacker: lives until MHD completes the
 * connection; holds a reference on the config it started under. */
struct scrape {
	struct dp_metrics *m;
	struct MHD_Connection *conn;
	struct dp_metrics_config *cfg;
	struct part *parts; /* applications, then Envoy */
	size_t nparts, pending;
	bool suspended, done;
	unsigned status;
	struct km_buf body;
	struct scrape *prev, *next;
};

struct dp_metrics {
	struct km_loop *loop;
	struct km_arena *a; /* the copied options and paths */
	struct dp_metrics_opts o;
	const char *config_socket, *hijacker_socket;
	uint64_t refresh_ms;
	struct km_curlm *cm;
	struct km_timer fetch_timer;
	struct xfer *xfers;
	/* fetcher */
	struct xfer *fetch;
	char etag[256];
	struct dp_metrics_config *cfg;
	bool was_refused;
	/* hijacker */
	struct km_mhd w; /* the hijacker's daemon on the loop; w.d NULL while stopped */
	struct scrape *scrapes;
	bool start_failed;
};

static void on_xfer_done(void *ctx, CURL *easy, CURLcode cc)
{
	struct dp_metrics *m = ctx;
	struct xfer *x = NULL;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
	long status = 0;
	if (cc == CURLE_OK)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	km_curlm_remove(m->cm, x->easy);
	if (x->prev)
		x->prev->next = x->next;
	else
		m->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->fn(x, cc, status);
	curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->hdrs);
	km_buf_fini(&x->body);
	free(x);
}

static size_t on_xfer_data(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	return km_buf_append(&x->body, p, size * n) == 0 ? size * n : 0;
}

static size_t on_xfer_header(char *p, size_t size, size_t n, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * n;
	if (len > 5 && strncasecmp(p, "etag:", 5) == 0) {
		const char *v = p + 5;
		size_t vn = len - 5;
		while (vn && blank(*v))
			v++, vn--;
		while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || blank(v[vn - 1])))
			vn--;
		snprintf(x->etag, sizeof(x->etag), "%.*s", (int)vn, v);
	}
	return len;
}

/* Starts GET <url> (over <unix_path> when given); <fn> runs once when it
 * ends, unless cancelled. NULL (logged) when curl refuses it. */
static struct xfer *xfer_start(struct dp_metrics *m, const char *url, const char *unix_path,
			       const char *if_none_match, long timeout_ms, size_t max, xfer_fn fn,
			       void *ud, size_t idx)
{
	struct xfer *x = km_calloc(1, sizeof(*x));
	x->m = m;
	x->fn = fn;
	x->ud = ud;
	x->idx = idx;
	x->body.max = max;
	x->easy = curl_easy_init();
	if (!x->easy) {
		free(x);
		return NULL;
	}
	CURL *e = x->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	if (unix_path)
		curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, unix_path);
	if (if_none_match && *if_none_match) {
		char h[300];
		snprintf(h, sizeof(h), "If-None-Match: %s", if_none_match);
		x->hdrs = curl_slist_append(x->hdrs, h);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
	}
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_xfer_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_xfer_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	if (km_curlm_add(m->cm, e) != 0) {
		curl_easy_cleanup(e);
		curl_slist_free_all(x->hdrs);
		free(x);
		return NULL;
	}
	x->next = m->xfers;
	if (x->next)
		x->next->prev = x;
	m->xfers = x;
	return x;
}

/* Ends <x> without calling its callback. */
static void xfer_cancel(struct xfer *x)
{
	struct dp_metrics *m = x->m;
	km_curlm_remove(m->cm, x->easy);
	if (x->prev)
		x->prev->next = x->next;
	else
		m->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
	curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->hdrs);
	km_buf_fini(&x->body);
	free(x);
}

static const char *xfer_error(struct xfer *x, CURLcode cc)
{
	return x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc);
}

/* ---- the hijacker ---- */

static void scrape_free(struct scrape *s)
{
	struct dp_metrics *m = s->m;
	for (size_t i = 0; i < s->nparts; i++) {
		if (s->parts[i].x)
			xfer_cancel(s->parts[i].x);
		km_buf_fini(&s->parts[i].out);
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		m->scrapes = s->next;
	if (s->next)
		s->next->prev = s->prev;
	dp_metrics_config_unref(s->cfg);
	km_buf_fini(&s->body);
	free(s->parts);
	free(s);
}

/* Every part has answered (or failed): the body is the parts in order;
 * MHD picks the answer up once the connection is resumed. */
static void scrape_finish(struct scrape *s)
{
	for (size_t i = 0; i < s->nparts; i++) {
		km_buf_append(&s->body, km_buf_cstr(&s->parts[i].out), s->parts[i].out.len);
		km_buf_fini(&s->parts[i].out);
	}
	s->done = true;
	s->status = 200;
	if (s->suspended) {
		s->suspended = false;
		MHD_resume_connection(s->conn);
		/* MHD runs from the loop, not from inside curl's completion */
		km_mhd_run_soon(&s->m->w);
	}
}

static void on_part(struct xfer *x, CURLcode cc, long status)
{
	struct scrape *s = x->ud;
	bool envoy = x->idx == s->nparts - 1;
	struct part *p = &s->parts[x->idx];
	const char *name = envoy ? "envoy" : s->cfg->apps[x->idx].name;
	p->x = NULL;
	s->pending--;
	if (cc != CURLE_OK) {
		km_error(SUB_HJ, "failed call name=%s err=\"%s\"", name, xfer_error(x, cc));
	} else if (status != 200) {
		km_info(SUB_HJ, "application returned non-200 status name=%s status=%ld", name,
			status);
	} else {
		struct km_buf err = KM_BUF_INIT;
		struct km_str body = {km_buf_cstr(&x->body), x->body.len};
		if (dp_metrics_rewrite(s->cfg, envoy, body, &p->out, &err) != 0) {
			km_error(SUB_HJ, "failed to mutate metrics name=%s err=\"%s\"", name,
				 km_buf_cstr(&err));
			km_buf_reset(&p->out);
		}
		km_buf_fini(&err);
	}
	if (!s->pending)
		scrape_finish(s);
}

static void path_escape(struct km_buf *b, const char *p)
{
	if (*p != '/')
		km_buf_putc(b, '/');
	for (; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    strchr("-._~/!$&'()*+,;=:@", ch))
			km_buf_putc(b, (char)ch);
		else
			km_buf_printf(b, "%%%02X", ch);
	}
}

static void scrape_start(struct scrape *s)
{
	struct dp_metrics *m = s->m;
	const struct dp_metrics_config *c = s->cfg;
	size_t napps = c ? c->napps : 0;
	s->nparts = napps + 1;
	s->parts = km_calloc(s->nparts, sizeof(*s->parts));
	struct km_buf url = KM_BUF_INIT;
	for (size_t i = 0; i < s->nparts; i++) {
		km_buf_reset(&url);
		const char *unix_path = NULL;
		if (i < napps) {
			const struct dp_metrics_app *app = &c->apps[i];
			const char *host = *app->address ? app->address : m->o.default_address;
			bool v6 = strchr(host, ':') != NULL;
			km_buf_printf(&url, "http://%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
				      app->port);
			path_escape(&url, app->path);
			km_debug(SUB_HJ, "executing get stats request name=%s url=%s", app->name,
				 km_buf_cstr(&url));
		} else if (*m->o.admin_socket) {
			km_buf_printf(&url, "http://localhost%s", dp_metrics_envoy_path(c));
			unix_path = m->o.admin_socket;
		} else {
			const char *host = *m->o.admin_address ? m->o.admin_address : "127.0.0.1";
			bool v6 = strchr(host, ':') != NULL;
			km_buf_printf(&url, "http://%s%s%s:%d%s", v6 ? "[" : "", host, v6 ? "]" : "",
				      m->o.admin_port, dp_metrics_envoy_path(c));
		}
		s->parts[i].x = xfer_start(m, km_buf_cstr(&url), unix_path, NULL, SCRAPE_TIMEOUT_MS,
					   SCRAPE_MAX, on_part, s, i);
		if (s->parts[i].x)
			s->pending++;
		else
			km_error(SUB_HJ, "failed to create request url=%s", km_buf_cstr(&url));
	}
	km_buf_fini(&url);
}

/* Queues <body> (taken: MHD frees it) with <status>. */
static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *ctype,
			       struct km_buf *body)
{
	struct MHD_Response *r;
	if (body->len) {
		size_t len = body->len;
		char *data = km_buf_steal(body);
		r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
		if (!r)
			free(data);
	} else {
		r = MHD_create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT);
	}
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", ctype);
	enum MHD_Result rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **con_cls)
{
	struct dp_metrics *m = cls;
	if (!*con_cls) {
		*con_cls = m; /* headers only so far */
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0; /* bodies are ignored */
		return MHD_YES;
	}
	if (*con_cls != m) { /* resumed */
		struct scrape *s = *con_cls;
		if (!s->done)
			return MHD_YES;
		return respond(c, s->status, s->status == 200 ? TEXT_CONTENT_TYPE : "text/plain",
			       &s->body);
	}
	if (strncmp(url, CONFIG_PATH, strlen(CONFIG_PATH)) != 0) {
		struct km_buf nf = KM_BUF_INIT;
		km_buf_puts(&nf, "404 page not found\n");
		enum MHD_Result rc = respond(c, 404, "text/plain; charset=utf-8", &nf);
		km_buf_fini(&nf);
		return rc;
	}
	struct scrape *s = km_calloc(1, sizeof(*s));
	s->m = m;
	s->conn = c;
	s->cfg = dp_metrics_config_ref(m->cfg);
	s->next = m->scrapes;
	if (s->next)
		s->next->prev = s;
	m->scrapes = s;
	*con_cls = s;
	scrape_start(s);
	if (!s->pending) {
		scrape_finish(s);
		return respond(c, s->status, TEXT_CONTENT_TYPE, &s->body);
	}
	s->suspended = true;
	MHD_suspend_connection(c);
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct dp_metrics *m = cls;
	if (*con_cls && *con_cls != m)
		scrape_free(*con_cls);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = 0;
	km_warn(SUB_HJ, "%s", msg);
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (unlink(path) != 0 && errno != ENOENT) { /* a stale socket of an earlier run */
		int e = -errno;
		close(fd);
		return e;
	}
	if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 128) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static int server_start(struct dp_metrics *m)
{
	int fd = listen_unix(m->hijacker_socket);
	if (fd < 0) {
		if (!m->start_failed)
			km_error(SUB_HJ, "cannot listen socketPath=unix://%s err=\"%s\"",
				 m->hijacker_socket, strerror(-fd));
		m->start_failed = true;
		return fd;
	}
	struct MHD_Daemon *d = MHD_start_daemon(
	    MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_request, m,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED,
	    on_completed, m, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)(32 * 1024), MHD_OPTION_END);
	if (!d || km_mhd_attach(&m->w, m->loop, d) != 0) {
		if (!m->start_failed)
			km_error(SUB_HJ, "cannot start the metrics hijacker socketPath=unix://%s",
				 m->hijacker_socket);
		m->start_failed = true;
		if (d)
			MHD_stop_daemon(d); /* closes <fd> */
		else
			close(fd);
		unlink(m->hijacker_socket);
		return -EIO;
	}
	m->start_failed = false;
	km_info(SUB_HJ, "starting Metrics Hijacker Server socketPath=unix://%s", m->hijacker_socket);
	return 0;
}

static void server_stop(struct dp_metrics *m)
{
	if (!m->w.d)
		return;
	km_info(SUB_HJ, "stopping Metrics Hijacker Server");
	/* MHD must not stop with suspended connections: end their transfers
	 * and let them answer 503 */
	for (struct scrape *s = m->scrapes; s; s = s->next) {
		for (size_t i = 0; i < s->nparts; i++) {
			if (s->parts[i].x)
				xfer_cancel(s->parts[i].x);
			s->parts[i].x = NULL;
		}
		s->pending = 0;
		if (!s->done) {
			s->done = true;
			s->status = 503;
			km_buf_reset(&s->body);
		}
		if (s->suspended) {
			s->suspended = false;
			MHD_resume_connection(s->conn);
		}
	}
	km_mhd_stop(&m->w); /* completes every connection: frees their scrapes */
	while (m->scrapes)
		scrape_free(m->scrapes);
	unlink(m->hijacker_socket);
}

/* ---- the fetcher ---- */

static void set_config(struct dp_metrics *m, struct dp_metrics_config *c)
{
	struct dp_metrics_config *old = m->cfg;
	if (!c && !old)
		return;
	m->cfg = c;
	if (c) {
		km_info(SUB_MM,
			"updating hijacker configuration applications=%zu prometheusBackends=%zu "
			"extraLabels=%zu includeUnused=%s",
			c->napps, c->nprometheus, c->nlabels, c->include_unused ? "true" : "false");
		if (!m->w.d)
			server_start(m);
	} else {
		km_info(SUB_MM, "no MeshMetric configuration for this proxy");
		server_stop(m);
	}
	dp_metrics_config_unref(old);
}

static void on_fetched(struct xfer *x, CURLcode cc, long status)
{
	struct dp_metrics *m = x->ud;
	m->fetch = NULL;
	if (cc != CURLE_OK) {
		long os_errno = 0;
		curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno);
		if (cc == CURLE_COULDNT_CONNECT) {
			/* no listener: Envoy has no MeshMetric config (or is starting) */
			if (os_errno == ENOENT)
				km_debug(SUB_FETCH, "skipping fetch endpoint scrape since socket does "
						    "not exist, this is likely about to start path=%s",
					 CONFIG_PATH);
			else if (!m->was_refused || m->cfg)
				km_info(SUB_FETCH, "failed to scrape config, Envoy not listening on "
						   "socket path=%s",
					CONFIG_PATH);
			m->was_refused = os_errno != ENOENT;
			m->etag[0] = 0;
			set_config(m, NULL);
			return;
		}
		km_error(SUB_FETCH, "failed handle path=%s err=\"failed to scrape config: %s\"",
			 CONFIG_PATH, xfer_error(x, cc));
		return;
	}
	m->was_refused = false;
	char prev[sizeof(m->etag)];
	snprintf(prev, sizeof(prev), "%s", m->etag);
	m->etag[0] = 0; /* refetch in full after any error */
	switch (status) {
	case 200: {
		km_info(SUB_FETCH, "scraped config from Envoy changed path=%s etag=%s lastEtag=%s",
			CONFIG_PATH, x->etag, prev);
		struct dp_metrics_config *c = NULL;
		struct km_buf err = KM_BUF_INIT;
		if (dp_metrics_config_parse((struct km_str){km_buf_cstr(&x->body), x->body.len}, &c,
					    &err) != 0) {
			km_error(SUB_FETCH, "failed handle path=%s err=\"%s\"", CONFIG_PATH,
				 km_buf_cstr(&err));
			km_buf_fini(&err);
			return; /* the previous config stays */
		}
		km_buf_fini(&err);
		snprintf(m->etag, sizeof(m->etag), "%s", x->etag);
		set_config(m, c);
		return;
	}
	case 304:
		km_debug(SUB_FETCH, "no change in config from Envoy path=%s", CONFIG_PATH);
		snprintf(m->etag, sizeof(m->etag), "%s", prev);
		return;
	case 404:
		km_debug(SUB_FETCH, "config scraped from Envoy is not found path=%s", CONFIG_PATH);
		set_config(m, NULL);
		return;
	default:
		km_error(SUB_FETCH,
			 "failed handle path=%s err=\"failed to scrape config: unexpected status "
			 "code: %ld\"",
			 CONFIG_PATH, status);
		return;
	}
}

static void on_fetch_tick(struct km_loop *loop, void *ctx)
{
	struct dp_metrics *m = ctx;
	km_loop_timer_start(loop, &m->fetch_timer, m->refresh_ms, on_fetch_tick, m);
	if (m->cfg && !m->w.d)
		server_start(m); /* an earlier start failed */
	if (m->fetch)
		return; /* the previous fetch still runs */
	long timeout = m->refresh_ms < FETCH_TIMEOUT_MS ? (long)m->refresh_ms : FETCH_TIMEOUT_MS;
	m->fetch = xfer_start(m, "http://localhost" CONFIG_PATH, m->config_socket, m->etag, timeout,
			      CONFIG_MAX, on_fetched, m, 0);
}

/* ---- lifecycle ---- */

struct dp_metrics *dp_metrics_start(struct km_loop *loop, const struct dp_metrics_opts *o)
{
	struct dp_metrics *m = km_calloc(1, sizeof(*m));
	m->loop = loop;
	m->a = km_arena_new(0);
	struct km_arena *a = m->a;
#define COPY(f) m->o.f = km_arena_strdup(a, o->f ? o->f : "")
	COPY(work_dir);
	COPY(name);
	COPY(mesh);
	COPY(admin_socket);
	COPY(admin_address);
	COPY(default_address);
#undef COPY
	if (!*m->o.default_address)
		m->o.default_address = "127.0.0.1";
	m->o.admin_port = o->admin_port;
	m->o.refresh_ns = o->refresh_ns;
	m->refresh_ms = o->refresh_ns > 0 ? (uint64_t)(o->refresh_ns / 1000000) : 1000;
	if (!m->refresh_ms)
		m->refresh_ms = 1;
	m->config_socket = dp_metrics_config_socket(a, m->o.work_dir);
	m->hijacker_socket = dp_metrics_hijacker_socket(a, m->o.work_dir, m->o.name, m->o.mesh);
	m->cm = km_curlm_new(loop, on_xfer_done, m);
	if (!m->cm) {
		km_error(SUB_FETCH, "cannot create a curl multi handle");
		km_arena_free(m->a);
		free(m);
		return NULL;
	}
	km_info(SUB_FETCH, "start socketPath=unix://%s", m->config_socket);
	km_loop_timer_start(loop, &m->fetch_timer, 0, on_fetch_tick, m);
	return m;
}

const struct dp_metrics_config *dp_metrics_current(const struct dp_metrics *m)
{
	return m ? m->cfg : NULL;
}

void dp_metrics_stop(struct dp_metrics *m)
{
	if (!m)
		return;
	server_stop(m);
	km_loop_timer_stop(m->loop, &m->fetch_timer);
	while (m->xfers)
		xfer_cancel(m->xfers);
	m->fetch = NULL;
	km_curlm_free(m->cm);
	dp_metrics_config_unref(m->cfg);
	km_info(SUB_FETCH, "stopped");
	km_arena_free(m->a);
	free(m);
}
