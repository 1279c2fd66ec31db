/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for dp/accesslog.c on a real loop: lines written to the named pipe
 * (JSON with a string or an object message, and upstream's older
 * "address;message" form) reach a TCP listener in order, an object as
 * compact JSON with sorted keys; bad lines and an unreachable destination
 * are dropped without stopping the rest; stopping removes the pipe. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../test.h"
#include "dp/dp.h"
#include "ev/loop.h"

static void on_stop(struct km_loop *loop, void *ctx)
{
	km_loop_stop(loop);
}

/* Runs <loop> for <ms>. */
static void spin(struct km_loop *loop, uint64_t ms)
{
	struct km_timer t = {0};
	km_loop_timer_start(loop, &t, ms, on_stop, NULL);
	km_loop_run(loop);
}

static void test_forwarding(void)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK(bind(ls, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(ls, 4) == 0);
	socklen_t sl = sizeof(sa);
	getsockname(ls, (struct sockaddr *)&sa, &sl);
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sa.sin_port));

	char dir[] = "/tmp/al-test-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[128];
	snprintf(path, sizeof(path), "%s/kuma-al-web-default.sock", dir);
	struct km_loop *loop = km_loop_new();
	struct dp_accesslog *al = dp_accesslog_start(loop, path);
	CHECK(al != NULL);
	struct stat st;
	CHECK(stat(path, &st) == 0 && S_ISFIFO(st.st_mode));

	/* what Envoy writes, through the pipe */
	int w = open(path, O_WRONLY | O_NONBLOCK);
	CHECK(w >= 0);
	char buf[1024];
	int n = snprintf(buf, sizeof(buf),
			 "{\"address\":\"%s\",\"message\":\"plain line\\n\"}\n"
			 "not a json line and no separator\n"
			 "{\"address\":\"%s\",\"message\":{\"z\":1,\"a\":\"x\",\"m\":{\"b\":2,\"a\":[1,\"s\"]}}}\n"
			 "{\"address\":\"127.0.0.1:1\",\"message\":\"nobody listens\\n\"}\n"
			 "%s;older form",
			 addr, addr, addr);
	CHECK(write(w, buf, (size_t)n) == n);
	CHECK(write(w, "\n", 1) == 1); /* the last line ends in a second write */
	spin(loop, 300);
	int c = accept(ls, NULL, NULL);
	CHECK(c >= 0);
	/* everything for the listener arrived, on one connection, in order */
	struct timeval tv = {2, 0};
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	const char *want = "plain line\n{\"a\":\"x\",\"m\":{\"a\":[1,\"s\"],\"b\":2},\"z\":1}\nolder form\n";
	char got[512] = {0};
	size_t have = 0;
	while (have < strlen(want)) {
		ssize_t r = read(c, got + have, sizeof(got) - 1 - have);
		if (r <= 0)
			break;
		have += (size_t)r;
	}
	CHECK_STREQ(got, want);
	/* a line straight in (no pipe) takes the kept connection */
	char more[128];
	snprintf(more, sizeof(more), "{\"address\":\"%s\",\"message\":\"more\\n\"}", addr);
	dp_accesslog_line(al, km_str_c(more));
	spin(loop, 100);
	memset(got, 0, sizeof(got));
	CHECK(read(c, got, sizeof(got) - 1) == 5 && strcmp(got, "more\n") == 0);
	close(w);
	dp_accesslog_stop(al);
	CHECK(stat(path, &st) != 0 && errno == ENOENT);
	close(c);
	close(ls);
	km_loop_free(loop);
	rmdir(dir);
}

int main(void)
{
	test_forwarding();
	return test_summary();
}
