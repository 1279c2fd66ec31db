/* SPDX-License-Identifier: Apache-2.0 */
/* The targetRef policy engine: policies parsed once per mesh context
 * (cp_policy_parse), matched to one Dataplane and merged into rules
 * (cp_policy_match), then applied to the generated Envoy resources by the
 * plugins of the static table cp_policy_plugins[] (cp_policy_apply_prepared). Every
 * result lives in the caller's arena and borrows from the mesh context. */
#ifndef CP_POLICY_POLICY_H
#define CP_POLICY_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "codec/json.h"
#include "cp/xds/generate.h"
#include "resource/resource.h"

/* Origin and role ranks (later = higher priority), as upstream compares them. */
enum {
	CP_POLICY_ORIGIN_GLOBAL = 1,
	CP_POLICY_ORIGIN_UNKNOWN = 2,
	CP_POLICY_ORIGIN_ZONE = 3
};
enum {
	CP_POLICY_ROLE_SYSTEM = 1,
	CP_POLICY_ROLE_PRODUCER = 2,
	CP_POLICY_ROLE_CONSUMER = 3,
	CP_POLICY_ROLE_WORKLOAD_OWNER = 4
};

/* One policy of a mesh, parsed once per mesh context. */
struct cp_policy {
	const struct km_rtype *type;
	struct km_str mesh;
	struct km_str name;         /* name in the store */
	struct km_str display;      /* kuma.io/display-name, else the name */
	struct km_json *labels;     /* object, never NULL */
	struct km_json *spec;       /* object, never NULL; durations normalised as Go prints them */
	struct km_json *target_ref; /* spec.targetRef, NULL means Mesh */
	const char *kri;
	int origin, role;
	bool shadow; /* kuma.io/effect: shadow */
	uint64_t fp; /* over type, name, labels and spec (set by the mesh context) */
	int64_t ctime; /* creation time (unix ns): the oldest of several matches wins */
	/* read off once by cp_policy_parse (parsed is set), for matching every
	 * proxy: targetRef kind ("Mesh" when none) and sectionName, and the
	 * whether it is a zone-originated policy with a kuma.io/zone label */
	bool parsed, zoned;
	struct km_str top_kind, top_section;
};

/* Parses a stored policy into <out> (allocated in <a>). */
void cp_policy_parse(struct km_arena *a, const struct km_resource *r, struct cp_policy *out);

/* Where a piece of merged configuration came from: a policy and the index
 * of its rules[] / to[] entry. */
struct cp_policy_origin {
	const struct cp_policy *policy;
	int rule_index;
};

/* One inbound rule: <match> NULL applies to every client. */
struct cp_policy_rule {
	const struct km_json *match;
	struct km_json *conf;
	struct cp_policy_origin origin;
};

/* The rules of one inbound (or zone-proxy listener) of the Dataplane. */
struct cp_policy_inbound {
	struct km_str address;
	uint32_t port;
	struct km_str name;   /* the inbound's name; empty for listeners and unnamed inbounds */
	const char *resource; /* Envoy listener/cluster name: self_inbound_dp_<section> */
	const struct km_json *inbound; /* the Dataplane's inbound object, NULL for listeners */
	struct cp_policy_rule *rules;
	size_t nrules;
};

/* The merged `to` configuration of one destination (a KRI, with or without
 * its section name, or the Mesh). */
struct cp_policy_to_rule {
	const char *kri;
	size_t kri_len;
	const char *rtype; /* "Mesh", "MeshService", ... */
	struct km_str rmesh, rname;
	const struct km_json *rlabels;
	struct km_str section;
	struct km_json *conf; /* merged conf (object) */
	struct cp_policy_origin *origins;
	size_t norigins;
	/* what <conf> was merged from, in merge order: per input its policy's
	 * fingerprint and the index of its to[] entry (duplicates kept). Equal
	 * inputs give an equal conf, so this stands for it in share keys. */
	const char *inputs;
	size_t inputs_len;
};

