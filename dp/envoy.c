/* SPDX-License-Identifier: Apache-2.0 */
/* Envoy as a child process: finding the binary, reading its version, building
 * its command line, starting it in its own process group, and talking to its
 * admin API (over the Unix socket the bootstrap configures). Supervision
 * (waitpid, signals, drain) belongs to the run loop in run.c. Returned
 * strings live in the caller's arena. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "dp/dp.h"

static bool executable(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

/* exec.LookPath: a name with a slash is checked as is, others along PATH. */
static const char *look_path(struct km_arena *a, const char *name)
{
	if (strchr(name, '/'))
		return executable(name) ? name : NULL;
	const char *path = getenv("PATH");
	if (!path)
		return NULL;
	const char *p = path;
	for (;;) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		const char *cand = km_arena_printf(a, "%.*s/%s", (int)(n ? n : 1), n ? p : ".", name);
		if (executable(cand))
			return cand;
		if (!colon)
			return NULL;
		p = colon + 1;
	}
}

int dp_envoy_lookup(struct km_arena *a, const char *configured, const char **path,
		    struct km_buf *err)
{
	const char *cands[3];
	size_t n = 0;
	cands[n++] = configured;
	char cwd[PATH_MAX];
	if (getcwd(cwd, sizeof(cwd)))
		cands[n++] = km_arena_printf(a, "%s/envoy", cwd);
	char exe[PATH_MAX];
	ssize_t l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (l > 0) {
		exe[l] = 0;
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = 0;
		cands[n++] = km_arena_printf(a, "%s/envoy", exe);
	}
	for (size_t i = 0; i < n; i++) {
		const char *p = look_path(a, cands[i]);
		if (p) {
			*path = p;
			return 0;
		}
	}
	km_buf_puts(err, "could not find executable binary in any of the following paths: [");
	for (size_t i = 0; i < n; i++)
		km_buf_printf(err, "%s%s", i ? " " : "", cands[i]);
	km_buf_puts(err, "]");
	return -ENOENT;
}

static bool in_set(char ch, const char *set)
{
	return ch && strchr(set, ch) != NULL;
}

int dp_envoy_version_parse(struct km_arena *a, struct km_str output, struct dp_envoy_version *v,
			   struct km_buf *err)
{
	long at = km_str_find(output, KM_STR("version:"));
	struct km_str b = {"", 0};
	if (at >= 0) {
		b.ptr = output.ptr + at;
		b.len = output.len - (size_t)at;
		const char *nl = memchr(b.ptr, '\n', b.len);
		if (nl)
			b.len = (size_t)(nl - b.ptr);
		/* strings.Trim(build, "version:") trims that set of characters */
		while (b.len && in_set(b.ptr[0], "version:"))
			b.ptr++, b.len--;
		while (b.len && in_set(b.ptr[b.len - 1], "version:"))
			b.len--;
		while (b.len && b.ptr[0] == ' ')
			b.ptr++, b.len--;
		while (b.len && (b.ptr[b.len - 1] == ' ' || b.ptr[b.len - 1] == '\r'))
			b.len--;
	}
	const char *build = km_arena_strndup(a, b.ptr, b.len);
	int parts = 1;
	const char *p1 = NULL, *p2 = NULL;
	for (const char *p = build; *p; p++)
		if (*p == '/') {
			parts++;
			if (parts == 2)
				p1 = p + 1;
			else if (parts == 3)
				p2 = p;
		}
	if (parts != 5) {
		km_buf_printf(err, "wrong Envoy build format: %s", build);
		return -EINVAL;
	}
	v->build = build;
	v->version = km_arena_strndup(a, p1, (size_t)(p2 - p1));
	v->compatible = dp_envoy_compatible(DP_ENVOY_VERSION, v->version);
	return 0;
}

