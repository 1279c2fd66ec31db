/* SPDX-License-Identifier: Apache-2.0 */
/* MeshAccessLog Tcp backends, kuma-dp's side (upstream's access-log
 * streamer): a named pipe at <workdir>/kuma-al-<name>-<mesh>.sock, made
 * before Envoy starts, that Envoy's file access logs of Tcp backends write
 * one JSON line per entry to: {"address": "host:port", "message": ...}
 * (also "address;message", upstream's older form). The message goes to a
 * TCP connection per address, kept open: a string as it is, anything else
 * as compact JSON with sorted keys and a newline (how Go marshals it).
 * Everything runs on the loop: the pipe is read without blocking (kuma-dp
 * holds a writer end itself, so Envoy restarting its writer is no EOF),
 * connections are non-blocking with a bounded queue each; a log that
 * cannot be delivered is dropped and said so, as upstream drops it. Host
 * names are resolved with getaddrinfo when a connection is made. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "codec/json.h"
#include "dp/dp.h"

#define SUB "access-log-streamer"
#define MAX_LINE (256 * 1024) /* a longer line is dropped */
#define MAX_QUEUE (1 << 20)   /* bytes waiting on one connection */
#define RETRY_MS 1000         /* a destination that failed is not tried again before */

struct sender {
	struct dp_accesslog *al;
	char *address;
	int fd; /* -1: failed at failed_ms, its logs dropped until RETRY_MS later */
	uint64_t failed_ms;
	bool connected;
	struct km_buf out;
	struct sender *next;
};

struct dp_accesslog {
	struct km_loop *loop;
	char *path;
	int rfd, wfd;
	struct km_buf line;
	bool skipping; /* inside an over-long line */
	struct sender *senders;
	uint64_t dropped;
};

static void sender_close(struct sender *s)
{
	struct dp_accesslog *al = s->al;
	if (s->fd >= 0) {
		km_loop_unwatch(al->loop, s->fd);
		close(s->fd);
	}
	for (struct sender **p = &al->senders; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	km_buf_fini(&s->out);
	free(s->address);
	free(s);
}

static void flush(struct sender *s);

/* The connection is gone: logs for the address are dropped for a while
 * (resolving and connecting again for every line would hold the loop). */
static void sender_fail(struct sender *s)
{
	if (s->fd >= 0) {
		km_loop_unwatch(s->al->loop, s->fd);
		close(s->fd);
	}
	s->fd = -1;
	s->connected = false;
	s->out.len = 0;
	s->failed_ms = km_loop_now_ms();
}

static void on_sender_io(struct km_loop *loop, int fd, unsigned events, void *ctx)
{
	struct sender *s = ctx;
	if (!s->connected) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
			km_error(SUB, "could not connect to TCP log destination, dropping its logs address=%s error=\"%s\"",
				 s->address, strerror(err ? err : errno));
			sender_fail(s);
			return;
		}
		s->connected = true;
		km_info(SUB, "connected to TCP log destination address=%s", s->address);
	}
	if (events & KM_EV_READ) { /* the destination closed (or sent something) */
		char buf[256];
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			km_info(SUB, "TCP log destination closed the connection address=%s", s->address);
			sender_close(s); /* reconnected at the next log */
			return;
		}
	}
	flush(s);
}

static void watch(struct sender *s)
{
	unsigned ev = KM_EV_READ | (!s->connected || s->out.len ? KM_EV_WRITE : 0);
	km_loop_watch(s->al->loop, s->fd, ev, on_sender_io, s);
}

static void flush(struct sender *s)
{
	while (s->connected && s->out.len) {
		ssize_t n = send(s->fd, s->out.data, s->out.len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			km_error(SUB, "could not send the log to TCP log destination, dropping it address=%s error=\"%s\"",
				 s->address, strerror(errno));
			sender_close(s); /* reconnected at the next log */
			return;
		}
		memmove(s->out.data, s->out.data + n, s->out.len - (size_t)n);
		s->out.len -= (size_t)n;
	}
	watch(s);
}

/* A connection being made to <address> ("host:port", "[v6]:port"); when it
 * cannot even start, a failed placeholder (see sender_fail). */