/* Everything one policy type contributes to one Dataplane. */
struct cp_policy_matched {
	const struct km_rtype *type;
	const struct cp_policy **policies; /* selecting the Dataplane, lowest priority first */
	size_t npolicies;
	struct cp_policy_inbound *inbounds;
	size_t ninbounds;
	struct cp_policy_to_rule *to;
	size_t nto;
	struct km_json *proxy_conf; /* merged spec.default of single-item policies, or NULL */
	const struct cp_policy **proxy_origins;
	size_t nproxy_origins;
	struct km_json *warnings; /* array of strings */
};

/* Matches the policies of <type> in <m> to <dp> and builds its rules.
 * Policies labelled kuma.io/effect: shadow count only when <shadow>. */
void cp_policy_match(struct km_arena *a, const struct cp_xds_mesh *m,
		     const struct cp_xds_dataplane *dp, const struct km_rtype *type, bool shadow,
		     struct cp_policy_matched *out);

/* The `to` rules built from one list of selecting policies depend on
 * nothing else of the Dataplane, and most proxies of a mesh share the
 * list (Mesh-wide policies), so a mesh context keeps them: built once,
 * read by every match after it, from any thread (a mutex guards the
 * table; rules are never changed once built). At most a few hundred
 * lists are kept; matches of others build their own. */
struct cp_policy_cache;
struct cp_policy_cache *cp_policy_cache_new(void);
void cp_policy_cache_free(struct cp_policy_cache *c);

/* cp_policy_match() of each of <types> (NULL: skipped, out[i] zeroed) into
 * out[i]: the Dataplane's ports are read once. */
void cp_policy_match_each(struct km_arena *a, const struct cp_xds_mesh *m,
			  const struct cp_xds_dataplane *dp, const struct km_rtype *const *types, size_t n,
			  bool shadow, struct cp_policy_matched *out);

/* True when the policy's top-level targetRef selects <dp> (at least one
 * inbound or listener), as the `_resources/dataplanes` endpoint reports. */
bool cp_policy_selects(const struct cp_policy *p, const struct cp_xds_dataplane *dp);
/* Whether <p> can shape the configuration of <dp>'s proxy at all: a superset
 * of the Dataplanes its top-level targetRef selects (ports and sections
 * ignored), everything for kinds it cannot narrow (Mesh, producer policies,
 * destinations such as MeshExternalService). A changed policy regenerates
 * only these proxies. */
bool cp_policy_may_affect(const struct cp_policy *p, const struct cp_xds_dataplane *dp);

/* The merged conf for destination <kri>: the exact KRI, then the KRI with no
 * section name, then the Mesh. NULL when no rule applies. */
const struct cp_policy_to_rule *cp_policy_to_lookup(const struct cp_policy_matched *mp,
						    const char *kri);
/* cp_policy_to_lookup over <n> matched sets at once (a NULL set: a NULL
 * rule), reading <kri> once. */
void cp_policy_to_lookup_n(const struct cp_policy_matched *const *mps, size_t n, const char *kri,
			   const struct cp_policy_to_rule **out);
/* The conf that applies to every client of <in>: the merge of its rules
 * with no match (NULL when the inbound has none). */
struct km_json *cp_policy_inbound_conf(struct km_arena *a, const struct cp_policy_inbound *in);
bool cp_policy_inbound_has_catch_all(const struct cp_policy_inbound *in);

/* Merges <n> confs in priority order (lowest first) with JSON merge patch;
 * lists are replaced except those under keys starting with "append", which
 * are concatenated. Returns a new tree in <a> (an empty object for n = 0). */
struct km_json *cp_policy_merge(struct km_arena *a, struct km_json *const *confs, size_t n);

/* ---- plugins ---- */