int dp_envoy_version(struct km_arena *a, const char *path, struct dp_envoy_version *v,
		     struct km_buf *err)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(fds[0]);
		close(fds[1]);
		return -e;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(fds[1], STDOUT_FILENO);
		execl(path, path, "--version", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	struct km_buf out = KM_BUF_INIT;
	out.max = 64 * 1024;
	char chunk[4096];
	ssize_t n;
	while ((n = read(fds[0], chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && km_buf_append(&out, chunk, (size_t)n) != 0)
			break;
	close(fds[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int rc;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFEXITED(status))
			km_buf_printf(err, "failed to execute %s with arguments \"--version\": exit status %d",
				      path, WEXITSTATUS(status));
		else
			km_buf_printf(err, "failed to execute %s with arguments \"--version\": signal: %s",
				      path, strsignal(WTERMSIG(status)));
		rc = -EIO;
	} else {
		rc = dp_envoy_version_parse(a, (struct km_str){km_buf_cstr(&out), out.len}, v, err);
	}
	km_buf_fini(&out);
	return rc;
}

/* Parses "MAJOR[.MINOR[.PATCH]][-pre][+meta]" with an optional "v". */
static bool semver(const char *s, long v[3], bool *pre)
{
	if (*s == 'v')
		s++;
	v[0] = v[1] = v[2] = 0;
	*pre = false;
	for (int i = 0; i < 3; i++) {
		if (*s < '0' || *s > '9')
			return false;
		char *end;
		v[i] = strtol(s, &end, 10);
		s = end;
		if (*s == '.' && i < 2) {
			s++;
			continue;
		}
		break;
	}
	if (*s == '-')
		*pre = true;
	else if (*s && *s != '+')
		return false;
	return true;
}

bool dp_envoy_compatible(const char *expected, const char *version)
{
	if (strcmp(expected, version) == 0)
		return true;
	long e[3], g[3];
	bool epre, gpre;
	if (!semver(expected, e, &epre) || !semver(version, g, &gpre))
		return false;
	if (gpre)
		return false; /* a pre-release never satisfies a plain ~ constraint */
	if (g[0] != e[0] || g[1] != e[1])
		return false;
	return g[2] >= e[2];
}

char **dp_envoy_args(struct km_arena *a, const struct dp_config *c, const char *path,
		     const char *config_path)
{
	char **argv = km_arena_alloc(a, 20 * sizeof(char *));
	size_t n = 0;
	argv[n++] = (char *)path;
	argv[n++] = "--config-path";
	argv[n++] = (char *)config_path;
	argv[n++] = "--drain-time-s";
	argv[n++] = km_arena_printf(a, "%" PRId64, c->drain_time / INT64_C(1000000000));
	argv[n++] = "--drain-strategy";
	argv[n++] = "immediate";
	argv[n++] = "--disable-hot-restart";
	argv[n++] = "--log-level";
	argv[n++] = (char *)c->envoy_log_level;
	if (c->envoy_component_log_level && *c->envoy_component_log_level) {
		argv[n++] = "--component-log-level";
		argv[n++] = (char *)c->envoy_component_log_level;
	}
	if (c->concurrency > 0) {
		argv[n++] = "--concurrency";
		argv[n++] = km_arena_printf(a, "%u", c->concurrency);
	} else {
		argv[n++] = "--cpuset-threads";
	}
	argv[n] = NULL;
	return argv;
}

int dp_envoy_start(char **argv, pid_t *pid)
{
	pid_t parent = getpid();
	pid_t p = fork();
	if (p < 0)
		return -errno;
	if (p == 0) {
		/* own process group: a terminal's ^C reaches kuma-dp, which
		 * decides how Envoy stops; die if kuma-dp dies */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		execv(argv[0], argv);
		fprintf(stderr, "kuma-dp: cannot execute %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	*pid = p;
	return 0;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
	return size * nmemb;
}

int dp_envoy_admin_post(const char *socket, int port, const char *path, struct km_buf *err)
{
	CURL *h = curl_easy_init();
	if (!h)
		return -ENOMEM;
	char url[512];
	if (socket && *socket) {
		snprintf(url, sizeof(url), "http://localhost%s", path);
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, socket);
	} else {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	int rc = 0;
	if (cc != CURLE_OK) {
		km_buf_printf(err, "Post \"%s\": %s", url, curl_easy_strerror(cc));
		rc = -EIO;
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		if (status != 200) {
			km_buf_printf(err, "expected 200 status code, got %ld", status);
			rc = -EIO;
		}
	}
	curl_easy_cleanup(h);
	return rc;
}
