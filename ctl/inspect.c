/* SPDX-License-Identifier: Apache-2.0 */
/* `kumactl inspect dataplanes|meshes|zones`: one GET of the overview or
 * insight list, printed with upstream's columns (status, subscriptions,
 * certificate and version cells) or as YAML/JSON. Cells live in the arena. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

static const char *dup_str(struct km_arena *a, struct km_str s)
{
	return km_arena_strndup(a, s.ptr, s.len);
}

static const struct km_json *path_get(const struct km_json *v, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n && v; i++)
		v = v->kind == KM_JSON_OBJECT ? km_json_get(v, keys[i]) : NULL;
	return v;
}

/* uint64 fields are strings in protojson ("10"), numbers elsewhere. */
static unsigned long long num(const struct km_json *v)
{
	if (!v)
		return 0;
	if (v->kind == KM_JSON_NUMBER)
		return v->is_int ? (unsigned long long)v->i : (unsigned long long)v->d;
	if (v->kind == KM_JSON_STRING) {
		unsigned long long n = 0;
		if (km_str_to_u64(v->s, &n) == 0)
			return n;
	}
	return 0;
}

static const char *ago(struct km_arena *a, const struct km_json *ts, int64_t now)
{
	if (!ts || ts->kind != KM_JSON_STRING || ts->s.len == 0)
		return "never";
	return ctl_table_age(a, ts->s, now);
}

static const struct km_json *last_sub(const struct km_json *insight)
{
	const struct km_json *subs = insight ? km_json_get(insight, "subscriptions") : NULL;
	if (!subs || subs->kind != KM_JSON_ARRAY || subs->len == 0)
		return NULL;
	return subs->items[subs->len - 1];
}

static void sum_subs(const struct km_json *insight, unsigned long long *sent,
		     unsigned long long *rejected)
{
	*sent = *rejected = 0;
	const struct km_json *subs = insight ? km_json_get(insight, "subscriptions") : NULL;
	if (!subs || subs->kind != KM_JSON_ARRAY)
		return;
	static const char *const ks[] = {"status", "total", "responsesSent"};
	static const char *const kr[] = {"status", "total", "responsesRejected"};
	for (size_t i = 0; i < subs->len; i++) {
		*sent += num(path_get(subs->items[i], ks, 3));
		*rejected += num(path_get(subs->items[i], kr, 3));
	}
}

static bool online(const struct km_json *insight)
{
	const struct km_json *subs = insight ? km_json_get(insight, "subscriptions") : NULL;
	if (!subs || subs->kind != KM_JSON_ARRAY)
		return false;
	for (size_t i = 0; i < subs->len; i++) {
		const struct km_json *ct = km_json_get(subs->items[i], "connectTime");
		const struct km_json *dt = km_json_get(subs->items[i], "disconnectTime");
		if (ct && ct->kind == KM_JSON_STRING && (!dt || dt->kind == KM_JSON_NULL))
			return true;
	}
	return false;
}

/* UTC "2006-01-02 15:04:05" of an RFC 3339 timestamp (seconds precision). */
static const char *date_cell(struct km_arena *a, const struct km_json *ts)
{
	if (!ts || ts->kind != KM_JSON_STRING || ts->s.len < 19)
		return "-";
	char buf[20];
	memcpy(buf, ts->s.ptr, 19);
	buf[10] = ' ';
	buf[19] = '\0';
	return km_arena_strdup(a, buf);
}