struct cp_policy_apply_ctx {
	struct km_arena *a;
	const struct cp_xds_mesh *m;
	const struct cp_xds_dataplane *dp;
	struct cp_xds_resources *rs;
	/* every plugin's matched set, by index in cp_policy_plugins[] (NULL
	 * outside cp_policy_prepare): MeshTCPRoute defers to MeshHTTPRoute */
	const struct cp_policy_matched *mps;
	/* the proxy's metadata (workdir, features, ...), NULL when unknown
	 * (cp_policy_prepare); <local>: <rs> holds the proxy's own resources,
	 * not an outbound's alone (set by each cp/xds/generate.c entry point) */
	const struct cp_xds_metadata *md;
	bool local;
};

struct cp_policy_plugin {
	const char *type; /* resource type name */
	int order;        /* upstream's +kuma:policy:order */
	bool single_item; /* proxy-wide spec.default (MeshTrace, MeshMetric, ...) */
	void (*apply)(struct cp_policy_apply_ctx *c,
		      const struct cp_policy_matched *mp); /* NULL: none yet */
	bool without_policies; /* runs when no policy selects the proxy (MTP: deny all) */
	/* Everything apply() reads of the proxy to shape the resources of
	 * outbound destination <kri> (its cluster, load assignment and
	 * listener, each touched on its own): a conf, or NULL when the plugin
	 * leaves them alone. Proxies with equal confs for a destination get
	 * equal outbound resources, which cp/xds/share.c builds once. A plugin
	 * with apply() and no outbound_conf disables that sharing. */
	const struct km_json *(*outbound_conf)(struct cp_policy_apply_ctx *c,
					       const struct cp_policy_matched *mp, const char *kri);
	/* The outbound resources apply() may touch (bits 1 << CP_XDS_*): an
	 * outbound resource of another type is shared whatever this plugin's
	 * conf (a MeshTimeout change leaves load assignments alone). */
	unsigned outbound_types;
	/* Conf fields (dotted paths, NULL-terminated) whose values apply()
	 * writes into outbound resources only as Durations, made by
	 * cp_policy_conf_duration() with the tag given here, and makes no
	 * other use of: outbound resources of confs that differ only in those
	 * values are filled from one shape (cp/xds/shape.h). NULL: none. */
	const struct cp_policy_conf_var *conf_vars;
	/* What else of the proxy apply() reads to shape an outbound whose
	 * `to` rule is <r> (NULL when only routes have rules; plugins whose
	 * outbound_conf is cp_policy_to_conf), appended to <key>; NULL:
	 * nothing. */
	void (*key_extra)(const struct cp_policy_prepared *pp, const struct cp_policy_to_rule *r, struct km_buf *key);
};

struct cp_policy_prepared;

struct cp_policy_conf_var {
	const char *path;
	uint16_t tag; /* unique among every plugin's, never 0: MeshTimeout 1-15,
			 MeshRetry 16-23, MeshCircuitBreaker 24-25 */
};


/* The duration at <path> of <conf> as protobuf JSON, or NULL when missing
 * or invalid; tagged for a shape's recording (lib/pb/shape.h) with the tag
 * <vars> gives <prefix><path> (the conf var's path from the rule's conf
 * when <conf> is part of it; none: a constant of the shape). */
struct km_json *cp_policy_conf_duration(struct km_arena *a, const struct km_json *conf, const char *path,
					const struct cp_policy_conf_var *vars, const char *prefix);

/* Every targetRef policy type, in plugin order. */
extern const struct cp_policy_plugin cp_policy_plugins[];
extern const size_t cp_policy_nplugins;
/* The plugin of policy type <t>, or NULL. */
const struct cp_policy_plugin *cp_policy_plugin_of(const struct km_rtype *t);

/* The policies of every plugin matched to one Dataplane once
 * (cp_policy_prepare), then applied to several resource sets
 * (cp_policy_apply_prepared: every plugin over them). */
