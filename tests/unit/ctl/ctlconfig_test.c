/* SPDX-License-Identifier: Apache-2.0 */
/* kumactl config file: snake_case and camelCase input, sorted camelCase
 * output (upstream's config-view golden), and the add/remove/switch rules
 * of upstream's config helpers. */
#include <stdlib.h>
#include <unistd.h>

#include "../test.h"
#include "ctl/ctl.h"
#include "ctl_test_util.h"

static struct km_arena *A;

static const char *write_tmp(const char *text)
{
	char *path = km_arena_strdup(A, "/tmp/ctlconfig_test_XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return NULL;
	if (write(fd, text, strlen(text)) < 0)
		path = NULL;
	close(fd);
	return path;
}

static const char *yaml_of(const struct ctl_config *cfg)
{
	struct km_buf b = KM_BUF_INIT;
	ctl_ctlconfig_to_yaml(A, cfg, &b);
	const char *s = km_arena_strdup(A, km_buf_cstr(&b));
	km_buf_fini(&b);
	return s;
}

static void check_view_golden(void)
{
	const char *in = ctl_test_read(A, "cmd/config/testdata/config-view.config.yaml");
	const char *golden = ctl_test_read(A, "cmd/config/testdata/config-view.golden.yaml");
	if (!in || !golden) {
		fprintf(stderr, "note: config-view goldens not found\n");
		return;
	}
	const char *p = write_tmp(in);
	struct ctl_config cfg;
	struct km_buf err = KM_BUF_INIT;
	CHECK(ctl_ctlconfig_load(A, p, &cfg, &err) == 0);
	CHECK_STREQ(yaml_of(&cfg), golden);
	unlink(p);
	km_buf_fini(&err);
}

static void check_rules(void)
{
	const char *p = write_tmp(
		"contexts:\n- controlPlane: other\n  defaults:\n    mesh: demo\n"
		"  name: other\n- controlPlane: example\n  name: example\n"
		"controlPlanes:\n- coordinates:\n    apiServer:\n"
		"      url: https://other.internal:5681\n  name: other\n"
		"- coordinates:\n    apiServer:\n"
		"      url: https://kuma-control-plane.internal:5681\n      addHeaders: []\n"
		"  name: example\ncurrentContext: example\nunknownKey: 1\n");
	struct ctl_config cfg;
	struct km_buf err = KM_BUF_INIT;
	CHECK(ctl_ctlconfig_load(A, p, &cfg, &err) == 0);
	CHECK(cfg.n_cps == 2 && cfg.n_ctxs == 2);
	CHECK_STREQ(cfg.ctxs[0].default_mesh, "demo");
	/* removing the active control plane switches to the first context left */
	CHECK(ctl_ctlconfig_remove_cp(&cfg, "example"));
	CHECK_STREQ(cfg.current, "other");
	CHECK(!ctl_ctlconfig_remove_cp(&cfg, "example"));
	CHECK_STREQ(yaml_of(&cfg),
		    "contexts:\n- controlPlane: other\n  defaults:\n    mesh: demo\n  name: other\n"
		    "controlPlanes:\n- coordinates:\n    apiServer:\n"
		    "      url: https://other.internal:5681\n  name: other\n"
		    "currentContext: other\n");
	struct ctl_cp cp = {0};
	cp.name = "other";
	cp.url = "http://x";
	CHECK(!ctl_ctlconfig_add_cp(A, &cfg, &cp, false));
	CHECK(ctl_ctlconfig_add_cp(A, &cfg, &cp, true));
	CHECK(cfg.n_cps == 1 && !strcmp(cfg.cps[0].url, "http://x"));
	CHECK(ctl_ctlconfig_remove_cp(&cfg, "other"));
	CHECK(cfg.current == NULL);
	CHECK_STREQ(yaml_of(&cfg), "{}\n");
	/* save + load round trip, mode 0600 file */
	CHECK(ctl_ctlconfig_save(A, p, &cfg, &err) == 0);
	struct ctl_config again;
	CHECK(ctl_ctlconfig_load(A, p, &again, &err) == 0);
	CHECK(again.n_cps == 0 && again.current == NULL);
	unlink(p);
	/* an explicit file that does not exist is an error */
	CHECK(ctl_ctlconfig_load(A, "/nonexistent/kumactl-config", &again, &err) < 0);
	CHECK_STREQ(km_buf_cstr(&err),
		    "Failed to access configuration file \"/nonexistent/kumactl-config\"");
	km_buf_fini(&err);
}

static void check_default(void)
{
	struct ctl_config cfg;
	ctl_ctlconfig_default(A, &cfg);
	CHECK_STREQ(yaml_of(&cfg), "contexts:\n- controlPlane: local\n  name: local\n"
				   "controlPlanes:\n- coordinates:\n    apiServer:\n"
				   "      url: http://localhost:5681\n  name: local\n"
				   "currentContext: local\n");
}

int main(void)
{
	A = km_arena_new(0);
	check_default();
	check_view_golden();
	check_rules();
	km_arena_free(A);
	return test_summary();
}
