/* SPDX-License-Identifier: Apache-2.0 */
/* Envoy process helpers: version output parsing (upstream's mock formats),
 * the ~ compatibility check, the command line, binary lookup and starting a
 * child that is reaped with its status. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test.h"
#include "dp/dp.h"

int main(void)
{
	struct km_arena *a = km_arena_new(0);
	struct km_buf err = KM_BUF_INIT;
	struct dp_envoy_version v;
	CHECK(dp_envoy_version_parse(a, km_str_c("\nversion: 50ef0945fa2c5da4bff7627c3abf41fdd3b7cffd/1.15.0/clean-getenvoy-2aa564b-envoy/RELEASE/BoringSSL\n"),
				     &v, &err) == 0);
	CHECK_STREQ(v.version, "1.15.0");
	CHECK_STREQ(v.build, "50ef0945fa2c5da4bff7627c3abf41fdd3b7cffd/1.15.0/clean-getenvoy-2aa564b-envoy/RELEASE/BoringSSL");
	CHECK(!v.compatible);
	CHECK(dp_envoy_version_parse(a, km_str_c("\r\n/usr/bin/envoy  version: 9e55/1.40.2/Clean/RELEASE/BoringSSL\r\n\r\n"),
				     &v, &err) == 0);
	CHECK_STREQ(v.version, "1.40.2");
	CHECK(v.compatible);
	CHECK(dp_envoy_version_parse(a, km_str_c("envoy 1.2.3"), &v, &err) == -EINVAL);
	CHECK_STREQ(km_buf_cstr(&err), "wrong Envoy build format: ");
	km_buf_reset(&err);
	CHECK(dp_envoy_version_parse(a, km_str_c("version: a/b/c"), &v, &err) == -EINVAL);
	CHECK_STREQ(km_buf_cstr(&err), "wrong Envoy build format: a/b/c");

	CHECK(dp_envoy_compatible("1.40.0", "1.40.0"));
	CHECK(dp_envoy_compatible("1.40.0", "1.40.7"));
	CHECK(!dp_envoy_compatible("1.40.1", "1.40.0"));
	CHECK(!dp_envoy_compatible("1.40.0", "1.41.0"));
	CHECK(!dp_envoy_compatible("1.40.0", "1.40.1-dev"));
	CHECK(dp_envoy_compatible("1.40.1-dev", "1.40.1-dev"));
	CHECK(!dp_envoy_compatible("1.40.0", "garbage"));

	struct dp_config c;
	dp_flags_defaults(&c, a);
	c.envoy_log_level = "info";
	char **argv = dp_envoy_args(a, &c, "/bin/envoy", "/w/bootstrap.yaml");
	const char *want1[] = {"/bin/envoy", "--config-path", "/w/bootstrap.yaml", "--drain-time-s",
			       "30", "--drain-strategy", "immediate", "--disable-hot-restart",
			       "--log-level", "info", "--cpuset-threads", NULL};
	for (size_t i = 0; i < sizeof(want1) / sizeof(want1[0]); i++)
		CHECK((want1[i] == NULL && argv[i] == NULL) ||
		      (want1[i] && argv[i] && strcmp(want1[i], argv[i]) == 0));
	c.concurrency = 3;
	c.envoy_component_log_level = "upstream:debug,config:trace";
	c.drain_time = 1500000000; /* 1.5s: whole seconds, as upstream */
	argv = dp_envoy_args(a, &c, "/bin/envoy", "/w/b.yaml");
	CHECK_STREQ(argv[4], "1");
	CHECK_STREQ(argv[10], "--component-log-level");
	CHECK_STREQ(argv[11], "upstream:debug,config:trace");
	CHECK_STREQ(argv[12], "--concurrency");
	CHECK_STREQ(argv[13], "3");
	CHECK(argv[14] == NULL);

	const char *path;
	CHECK(dp_envoy_lookup(a, "sh", &path, &err) == 0);
	CHECK(path && strstr(path, "/sh") != NULL);
	km_buf_reset(&err);
	CHECK(dp_envoy_lookup(a, "/nonexistent/envoy-x", &path, &err) == -ENOENT);
	CHECK(strncmp(km_buf_cstr(&err),
		      "could not find executable binary in any of the following paths: "
		      "[/nonexistent/envoy-x ", 86) == 0);

	/* a child started with the signal mask cleared, reaped with its status */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	char *sh[] = {"/bin/sh", "-c", "kill -TERM $$; exit 7", NULL};
	pid_t pid;
	CHECK(dp_envoy_start(sh, &pid) == 0);
	int st = 0;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	char *sh2[] = {"/bin/sh", "-c", "exit 7", NULL};
	CHECK(dp_envoy_start(sh2, &pid) == 0);
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7);
	char *sh3[] = {"/nonexistent/bin", NULL};
	CHECK(dp_envoy_start(sh3, &pid) == 0);
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 127);

	/* `--version` through a real child */
	char script[] = "/tmp/kuma-dp-envoy-test-XXXXXX";
	int fd = mkstemp(script);
	const char body[] = "#!/bin/sh\nprintf '\\nenvoy  version: abc/1.40.0/Clean/RELEASE/BoringSSL\\n'\n";
	CHECK(write(fd, body, sizeof(body) - 1) == (ssize_t)(sizeof(body) - 1));
	fchmod(fd, 0755);
	close(fd);
	CHECK(dp_envoy_version(a, script, &v, &err) == 0);
	CHECK_STREQ(v.version, "1.40.0");
	CHECK(v.compatible);
	unlink(script);

	/* admin over a socket nobody listens on */
	km_buf_reset(&err);
	CHECK(dp_envoy_admin_post("/nonexistent/admin.sock", 0, "/healthcheck/fail", &err) == -EIO);
	CHECK(strncmp(km_buf_cstr(&err), "Post \"http://localhost/healthcheck/fail\": ", 42) == 0);

	km_buf_fini(&err);
	km_arena_free(a);
	return test_summary();
}