struct cp_policy_prepared {
	struct cp_policy_apply_ctx c;     /* c.rs is set by each apply */
	struct cp_policy_matched *mp;     /* [cp_policy_nplugins] */
	bool *run;                        /* [cp_policy_nplugins]: apply() runs */
	uint32_t route_rules;             /* bit i: plugin i has a rule of a route (cp_policy_route_lookup) */
	bool endpoint_plugins;            /* a running plugin shapes load assignments (outbound_types) */
	/* confs cp_policy_outbound_key() has written, by address: most
	 * destinations of a proxy share their rule (the Mesh's) */
	struct cp_policy_conf_text {
		const struct km_json *conf;
		char *text;
		size_t len;
	} *texts;
	size_t ntexts, captexts;
	/* the `to` rule of each plugin for the last outbound asked about */
	const char *last_kri;
	const struct cp_policy_to_rule **last_rules; /* [cp_policy_nplugins] */
	/* rules cp_policy_outbound_shape_key() has split in this build */
	struct cp_policy_rule_memo {
		const struct cp_policy_to_rule *r;
		const struct cp_policy_rule_shape *s;
	} *shapes;
	size_t nshapes, capshapes;
};
/* <md>: the proxy's metadata (NULL: none known); its shadow flag makes
 * kuma.io/effect: shadow policies count. */
void cp_policy_prepare(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
		       const struct cp_xds_metadata *md, struct cp_policy_prepared *out);
void cp_policy_apply_prepared(struct cp_policy_prepared *pp, struct cp_xds_resources *rs);
/* Appends to <key> what the plugins read to shape outbound <kri>'s
 * resources of <types> (bits 1 << CP_XDS_*): each running plugin's
 * outbound_conf whose outbound_types meet <types>. False when a running
 * plugin has no outbound_conf: then the outbound cannot be shared. */
bool cp_policy_outbound_key(struct cp_policy_prepared *pp, const char *kri, unsigned types, struct km_buf *key);
/* Rules' confs split for shapes (below), kept across mesh contexts by
 * the share table (cp/xds/share.c): cp_policy_rule_shapes_next() drops
 * those unused for a while and runs only when no build does. */
struct cp_policy_rule_shapes;
struct cp_policy_rule_shapes *cp_policy_rule_shapes_new(void);
void cp_policy_rule_shapes_next(struct cp_policy_rule_shapes *rs);
void cp_policy_rule_shapes_free(struct cp_policy_rule_shapes *rs);
/* As cp_policy_outbound_key(), for a shape of those resources: a `to`
 * rule of a plugin with conf_vars is written without their values, which
 * are appended to <vars> (as km_pb_duration_body() encodes them) with
 * their tags to <tags>, *<n> counting them (at most <cap>). False as
 * cp_policy_outbound_key(), or past <cap>. Each rule is split once while
 * <store> keeps it (NULL: once per build); the values live as long. */
bool cp_policy_outbound_shape_key(struct cp_policy_prepared *pp, struct cp_policy_rule_shapes *store, const char *kri,
				  unsigned types, struct km_buf *key, struct km_str *vars, uint16_t *tags, size_t *n,
				  size_t cap);
/* outbound_conf of plugins that only touch inbounds. */
const struct km_json *cp_policy_no_outbound_conf(struct cp_policy_apply_ctx *c,
						 const struct cp_policy_matched *mp, const char *kri);
/* outbound_conf of plugins that apply their merged `to` conf of <kri>. */
const struct km_json *cp_policy_to_conf(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp,
					const char *kri);

/* Plugins (cp/policy/<type>.c). */
void cp_policy_meshtimeout_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp);
extern const struct cp_policy_conf_var cp_policy_meshtimeout_conf_vars[];
extern const struct cp_policy_conf_var cp_policy_meshretry_conf_vars[];
extern const struct cp_policy_conf_var cp_policy_meshcircuitbreaker_conf_vars[];
void cp_policy_meshretry_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp);
void cp_policy_meshcircuitbreaker_apply(struct cp_policy_apply_ctx *c,
					const struct cp_policy_matched *mp);