static struct sender *sender_new(struct dp_accesslog *al, struct km_str address)
{
	struct sender *s = km_calloc(1, sizeof(*s));
	*s = (struct sender){.al = al, .address = km_strndup(address.ptr, address.len), .fd = -1, .next = al->senders};
	s->out.max = MAX_QUEUE;
	al->senders = s;
	char *addr = km_strdup(s->address);
	char *colon = strrchr(addr, ':');
	char *host = addr;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	int gai = EAI_NONAME;
	if (colon && colon != addr && colon[1]) {
		*colon = 0;
		if (host[0] == '[' && colon[-1] == ']') {
			host++;
			colon[-1] = 0;
		}
		gai = getaddrinfo(host, colon + 1, &hints, &res);
	}
	free(addr);
	if (gai != 0 || !res) {
		km_error(SUB, "could not resolve TCP log destination address=%s error=\"%s\"", s->address,
			 gai_strerror(gai));
		sender_fail(s);
		return s;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int rc = fd < 0 ? -1 : connect(fd, res->ai_addr, res->ai_addrlen);
	int err = errno;
	freeaddrinfo(res);
	if (fd < 0 || (rc != 0 && err != EINPROGRESS)) {
		km_error(SUB, "could not connect to TCP log destination address=%s error=\"%s\"", s->address, strerror(err));
		if (fd >= 0)
			close(fd);
		sender_fail(s);
		return s;
	}
	s->fd = fd;
	s->connected = rc == 0;
	watch(s);
	return s;
}

static void deliver(struct dp_accesslog *al, struct km_str address, struct km_str msg)
{
	struct sender *s = al->senders;
	while (s && !km_str_eqc(address, s->address))
		s = s->next;
	if (s && s->fd < 0 && km_loop_now_ms() - s->failed_ms >= RETRY_MS) {
		sender_close(s); /* time to try again */
		s = NULL;
	}
	if (!s)
		s = sender_new(al, address);
	if (s->fd < 0) {
		al->dropped++;
		return; /* failed a moment ago (logged then) */
	}
	if (km_buf_append(&s->out, msg.ptr, msg.len) != 0) {
		if (al->dropped++ % 1000 == 0)
			km_warn(SUB, "TCP log destination is not keeping up, dropping logs address=%s dropped=%llu",
				s->address, (unsigned long long)al->dropped);
		return;
	}
	flush(s);
}

/* One line from Envoy (without its newline). */
void dp_accesslog_line(struct dp_accesslog *al, struct km_str line)
{
	struct km_arena *a = km_arena_new(1024);
	struct km_json *j = NULL;
	struct km_str address, msg;
	struct km_buf tmp = KM_BUF_INIT;
	if (km_json_parse(a, line.ptr, line.len, &j, NULL) == 0 && j->kind == KM_JSON_OBJECT) {
		address = km_json_get_string(j, "address");
		struct km_json *m = km_json_get(j, "message");
		if (m && m->kind == KM_JSON_STRING) {
			msg = m->s;
		} else {
			km_json_sort_keys(m);
			if (m)
				km_json_write(&tmp, m, 0, 0);
			else
				km_buf_puts(&tmp, "null");
			km_buf_putc(&tmp, '\n');
			msg = (struct km_str){tmp.data, tmp.len};
		}
	} else {
		const char *semi = line.len ? memchr(line.ptr, ';', line.len) : NULL;
		if (!semi) {
			km_error(SUB, "log format invalid: expected 2 components separated by ';' or a JSON object");
			goto out;
		}
		address = (struct km_str){line.ptr, (size_t)(semi - line.ptr)};
		/* the rest, with the newline the line had */
		km_buf_add(&tmp, semi + 1, (size_t)(line.ptr + line.len - semi - 1));
		km_buf_putc(&tmp, '\n');
		msg = (struct km_str){tmp.data, tmp.len};
	}
	if (address.len)
		deliver(al, address, msg);
out:
	km_buf_fini(&tmp);
	km_arena_free(a);
}

static void on_pipe(struct km_loop *loop, int fd, unsigned events, void *ctx)
{
	struct dp_accesslog *al = ctx;
	char buf[16384];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* EAGAIN; EOF cannot happen while we hold a writer */
		for (ssize_t i = 0; i < n;) {
			const char *nl = memchr(buf + i, '\n', (size_t)(n - i));
			size_t take = nl ? (size_t)(nl - (buf + i)) : (size_t)(n - i);
			if (!al->skipping && km_buf_append(&al->line, buf + i, take) != 0) {
				km_error(SUB, "dropping an access log line over %d bytes", MAX_LINE);
				al->skipping = true;
				al->line.len = 0;
			}
			i += (ssize_t)take;
			if (nl) {
				if (!al->skipping)
					dp_accesslog_line(al, (struct km_str){al->line.data ? al->line.data : "", al->line.len});
				al->line.len = 0;
				al->skipping = false;
				i++;
			}
		}
	}
}

struct dp_accesslog *dp_accesslog_start(struct km_loop *loop, const char *path)
{
	struct dp_accesslog *al = km_calloc(1, sizeof(*al));
	al->loop = loop;
	al->path = km_strdup(path);
	al->rfd = al->wfd = -1;
	al->line.max = MAX_LINE;
	km_info(SUB, "creating access log pipe file=%s", path);
	if ((unlink(path) != 0 && errno != ENOENT) || mkfifo(path, 0666) != 0) {
		km_error(SUB, "could not create the access log pipe file=%s error=\"%s\"", path, strerror(errno));
		dp_accesslog_stop(al);
		return NULL;
	}
	al->rfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	al->wfd = al->rfd >= 0 ? open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC) : -1;
	if (al->rfd < 0 || al->wfd < 0 || (loop && km_loop_watch(loop, al->rfd, KM_EV_READ, on_pipe, al) != 0)) {
		km_error(SUB, "could not open the access log pipe file=%s error=\"%s\"", path, strerror(errno));
		dp_accesslog_stop(al);
		return NULL;
	}
	return al;
}

void dp_accesslog_stop(struct dp_accesslog *al)
{
	if (!al)
		return;
	while (al->senders)
		sender_close(al->senders);
	if (al->rfd >= 0) {
		if (al->loop)
			km_loop_unwatch(al->loop, al->rfd);
		close(al->rfd);
	}
	if (al->wfd >= 0)
		close(al->wfd);
	unlink(al->path);
	km_buf_fini(&al->line);
	free(al->path);
	free(al);
}
