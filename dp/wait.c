/* SPDX-License-Identifier: Apache-2.0 */
/* `kuma-dp wait`: polls Envoy's /ready (on a loopback URL or the admin Unix
 * socket) until it answers 200 or the timeout passes, as upstream. All state
 * is on the stack. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "dp/dp.h"
#include "resource/validate.h"

static size_t discard(char *p, size_t s, size_t n, void *ud)
{
	return s * n;
}

static int check(const char *url, const char *uds, int64_t timeout_ns, char *why, size_t n)
{
	CURL *h = curl_easy_init();
	curl_easy_setopt(h, CURLOPT_URL, uds && *uds ? "http://localhost/ready" : url);
	if (uds && *uds)
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, uds);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout_ns / 1000000));
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (cc != CURLE_OK) {
		snprintf(why, n, "%s", curl_easy_strerror(cc));
		return -1;
	}
	if (status != 200) {
		snprintf(why, n, "HTTP status code %ld", status);
		return -1;
	}
	return 0;
}

static bool loopback_url(const char *url)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	return strncmp(p, "localhost", 9) == 0 || strncmp(p, "127.0.0.1", 9) == 0 ||
	       strncmp(p, "[::1]", 5) == 0;
}

int dp_wait_main(int argc, char **argv)
{
	const char *url = "http://localhost:9901/ready", *uds = "";
	int64_t timeout = 180 * INT64_C(1000000000), req = 500 * INT64_C(1000000),
		freq = INT64_C(1000000000);
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		const char *eq = strchr(a, '=');
		size_t n = eq ? (size_t)(eq - a) : strlen(a);
		if (eq)
			v = eq + 1;
		else if (i + 1 < argc)
			v = argv[i + 1];
		if (!v) {
			fprintf(stderr, "Error: flag needs an argument: %s\n", a);
			return 1;
		}
		int64_t *d = NULL;
		if (n == 5 && strncmp(a, "--url", n) == 0)
			url = v;
		else if (n == 13 && strncmp(a, "--unix-socket", n) == 0)
			uds = v;
		else if (n == 9 && strncmp(a, "--timeout", n) == 0)
			d = &timeout;
		else if (n == 17 && strncmp(a, "--request-timeout", n) == 0)
			d = &req;
		else if (n == 17 && strncmp(a, "--check-frequency", n) == 0)
			d = &freq;
		else {
			fprintf(stderr, "Error: unknown flag: %.*s\n", (int)n, a);
			return 1;
		}
		if (d && km_duration_parse(km_str_c(v), d) != 0) {
			fprintf(stderr, "Error: invalid argument \"%s\" for \"%.*s\" flag: time: invalid duration \"%s\"\n",
				v, (int)n, a, v);
			return 1;
		}
		if (!eq)
			i++;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct km_arena *a = km_arena_new(0);
	km_info("kuma-dp", "waiting for data plane proxy to be ready timeout=%s",
		km_duration_format(a, timeout));
	km_arena_free(a);
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	int rc = 1;
	for (;;) {
		struct timespec ts = {(time_t)(freq / 1000000000), (long)(freq % 1000000000)};
		nanosleep(&ts, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t el = (int64_t)(now.tv_sec - start.tv_sec) * 1000000000 + (now.tv_nsec - start.tv_nsec);
		if (el > timeout) {
			fputs("Error: timeout occurred while waiting for data plane proxy to be ready\n", stderr);
			break;
		}
		char why[256];
		if (!*uds && !loopback_url(url)) {
			snprintf(why, sizeof(why), "URL host must be a loopback address");
			km_info("kuma-dp", "data plane proxy is not ready err=\"%s\"", why);
			continue;
		}
		if (check(url, uds, req, why, sizeof(why)) == 0) {
			km_info("kuma-dp", "data plane is ready");
			rc = 0;
			break;
		}
		km_info("kuma-dp", "data plane proxy is not ready err=\"%s\"", why);
	}
	curl_global_cleanup();
	return rc;
}