void cp_policy_meshtls_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp);
const struct km_json *cp_policy_meshtls_outbound_conf(struct cp_policy_apply_ctx *c,
						      const struct cp_policy_matched *mp, const char *kri);
void cp_policy_meshtrafficpermission_apply(struct cp_policy_apply_ctx *c,
					   const struct cp_policy_matched *mp);
void cp_policy_meshfaultinjection_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp);
void cp_policy_meshaccesslog_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp);
void cp_policy_meshhealthcheck_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp);
void cp_policy_meshtrace_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp);
void cp_policy_meshmetric_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp);
/* Upstream's CleanName: system resource names from user text. */
char *cp_policy_clean_name(struct km_arena *a, struct km_str s);
void cp_policy_meshproxypatch_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp);
/* The proxy-wide appendModifications (they may touch any resource). */
const struct km_json *cp_policy_meshproxypatch_outbound_conf(struct cp_policy_apply_ctx *c,
							     const struct cp_policy_matched *mp, const char *kri);
/* What MeshTrace writes into outbound listeners: the proxy-wide conf and
 * what the tracing says of the proxy (service, mesh, zone, workload). */
const struct km_json *cp_policy_meshtrace_outbound_conf(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp,
							const char *kri);
/* key_extra of MeshHealthCheck: the proxy's labels when an HTTP check sends them. */
void cp_policy_meshhealthcheck_key(const struct cp_policy_prepared *pp, const struct cp_policy_to_rule *r,
				   struct km_buf *key);
/* key_extra of MeshAccessLog: the proxy's values its formats are filled with. */
void cp_policy_meshaccesslog_key(const struct cp_policy_prepared *pp, const struct cp_policy_to_rule *r,
				 struct km_buf *key);
void cp_policy_meshloadbalancingstrategy_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp);
/* key_extra of MeshLoadBalancingStrategy: the proxy's values of the
 * affinity tags (the local-zone groups depend on them). */
void cp_policy_meshloadbalancingstrategy_key(const struct cp_policy_prepared *pp, const struct cp_policy_to_rule *r,
					     struct km_buf *key);
void cp_policy_meshratelimit_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp);

/* MeshHTTPRoute (cp/policy/meshhttproute.c): the routes of HTTP outbound
 * listeners from the merged rules of their destination. */
void cp_policy_meshhttproute_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp);
/* What apply() reads to route outbound <kri>: its rules, each rule's
 * route name and where its backendRefs resolve (a destination created or
 * removed changes it). NULL when no rule applies. */
const struct km_json *cp_policy_meshhttproute_outbound_conf(struct cp_policy_apply_ctx *c,
							    const struct cp_policy_matched *mp, const char *kri);
/* MeshTCPRoute (cp/policy/meshtcproute.c). */
void cp_policy_meshtcproute_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp);
const struct km_json *cp_policy_meshtcproute_outbound_conf(struct cp_policy_apply_ctx *c,
							   const struct cp_policy_matched *mp, const char *kri);
/* The backendRefs of the MeshTCPRoute rule that routes outbound <kri> (an
 * empty array: the rule names none), or NULL when none does (no rule; on an
 * <http> destination, a MeshHTTPRoute rule). */
const struct km_json *cp_policy_tcp_route_refs(const struct cp_policy_apply_ctx *c, const char *kri, bool http);
/* A destination a route sends or mirrors requests to. */
struct cp_policy_backend {
	const struct cp_xds_service *s;
	const struct cp_xds_port *p;
	const char *kri;
};
/* The destinations the routes (MeshHTTPRoute, MeshTCPRoute) of outbound
 * <kri> reach, <kri> itself left out (duplicates possible), in <pp>'s
 * arena; returns how many. */
