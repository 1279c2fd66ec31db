/* SPDX-License-Identifier: Apache-2.0 */
/* SDS secrets from PEMs (see secrets.h). The messages point at the PEMs
 * (no copies) and protobuf-c packs them once into the caller's buffer
 * (km_pb_wire_pack). */
#include "cp/xds/secrets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls_spiffe_validator_config.pb-c.h"
#include "pb/wire.h"

#define SPIFFE_VALIDATOR_TYPE                                                                                          \
	"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig"

static void inline_bytes(Envoy__Config__Core__V3__DataSource *ds, const char *p, size_t n)
{
	envoy__config__core__v3__data_source__init(ds);
	ds->specifier_case = ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_BYTES;
	ds->inline_bytes.data = (uint8_t *)(uintptr_t)p;
	ds->inline_bytes.len = n;
}

int cp_xds_secrets_tls_encode(const char *name, const char *chain_pem, const char *key_pem, struct km_buf *out)
{
	Envoy__Config__Core__V3__DataSource chain, key;
	inline_bytes(&chain, chain_pem, strlen(chain_pem));
	inline_bytes(&key, key_pem, strlen(key_pem));
	Envoy__Extensions__TransportSockets__Tls__V3__TlsCertificate tc;
	envoy__extensions__transport_sockets__tls__v3__tls_certificate__init(&tc);
	tc.certificate_chain = &chain;
	tc.private_key = &key;
	Envoy__Extensions__TransportSockets__Tls__V3__Secret s;
	envoy__extensions__transport_sockets__tls__v3__secret__init(&s);
	s.name = (char *)(uintptr_t)name;
	s.type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_TLS_CERTIFICATE;
	s.tls_certificate = &tc;
	return km_pb_wire_pack(&s.base, out);
}

int cp_xds_secrets_trust_encode(const struct km_json *domains, struct km_buf *out)
{
	size_t n = 0;
	for (size_t i = 0; domains && i < domains->len; i++)
		n += domains->members[i].val->kind == KM_JSON_STRING;
	if (!n)
		return -EINVAL;
	/* one allocation: the trust domains, their bundles, their names, the
	 * pointer array */
	size_t names = 0;
	for (size_t i = 0; domains && i < domains->len; i++)
		names += domains->members[i].key.len + 1;
	Envoy__Extensions__TransportSockets__Tls__V3__SPIFFECertValidatorConfig__TrustDomain *td =
	    km_calloc(1, n * (sizeof(*td) + sizeof(Envoy__Config__Core__V3__DataSource) + sizeof(td)) + names + 1);
	Envoy__Config__Core__V3__DataSource *ds = (Envoy__Config__Core__V3__DataSource *)(td + n);
	Envoy__Extensions__TransportSockets__Tls__V3__SPIFFECertValidatorConfig__TrustDomain **tdp =
	    (Envoy__Extensions__TransportSockets__Tls__V3__SPIFFECertValidatorConfig__TrustDomain **)(ds + n);
	char *name = (char *)(tdp + n);
	size_t k = 0;
	for (size_t i = 0; domains && i < domains->len; i++) {
		const struct km_json *pem = domains->members[i].val;
		if (pem->kind != KM_JSON_STRING)
			continue;
		struct km_str key = domains->members[i].key;
		memcpy(name, key.ptr, key.len);
		name[key.len] = 0;
		envoy__extensions__transport_sockets__tls__v3__spiffecert_validator_config__trust_domain__init(&td[k]);
		td[k].name = name;
		inline_bytes(&ds[k], pem->s.ptr, pem->s.len);
		td[k].trust_bundle = &ds[k];
		tdp[k] = &td[k];
		name += key.len + 1;
		k++;
	}
	Envoy__Extensions__TransportSockets__Tls__V3__SPIFFECertValidatorConfig sv;
	envoy__extensions__transport_sockets__tls__v3__spiffecert_validator_config__init(&sv);
	sv.n_trust_domains = n;
	sv.trust_domains = tdp;
	struct km_buf inner = KM_BUF_INIT;
	int rc = km_pb_wire_pack(&sv.base, &inner);
	free(td);
	if (rc) {
		km_buf_fini(&inner);
		return rc;
	}
	Google__Protobuf__Any any;
	google__protobuf__any__init(&any);
	any.type_url = SPIFFE_VALIDATOR_TYPE;
	any.value.data = (uint8_t *)inner.data;
	any.value.len = inner.len;
	Envoy__Config__Core__V3__TypedExtensionConfig tec;
	envoy__config__core__v3__typed_extension_config__init(&tec);
	tec.name = "envoy.tls.cert_validator.spiffe";
	tec.typed_config = &any;
	Envoy__Extensions__TransportSockets__Tls__V3__CertificateValidationContext vc;
	envoy__extensions__transport_sockets__tls__v3__certificate_validation_context__init(&vc);
	vc.custom_validator_config = &tec;
	Envoy__Extensions__TransportSockets__Tls__V3__Secret s;
	envoy__extensions__transport_sockets__tls__v3__secret__init(&s);
	s.name = CP_XDS_TRUST_SECRET;
	s.type_case = ENVOY__EXTENSIONS__TRANSPORT_SOCKETS__TLS__V3__SECRET__TYPE_VALIDATION_CONTEXT;
	s.validation_context = &vc;
	rc = km_pb_wire_pack(&s.base, out);
	km_buf_fini(&inner);
	return rc;
}
