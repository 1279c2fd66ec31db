/* SPDX-License-Identifier: Apache-2.0 */
/* kuma-dp configuration: defaults, flag and variable parsing with pflag and
 * envconfig messages, variables winning over flags, validation texts. */
#include <errno.h>
#include <stdlib.h>

#include "../test.h"
#include "dp/dp.h"

static int parse(struct dp_config *c, struct km_arena *a, char **argv, int argc, char **envp,
		 struct km_buf *err)
{
	dp_flags_defaults(c, a);
	km_buf_reset(err);
	return dp_flags_parse(c, argc, argv, envp, err);
}

int main(void)
{
	struct km_arena *a = km_arena_new(0);
	struct dp_config c;
	struct km_buf err = KM_BUF_INIT;
	char *none[] = {NULL};

	dp_flags_defaults(&c, a);
	CHECK_STREQ(c.cp_url, "https://localhost:5678");
	CHECK_STREQ(c.binary_path, "envoy");
	CHECK_STREQ(c.proxy_type, "dataplane");
	CHECK(c.drain_time == 30000000000LL);
	CHECK(c.retry_backoff == 3000000000LL && c.retry_max == 300000000000LL);
	CHECK(c.readiness_port == 9902 && c.dns_port == 15053 && c.dns_enabled);
	CHECK(c.dynamic_config_refresh == 1000000000LL);

	/* flags */
	char *a1[] = {"--name", "dp-1", "--mesh=default", "-d", "f.yaml", "-v", "name=x,address=1.2.3.4",
		      "--dataplane-var", "name=y", "--concurrency", "4", "--drain-time", "1m30s",
		      "--skip-verify", "--dns-enabled=false", "pos", "--", "--ignored"};
	CHECK(parse(&c, a, a1, 18, none, &err) == 0);
	CHECK_STREQ(c.name, "dp-1");
	CHECK_STREQ(c.mesh, "default");
	CHECK_STREQ(c.resource_path, "f.yaml");
	CHECK(c.nvars == 2);
	CHECK_STREQ(c.vars[0].key, "name");
	CHECK_STREQ(c.vars[0].value, "y");
	CHECK_STREQ(c.vars[1].value, "1.2.3.4");
	CHECK(c.concurrency == 4 && c.drain_time == 90000000000LL);
	CHECK(c.skip_verify && !c.dns_enabled);

	/* shorthand with attached value */
	char *a2[] = {"-dfile.yaml", "-v=k=v"};
	CHECK(parse(&c, a, a2, 2, none, &err) == 0);
	CHECK_STREQ(c.resource_path, "file.yaml");
	CHECK(c.nvars == 1 && strcmp(c.vars[0].value, "v") == 0);

	/* env wins over flags */
	char *a3[] = {"--name", "from-flag", "--drain-time", "5s"};
	char *e3[] = {"KUMA_DATAPLANE_NAME=from-env", "KUMA_READINESS_PORT=0x10",
		      "KUMA_CONTROL_PLANE_RETRY_BACKOFF=250ms", "KUMA_DNS_ENABLED=f",
		      "KUMA_DATAPLANE_RUNTIME_TOKEN=tok", "OTHER=1",
		      "KUMA_DATAPLANE_RUNTIME_DYNAMIC_CONFIGURATION_REFRESH_INTERVAL=250ms", NULL};
	CHECK(parse(&c, a, a3, 4, e3, &err) == 0);
	CHECK_STREQ(c.name, "from-env");
	CHECK(c.readiness_port == 16);
	CHECK(c.retry_backoff == 250000000LL);
	CHECK(!c.dns_enabled);
	CHECK_STREQ(c.token, "tok");
	CHECK(c.drain_time == 5000000000LL);
	CHECK(c.dynamic_config_refresh == 250000000LL);

	/* errors */
	char *b1[] = {"--nope"};
	CHECK(parse(&c, a, b1, 1, none, &err) == -EINVAL);
	CHECK_STREQ(km_buf_cstr(&err), "unknown flag: --nope");
	char *b2[] = {"--drain-time", "1x"};
	CHECK(parse(&c, a, b2, 2, none, &err) == -EINVAL);
	CHECK_STREQ(km_buf_cstr(&err),
		    "invalid argument \"1x\" for \"--drain-time\" flag: time: invalid duration \"1x\"");
	char *b3[] = {"--concurrency", "4294967296"};
	CHECK(parse(&c, a, b3, 2, none, &err) == -EINVAL);
	CHECK_STREQ(km_buf_cstr(&err), "invalid argument \"4294967296\" for \"--concurrency\" flag: "
				       "strconv.ParseUint: parsing \"4294967296\": value out of range");
	char *b4[] = {"-v", "a=1,b"};
	CHECK(parse(&c, a, b4, 2, none, &err) == -EINVAL);
	CHECK_STREQ(km_buf_cstr(&err), "invalid argument \"a=1,b\" for \"-v, --dataplane-var\" flag: b "
				       "must be formatted as key=value");
	char *b5[] = {"--mesh"};
	CHECK(parse(&c, a, b5, 1, none, &err) == -EINVAL);
	CHECK_STREQ(km_buf_cstr(&err), "flag needs an argument: --mesh");
	char *b6[] = {"-q"};
	CHECK(parse(&c, a, b6, 1, none, &err) == -EINVAL);
	CHECK_STREQ(km_buf_cstr(&err), "unknown shorthand flag: 'q' in -q");
	char *e7[] = {"KUMA_DATAPLANE_RUNTIME_BIND_OUTBOUNDS=yes", NULL};
	CHECK(parse(&c, a, NULL, 0, e7, &err) == -EBADMSG);
	CHECK_STREQ(km_buf_cstr(&err),
		    "processing environment variables failed: envconfig.Process: assigning "
		    "KUMA_DATAPLANE_RUNTIME_BIND_OUTBOUNDS to BindOutbounds: converting 'yes' to type "
		    "bool. details: strconv.ParseBool: parsing \"yes\": invalid syntax");

	/* validation */
	dp_flags_defaults(&c, a);
	km_buf_reset(&err);
	CHECK(dp_flags_validate(&c, &err) == -EINVAL);
	CHECK_STREQ(km_buf_cstr(&err), "configuration validation failed: .Dataplane is not valid: "
				       ".Mesh must be non-empty; .Name must be non-empty");
	c.proxy_type = "ingress";
	c.drain_time = 0;
	c.dns_port = 0;
	c.retry_max = 0;
	km_buf_reset(&err);
	CHECK(dp_flags_validate(&c, &err) == -EINVAL);
	CHECK_STREQ(km_buf_cstr(&err),
		    "configuration validation failed: .ControlPlane is not valid: .Retry is not valid: "
		    ".MaxDuration must be a positive duration; .Dataplane is not valid: .ProxyType "
		    "\"ingress\" is not supported; .Mesh must be non-empty; .Name must be non-empty; "
		    ".DrainTime must be positive; .DNS is not valid: .ProxyPort has to be in (0, 65535] "
		    "range");
	/* a template replaces name and mesh */
	dp_flags_defaults(&c, a);
	c.resource = "type: Dataplane";
	km_buf_reset(&err);
	CHECK(dp_flags_validate(&c, &err) == 0);
	c.name = "a";
	c.mesh = "b";
	c.resource = NULL;
	CHECK(dp_flags_validate(&c, &err) == 0);

	km_buf_fini(&err);
	km_arena_free(a);
	return test_summary();
}