size_t cp_policy_route_backends(struct cp_policy_prepared *pp, const char *kri, struct cp_policy_backend **out);
/* The MeshService port a backendRef ({kind, name | labels, port}) names in
 * <m>, or NULL; *<s> gets its service. */
const struct cp_xds_port *cp_policy_backend_ref(const struct cp_xds_mesh *m, const struct km_json *ref,
					       const struct cp_xds_service **s);
/* The rule of route <route> (kri_mhttpr_..._rule_<n>, with its section
 * name, then without), never the Mesh's: a route's own conf, which
 * replaces its destination's (upstream's resource context). NULL when
 * none applies or <route> names no MeshHTTPRoute rule. */
const struct cp_policy_to_rule *cp_policy_route_lookup(const struct cp_policy_matched *mp, struct km_str route);
/* Whether <mp> holds a rule of some route (above). */
bool cp_policy_has_route_rules(const struct cp_policy_matched *mp);
/* The origin of the MeshHTTPRoute rule with <matches> in merged rule <r>:
 * the highest-priority policy with such a rule, and the index of its to[]
 * entry. False when none has. */
bool cp_policy_route_origin(const struct cp_policy_to_rule *r, const struct km_json *matches,
			    struct cp_policy_origin *out);

/* Helpers for plugins (cp/policy/policy.c). */
/* A Go duration string (conf value) as Envoy's protobuf JSON ("51s",
 * "0.500s"); NULL when <v> is not a valid duration. */
struct km_json *cp_policy_duration(struct km_arena *a, const struct km_json *v);
/* <v> at dotted <path> ("http.requestTimeout") of <conf>, or NULL. */
struct km_json *cp_policy_conf_get(const struct km_json *conf, const char *path);
/* The TLS inspector listener filter on <listener>, added once. */
void cp_policy_ensure_tls_inspector(struct km_arena *a, struct km_json *listener);
/* The appProtocol behind outbound resource <name> (a kri_msvc_* name), tcp
 * when it names no MeshService port. */
struct km_str cp_policy_outbound_protocol(struct km_arena *a, const struct cp_xds_mesh *m, struct km_str name);
/* The matcher-API predicate of one inbound Match ({spiffeID}, {sni} or
 * both, ANDed), or NULL when it has neither. */
struct km_json *cp_policy_match_predicate(struct km_arena *a, const struct km_json *m);
/* <preds> (an array) as one predicate: itself when alone, else <op>
 * ("orMatcher", "andMatcher") over them. */
struct km_json *cp_policy_predicates(struct km_arena *a, struct km_json *preds, const char *op);
/* A number or a decimal string (upstream's intstr decimals) into *<out>;
 * false when <v> is neither. */
bool cp_policy_decimal(struct km_arena *a, const struct km_json *v, double *out);
/* A percentage (a number or a decimal string) as upstream's
 * ConvertPercentage writes a FractionalPercent, or NULL when it is none. */
struct km_json *cp_policy_percentage(struct km_arena *a, const struct km_json *pct);
/* The next MeshService outbound listener (kri_msvc_*) of <c>'s resources
 * from index *<i> on (advanced past it): its name, in <c>'s arena, and its
 * tree in *<l>; NULL after the last. */
const char *cp_policy_next_outbound(struct cp_policy_apply_ctx *c, size_t *i, struct km_json **l);
/* The HTTP connection manager's typedConfig in filter chain <chain>, or NULL. */
struct km_json *cp_policy_chain_hcm(const struct km_json *chain);
/* Inserts HTTP filter <filter> into <hcm> before the router (last when it
 * has none); with <upsert> one of the same name is replaced instead. */
void cp_policy_insert_http_filter(struct km_arena *a, struct km_json *hcm, struct km_json *filter, bool upsert);
/* Object member <key> of <obj>, created empty when missing. */
struct km_json *cp_policy_obj(struct km_arena *a, struct km_json *obj, const char *key);

#endif
