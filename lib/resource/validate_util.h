/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the per-type validators (validate_*.c): tolerant JSON
 * accessors over normalised specs, upstream's common checks (targetRef,
 * match, DNS names, tags) with their exact messages. Internal to
 * lib/resource; all strings are allocated in the caller's arena. */
#ifndef KM_RESOURCE_VALIDATE_UTIL_H
#define KM_RESOURCE_VALIDATE_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "codec/json.h"
#include "resource/resource.h"
#include "resource/violations.h"

/* validator entry point of one type; <spec> is the normalised spec object */
typedef void km_validate_fn(struct km_arena *a, const struct km_resource_doc *doc,
			    struct km_violations *out);

/* Member <key> of <obj> unless absent, null or <obj> is not an object. */
struct km_json *km_v_get(const struct km_json *obj, const char *key);
struct km_str km_v_str(const struct km_json *obj, const char *key);
/* Elements of an array / members of an object member; 0 when absent. */
size_t km_v_len(const struct km_json *obj, const char *key);
/* Integer member; <dflt> when absent or not a number. */
int64_t km_v_int(const struct km_json *obj, const char *key, int64_t dflt);
/* Duration member: 1 parsed into <*ns>, 0 absent, -1 unparsable. */
int km_v_dur(const struct km_json *obj, const char *key, int64_t *ns);
const char *km_v_path(struct km_arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct km_target_ref_opts {
	const char *const *kinds; /* NULL-terminated supported kinds */
	bool inbound_policy;
};
/* Upstream ValidateTargetRef at <path> ("spec.targetRef"); <ref> may be NULL (kind missing). */
void km_validate_target_ref(struct km_arena *a, struct km_violations *out, const char *path,
			    const struct km_json *ref, const struct km_target_ref_opts *o);
/* True when the top-level targetRef (or its absence) affects inbounds (spec.rules non-empty). */
bool km_v_affects_inbounds(const struct km_json *spec);
/* Upstream ValidateMatch (spiffeID and sni) at <path>. */
void km_validate_match(struct km_arena *a, struct km_violations *out, const char *path,
		       const struct km_json *match);
/* go-spiffe's parse error for <id>, or NULL when valid. */
const char *km_v_spiffe_error(struct km_str id);

bool km_v_is_dns1123_label(struct km_str s);
bool km_v_is_dns1123_subdomain(struct km_str s);
bool km_v_is_dns1035_label(struct km_str s);
/* k8s IsDNS1123Subdomain / NameIsDNS1035Label messages (appended at <field>). */
void km_v_dns1123_subdomain(struct km_violations *out, const char *field, struct km_str s);
void km_v_dns1035_label(struct km_violations *out, const char *field, struct km_str s);
bool km_v_is_ip(struct km_str s);
/* govalidator.IsDNSName */
bool km_v_is_dns_name(struct km_str s);
/* `"<field>" must be one of ["a", "b"]` (upstream MakeFieldMustBeOneOfErr) */
void km_v_must_be_one_of(struct km_violations *out, const char *path, const char *field,
			 const char *const *allowed);
/* "<entity> must be one of: a, b" (upstream MustBeOneOf) */
const char *km_v_one_of_list(struct km_arena *a, const char *entity, const char *const *allowed);
bool km_v_in(struct km_str s, const char *const *allowed);
/* Go net.ParseIP accepted forms for IPv4 / IPv6 */
bool km_v_is_ipv4(struct km_str s);
bool km_v_is_ipv6(struct km_str s);

extern const char km_v_rfc1123_msg[];
extern const char km_v_dns1123_sub_msg[];
extern const char km_v_dns1035_msg[];

/* TLS version (min/max) and secure data source checks shared by MES, MeshTLS, ... */
void km_v_tls_version(struct km_arena *a, struct km_violations *out, const char *p,
		      const struct km_json *version);
void km_v_secure_data_source(struct km_arena *a, struct km_violations *out, const char *p,
			     const struct km_json *sds);

/* int-or-string decimal member: 0 parsed into <*d>, -1 not a number, 1 absent */
int km_v_decimal(const struct km_json *obj, const char *key, double *d);
/* upstream ValidatePercentageOrNil at <p>.<key> */
void km_v_percentage_or_nil(struct km_arena *a, struct km_violations *out, const char *p,
			    const struct km_json *obj, const char *key);

/* backendRefs[] of routes at <p> (kinds MeshService/MES/MMZS, MMZS needs a port) */
void km_v_backend_refs(struct km_arena *a, struct km_violations *out, const char *p,
		       const struct km_json *refs);

/* govalidator.IsURL, approximated */
bool km_v_is_url(struct km_str s);

/* upstream ValidateJsonPatchBlock: RFC 6902 op/from/value/path rules of the
 * jsonPatches array <patches> at <p> ("...cluster.jsonPatches") */
void km_v_json_patch_block(struct km_arena *a, struct km_violations *out, const char *p,
			   const struct km_json *patches);

/* Per-type validators (one file per family). */
km_validate_fn km_validate_dataplane, km_validate_mesh, km_validate_zone;
km_validate_fn km_validate_meshtrafficpermission, km_validate_meshtimeout;
km_validate_fn km_validate_meshservice, km_validate_meshexternalservice;
km_validate_fn km_validate_meshmultizoneservice;
km_validate_fn km_validate_meshretry, km_validate_meshcircuitbreaker;
km_validate_fn km_validate_meshratelimit, km_validate_meshtls, km_validate_meshzoneaddress;
km_validate_fn km_validate_workload;
km_validate_fn km_validate_hostnamegenerator, km_validate_meshmetric,
	km_validate_meshopentelemetrybackend;
km_validate_fn km_validate_meshtrace, km_validate_meshaccesslog;
km_validate_fn km_validate_meshhttproute, km_validate_meshloadbalancingstrategy;
km_validate_fn km_validate_meshhealthcheck, km_validate_meshtcproute,
	km_validate_meshfaultinjection;
km_validate_fn km_validate_meshtrust, km_validate_meshidentity, km_validate_meshpassthrough,
	km_validate_meshproxypatch;

#endif