static int cmp_cstr(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

void ctl_inspect_dataplanes_table(struct ctl_table *t, struct km_arena *a,
				  const struct km_json *list, int64_t now)
{
	static const char *const headers[] = {"MESH",
					      "NAME",
					      "TAGS",
					      "STATUS",
					      "LAST CONNECTED AGO",
					      "LAST UPDATED AGO",
					      "TOTAL UPDATES",
					      "TOTAL ERRORS",
					      "CERT REGENERATED AGO",
					      "CERT EXPIRATION",
					      "CERT REGENERATIONS",
					      "CERT BACKEND",
					      "SUPPORTED CERT BACKENDS",
					      "KUMA-DP VERSION",
					      "ENVOY VERSION",
					      "DEPENDENCIES VERSIONS",
					      "NOTES"};
	ctl_table_init(t, a, headers, 17);
	const struct km_json *items = km_json_get(list, "items");
	if (!items || items->kind != KM_JSON_ARRAY)
		return;
	for (size_t i = 0; i < items->len; i++) {
		const struct km_json *it = items->items[i];
		const struct km_json *dp = km_json_get(it, "dataplane");
		const struct km_json *ins = km_json_get(it, "dataplaneInsight");
		const struct km_json *net = dp ? km_json_get(dp, "networking") : NULL;
		const struct km_json *sub = last_sub(ins);
		unsigned long long sent, rejected;
		sum_subs(ins, &sent, &rejected);
		/* status: gateways are online or offline; otherwise count ready inbounds/listeners
		 */
		bool on = online(ins);
		struct km_buf notes = KM_BUF_INIT;
		const char *status;
		if (net && km_json_get(net, "gateway")) {
			status = on ? "Online" : "Offline";
		} else {
			size_t ready = 0, total = 0;
			const struct km_json *inb = net ? km_json_get(net, "inbound") : NULL;
			const struct km_json *lst = net ? km_json_get(net, "listeners") : NULL;
			if (inb && inb->kind == KM_JSON_ARRAY)
				for (size_t k = 0; k < inb->len; k++, total++) {
					const struct km_json *h =
						km_json_get(inb->items[k], "health");
					const struct km_json *rd =
						h ? km_json_get(h, "ready") : NULL;
					bool not_ready =
						(h && h->kind == KM_JSON_OBJECT &&
						 !(rd && rd->kind == KM_JSON_BOOL && rd->b)) ||
						km_str_eqc(
							km_json_get_string(inb->items[k], "state"),
							"NotReady");
					if (not_ready)
						km_buf_printf(
							&notes, "%sinbound[port=%llu] is not ready",
							notes.len ? ";" : "",
							num(km_json_get(inb->items[k], "port")));
					else
						ready++;
				}
			if (lst && lst->kind == KM_JSON_ARRAY)
				for (size_t k = 0; k < lst->len; k++, total++) {
					struct km_str st =
						km_json_get_string(lst->items[k], "state");
					if (km_str_eqc(st, "Ready"))
						ready++;
					else
						km_buf_printf(
							&notes,
							"%slistener[port=%llu,type=%.*s] is not ready",
							notes.len ? ";" : "",
							num(km_json_get(lst->items[k], "port")),
							KM_STR_FMT(km_json_get_string(lst->items[k],
										      "type")));
				}
			if (!on || ready == 0)
				status = "Offline";
			else if (ready < total)
				status = "Partially degraded";
			else {
				status = "Online";
				km_buf_reset(&notes);
			}
		}
		const struct km_json *mtls = ins ? km_json_get(ins, "mTLS") : NULL;
		static const char *const k_upd[] = {"status", "lastUpdateTime"};
		const char *regens = "0", *backend = "-", *supported = "";
		if (mtls) {
			regens = km_arena_printf(
				a, "%llu", num(km_json_get(mtls, "certificateRegenerations")));
			backend = dup_str(a, km_json_get_string(mtls, "issuedBackend"));
			const struct km_json *sb = km_json_get(mtls, "supportedBackends");
			struct km_buf b = KM_BUF_INIT;
			if (sb && sb->kind == KM_JSON_ARRAY)
				for (size_t k = 0; k < sb->len; k++)
					km_buf_printf(&b, "%s%.*s", k ? "," : "",
						      KM_STR_FMT(sb->items[k]->s));
			supported = km_arena_strdup(a, km_buf_cstr(&b));
			km_buf_fini(&b);
		}
		const char *dpver = "", *envoyver = "", *deps = "-";
		const struct km_json *ver = sub ? km_json_get(sub, "version") : NULL;
		if (ver) {
			const struct km_json *kd = km_json_get(ver, "kumaDp");
			const struct km_json *ev = km_json_get(ver, "envoy");
			if (kd)
				dpver = dup_str(a, km_json_get_string(kd, "version"));
			if (ev)
				envoyver = dup_str(a, km_json_get_string(ev, "version"));
			const struct km_json *dv = km_json_get(ver, "dependencies");
			if (dv && dv->kind == KM_JSON_OBJECT && dv->len) {
				/* Go map order is random; sort for a stable cell */
				const char **ds = km_arena_alloc(a, dv->len * sizeof(*ds));
				for (size_t k = 0; k < dv->len; k++)
					ds[k] = km_arena_printf(a, "%.*s: %.*s",
								KM_STR_FMT(dv->members[k].key),
								KM_STR_FMT(dv->members[k].val->s));
				qsort(ds, dv->len, sizeof(*ds), cmp_cstr);
				struct km_buf b = KM_BUF_INIT;
				for (size_t k = 0; k < dv->len; k++)
					km_buf_printf(&b, "%s%s", k ? ", " : "", ds[k]);
				deps = km_arena_strdup(a, km_buf_cstr(&b));
				km_buf_fini(&b);
			}
		}
		const char *cells[17] = {
			dup_str(a, km_json_get_string(it, "mesh")),
			dup_str(a, km_json_get_string(it, "name")),
			ctl_table_tags(a, km_json_get(it, "labels"), net),
			status,
			ago(a, sub ? km_json_get(sub, "connectTime") : NULL, now),
			ago(a, sub ? path_get(sub, k_upd, 2) : NULL, now),
			km_arena_printf(a, "%llu", sent),
			km_arena_printf(a, "%llu", rejected),
			ago(a, mtls ? km_json_get(mtls, "lastCertificateRegeneration") : NULL, now),
			date_cell(a, mtls ? km_json_get(mtls, "certificateExpirationTime") : NULL),
			regens,
			backend,
			supported,
			dpver,
			envoyver,
			deps,
			km_arena_strdup(a, km_buf_cstr(&notes)),
		};
		km_buf_fini(&notes);
		ctl_table_row(t, cells);
	}
}

void ctl_inspect_meshes_table(struct ctl_table *t, struct km_arena *a, const struct km_json *list)
{
	static const char *const headers[] = {"MESH", "DATAPLANES"};
	ctl_table_init(t, a, headers, 2);
	const struct km_json *items = km_json_get(list, "items");
	if (!items || items->kind != KM_JSON_ARRAY)
		return;
	for (size_t i = 0; i < items->len; i++) {
		const struct km_json *it = items->items[i];
		const struct km_json *dps = km_json_get(it, "dataplanes");
		const char *cells[2] = {
			dup_str(a, km_json_get_string(it, "name")),
			km_arena_printf(a, "%llu/%llu",
					num(dps ? km_json_get(dps, "online") : NULL),
					num(dps ? km_json_get(dps, "total") : NULL)),
		};
		ctl_table_row(t, cells);
	}
}

void ctl_inspect_zones_table(struct ctl_table *t, struct km_arena *a, const struct km_json *list,
			     int64_t now)
{
	static const char *const headers[] = {
		"NAME",          "STATUS",       "LAST CONNECTED AGO", "LAST UPDATED AGO",
		"TOTAL UPDATES", "TOTAL ERRORS", "ZONE-CP VERSION",    "BACKEND"};
	ctl_table_init(t, a, headers, 8);
	const struct km_json *items = km_json_get(list, "items");
	if (!items || items->kind != KM_JSON_ARRAY)
		return;
	for (size_t i = 0; i < items->len; i++) {
		const struct km_json *it = items->items[i];
		const struct km_json *zone = km_json_get(it, "zone");
		const struct km_json *ins = km_json_get(it, "zoneInsight");
		const struct km_json *sub = last_sub(ins);
		const struct km_json *en = zone ? km_json_get(zone, "enabled") : NULL;
		bool enabled = !en || en->kind != KM_JSON_BOOL || en->b;
		unsigned long long sent, rejected;
		sum_subs(ins, &sent, &rejected);
		static const char *const k_upd[] = {"status", "lastUpdateTime"};
		static const char *const k_cp[] = {"version", "kumaCp", "version"};
		const struct km_json *cpv = sub ? path_get(sub, k_cp, 3) : NULL;
		const char *backend = "";
		struct km_str cfg = sub ? km_json_get_string(sub, "config") : KM_STR("");
		if (cfg.len) {
			struct km_json *cv = NULL;
			if (km_json_parse(a, cfg.ptr, cfg.len, &cv, NULL) == 0 &&
			    cv->kind == KM_JSON_OBJECT) {
				const struct km_json *store = km_json_get(cv, "store");
				if (store && store->kind == KM_JSON_OBJECT)
					backend = dup_str(a, km_json_get_string(store, "type"));
			}
		}
		const char *cells[8] = {
			dup_str(a, km_json_get_string(it, "name")),
			online(ins) && enabled ? "Online" : "Offline",
			ago(a, sub ? km_json_get(sub, "connectTime") : NULL, now),
			ago(a, sub ? path_get(sub, k_upd, 2) : NULL, now),
			km_arena_printf(a, "%llu", sent),
			km_arena_printf(a, "%llu", rejected),
			cpv && cpv->kind == KM_JSON_STRING ? dup_str(a, cpv->s) : "",
			backend,
		};
		ctl_table_row(t, cells);
	}
}

/* GETs <path>; on failure prints upstream's error and returns 1. */
static int fetch(struct ctl_ctx *c, const char *path, struct ctl_resp *r)
{
	ctl_client_check_version(c);
	const struct ctl_cp *cp = ctl_client_cp(c);
	if (!cp)
		return 1;
	struct km_buf err = KM_BUF_INIT;
	if (ctl_client_do(c, cp, "GET", path, NULL, r, &err) < 0) {
		int rc = ctl_args_fail(c, "%s", km_buf_cstr(&err));
		km_buf_fini(&err);
		return rc;
	}
	km_buf_fini(&err);
	if (r->status != 200) {
		const char *apierr = r->status >= 400 ? ctl_client_api_error(c->a, r->body) : NULL;
		if (apierr)
			return ctl_args_fail(c, "%s", apierr);
		return ctl_args_fail(c, "(%ld): %.*s", r->status, KM_STR_FMT(r->body));
	}
	return 0;
}

static int fetch_json(struct ctl_ctx *c, const char *path, struct km_json **v)
{
	struct ctl_resp r = {0};
	int rc = fetch(c, path, &r);
	if (rc)
		return rc;
	struct km_buf perr = KM_BUF_INIT;
	if (km_json_parse(c->a, r.body.ptr, r.body.len, v, &perr) < 0) {
		rc = ctl_args_fail(c, "%s", km_buf_cstr(&perr));
		km_buf_fini(&perr);
		return rc;
	}
	km_buf_fini(&perr);
	return 0;
}

/* Prints <t> for -o table, or <v> itself as yaml/json. */
static int print_as(struct ctl_ctx *c, struct ctl_table *t, const struct km_json *v)
{
	const char *format = ctl_args_str(c, "output");
	struct km_buf out = KM_BUF_INIT;
	if (!strcmp(format, "table")) {
		ctl_table_write(t, &out);
	} else if (!strcmp(format, "json")) {
		ctl_table_print_json(v, &out);
	} else if (!strcmp(format, "yaml")) {
		ctl_table_print_yaml(c->a, v, &out);
	} else {
		km_buf_fini(&out);
		return ctl_args_fail(c, "unknown output format \"%s\"", format);
	}
	int rc = ctl_args_out(&out);
	km_buf_fini(&out);
	return rc;
}

/* GETs a list at <path> and prints it with the <kind> table or as yaml/json. */
static int inspect_list(struct ctl_ctx *c, const char *path, int kind)
{
	struct km_json *v = NULL;
	int rc = fetch_json(c, path, &v);
	if (rc)
		return rc;
	struct ctl_table t;
	if (kind == 0)
		ctl_inspect_dataplanes_table(&t, c->a, v, c->now_ns);
	else if (kind == 1)
		ctl_inspect_meshes_table(&t, c->a, v);
	else
		ctl_inspect_zones_table(&t, c->a, v, c->now_ns);
	/* like `get`, kumactl rebuilds lists: total, items, never a next link */
	struct km_json *l = km_json_object(c->a);
	struct km_json *total = km_json_get(v, "total");
	struct km_json *items = km_json_get(v, "items");
	km_json_set(c->a, l, "total", total ? total : km_json_int(c->a, 0));
	km_json_set(c->a, l, "items", items ? items : km_json_array(c->a));
	km_json_set(c->a, l, "next", km_json_null(c->a));
	return print_as(c, &t, l);
}

void ctl_inspect_policies_table(struct ctl_table *t, struct km_arena *a, const struct km_json *v)
{
	static const char *const headers[] = {"Kind", "Origins"};
	ctl_table_init(t, a, headers, 2);
	const struct km_json *ps = km_json_get(v, "policies");
	if (!ps || ps->kind != KM_JSON_ARRAY)
		return;
	for (size_t i = 0; i < ps->len; i++) {
		const struct km_json *o = km_json_get(ps->items[i], "origins");
		struct km_buf b = KM_BUF_INIT;
		if (o && o->kind == KM_JSON_ARRAY)
			for (size_t k = 0; k < o->len; k++)
				km_buf_printf(&b, "%s%.*s", k ? "," : "",
					      KM_STR_FMT(km_json_get_string(o->items[k], "kri")));
		const char *cells[2] = {dup_str(a, km_json_get_string(ps->items[i], "kind")),
					km_arena_strdup(a, km_buf_cstr(&b))};
		km_buf_fini(&b);
		ctl_table_row(t, cells);
	}
}

void ctl_inspect_policy_dataplanes_table(struct ctl_table *t, struct km_arena *a,
					 const struct km_json *v)
{
	static const char *const headers[] = {"Type", "Mesh", "Name"};
	ctl_table_init(t, a, headers, 3);
	const struct km_json *items = km_json_get(v, "items");
	if (items && items->kind == KM_JSON_ARRAY)
		for (size_t i = 0; i < items->len; i++) {
			const struct km_json *it = items->items[i];
			const char *cells[3] = {dup_str(a, km_json_get_string(it, "type")),
						dup_str(a, km_json_get_string(it, "mesh")),
						dup_str(a, km_json_get_string(it, "name"))};
			ctl_table_row(t, cells);
		}
	t->footer = km_arena_printf(a, "Total: %llu", num(km_json_get(v, "total")));
}

void ctl_inspect_policy_legacy(const struct km_json *v, struct km_buf *out)
{
	km_buf_puts(out, "Affected data plane proxies:\n\n");
	const struct km_json *items = km_json_get(v, "items");
	if (!items || items->kind != KM_JSON_ARRAY)
		return;
	for (size_t i = 0; i < items->len; i++) {
		const struct km_json *it = items->items[i];
		if (!km_str_eqc(km_json_get_string(it, "kind"), "SidecarDataplane"))
			continue;
		const struct km_json *dp = km_json_get(it, "dataplane");
		const struct km_json *att = km_json_get(it, "attachments");
		km_buf_printf(out, "  %.*s",
			      KM_STR_FMT(dp ? km_json_get_string(dp, "name") : KM_STR("")));
		size_t n = att && att->kind == KM_JSON_ARRAY ? att->len : 0;
		bool only_dp = n == 1 &&
			       km_str_eqc(km_json_get_string(att->items[0], "type"), "dataplane");
		if (!only_dp) {
			km_buf_puts(out, ":\n");
			for (size_t k = 0; k < n; k++) {
				struct km_str type = km_json_get_string(att->items[k], "type");
				struct km_str name = km_json_get_string(att->items[k], "name");
				struct km_str svc = km_json_get_string(att->items[k], "service");
				if (km_str_eqc(type, "dataplane"))
					km_buf_printf(out, "    %.*s\n", KM_STR_FMT(type));
				else if (km_str_eqc(type, "service"))
					km_buf_printf(out, "    %.*s %.*s\n", KM_STR_FMT(type),
						      KM_STR_FMT(name));
				else
					km_buf_printf(out, "    %.*s %.*s(%.*s)\n",
						      KM_STR_FMT(type), KM_STR_FMT(name),
						      KM_STR_FMT(svc));
			}
		}
		km_buf_putc(out, '\n');
	}
}

int ctl_inspect_dataplane_run(struct ctl_ctx *c)
{
	const char *type = ctl_args_str(c, "type");
	const char **incl = NULL;
	size_t nincl = ctl_args_all(c, "include", &incl);
	if (ctl_args_bool(c, "shadow") && strcmp(type, "config") != 0)
		return ctl_args_fail(c, "flag '--shadow' can be used only when '--type=config'");
	if (nincl && strcmp(type, "config") != 0)
		return ctl_args_fail(c, "flag '--include' can be used only when '--type=config'");
	if (ctl_args_bool(c, "include-eds") && strcmp(type, "config-dump") != 0)
		return ctl_args_fail(
			c, "flag '--include-eds' can be used only when '--type=config-dump'");
	const char *base = km_arena_printf(c->a, "/meshes/%s/dataplanes/%s",
					   ctl_client_escape(c->a, ctl_args_mesh(c)),
					   ctl_client_escape(c->a, c->args[0]));
	const char *path;
	if (!strcmp(type, "policies")) {
		struct km_json *v = NULL;
		int rc = fetch_json(c, km_arena_printf(c->a, "%s/_policies", base), &v);
		if (rc)
			return rc;
		struct ctl_table t;
		ctl_inspect_policies_table(&t, c->a, v);
		return print_as(c, &t, v);
	} else if (!strcmp(type, "config-dump")) {
		path = km_arena_printf(c->a, "%s/xds?include_eds=%s", base,
				       ctl_args_bool(c, "include-eds") ? "true" : "false");
	} else if (!strcmp(type, "stats")) {
		path = km_arena_printf(c->a, "%s/stats", base);
	} else if (!strcmp(type, "clusters")) {
		path = km_arena_printf(c->a, "%s/clusters", base);
	} else if (!strcmp(type, "config")) {
		struct km_buf q = KM_BUF_INIT;
		for (size_t i = 0; i < nincl; i++)
			km_buf_printf(&q, "include=%s&", ctl_client_escape(c->a, incl[i]));
		path = km_arena_printf(c->a, "%s/_config?%sshadow=%s", base, km_buf_cstr(&q),
				       ctl_args_bool(c, "shadow") ? "true" : "false");
		km_buf_fini(&q);
	} else {
		return ctl_args_fail(c, "invalid inspection type");
	}
	struct ctl_resp r = {0};
	int rc = fetch(c, path, &r);
	if (rc)
		return rc;
	fwrite(r.body.ptr, 1, r.body.len, stdout);
	return fflush(stdout) == 0 ? 0 : 1;
}

int ctl_inspect_policy_run(struct ctl_ctx *c)
{
	const char *base =
		km_arena_printf(c->a, "/meshes/%s/%s/%s", ctl_client_escape(c->a, ctl_args_mesh(c)),
				c->rtype->path, ctl_client_escape(c->a, c->args[0]));
	struct km_json *v = NULL;
	if (!ctl_args_bool(c, "new-api")) {
		int rc = fetch_json(c, km_arena_printf(c->a, "%s/dataplanes", base), &v);
		if (rc)
			return rc;
		struct km_buf out = KM_BUF_INIT;
		ctl_inspect_policy_legacy(v, &out);
		rc = ctl_args_out(&out);
		km_buf_fini(&out);
		return rc;
	}
	int rc = fetch_json(c, km_arena_printf(c->a, "%s/_resources/dataplanes", base), &v);
	if (rc)
		return rc;
	struct ctl_table t;
	ctl_inspect_policy_dataplanes_table(&t, c->a, v);
	return print_as(c, &t, v);
}

int ctl_inspect_dataplanes_run(struct ctl_ctx *c)
{
	struct km_buf p = KM_BUF_INIT;
	km_buf_printf(&p, "/meshes/%s/dataplanes/_overview",
		      ctl_client_escape(c->a, ctl_args_mesh(c)));
	char sep = '?';
	if (ctl_args_bool(c, "gateway")) {
		km_buf_printf(&p, "%cgateway=true", sep);
		sep = '&';
	}
	if (ctl_args_bool(c, "ingress")) {
		km_buf_printf(&p, "%cingress=true", sep);
		sep = '&';
	}
	const char **tags = NULL;
	size_t n = ctl_args_all(c, "tag", &tags);
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(tags[i], '=');
		const char *kv = eq ? km_arena_printf(c->a, "%.*s:%s", (int)(eq - tags[i]), tags[i],
						      eq + 1) :
				      tags[i];
		km_buf_printf(&p, "%ctag=%s", sep, ctl_client_escape(c->a, kv));
		sep = '&';
	}
	const char *path = km_arena_strdup(c->a, km_buf_cstr(&p));
	km_buf_fini(&p);
	return inspect_list(c, path, 0);
}

int ctl_inspect_meshes_run(struct ctl_ctx *c)
{
	return inspect_list(c, "/mesh-insights", 1);
}

int ctl_inspect_zones_run(struct ctl_ctx *c)
{
	return inspect_list(c, "/zones/_overview", 2);
}
