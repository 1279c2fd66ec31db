/* SPDX-License-Identifier: Apache-2.0 */
/* See curlm.h. */
#include "ev/curlm.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/mem.h"

struct km_curlm {
	struct km_loop *loop;
	CURLM *multi;
	struct km_timer timer;
	km_curlm_done_fn done;
	void *ctx;
};

static void check_done(struct km_curlm *cm)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(cm->multi, &left)))
		if (msg->msg == CURLMSG_DONE)
			cm->done(cm->ctx, msg->easy_handle, msg->data.result);
}

static void on_io(struct km_loop *loop, int fd, unsigned events, void *ctx)
{
	struct km_curlm *cm = ctx;
	int flags = 0, running;
	if (events & KM_EV_READ)
		flags |= CURL_CSELECT_IN;
	if (events & KM_EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(cm->multi, fd, flags, &running);
	check_done(cm);
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct km_curlm *cm = userp;
	if (what == CURL_POLL_REMOVE) {
		km_loop_unwatch(cm->loop, s);
		return 0;
	}
	unsigned ev = 0;
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev |= KM_EV_READ;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev |= KM_EV_WRITE;
	km_loop_watch(cm->loop, s, ev, on_io, cm);
	return 0;
}

static int on_close(void *clientp, curl_socket_t s)
{
	struct km_curlm *cm = clientp;
	km_loop_unwatch(cm->loop, s);
	return close(s);
}

static void on_timeout(struct km_loop *loop, void *ctx)
{
	struct km_curlm *cm = ctx;
	int running;
	curl_multi_socket_action(cm->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(cm);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct km_curlm *cm = userp;
	if (timeout_ms < 0)
		km_loop_timer_stop(cm->loop, &cm->timer);
	else
		km_loop_timer_start(cm->loop, &cm->timer, (uint64_t)timeout_ms, on_timeout, cm);
	return 0;
}

struct km_curlm *km_curlm_new(struct km_loop *loop, km_curlm_done_fn done, void *ctx)
{
	struct km_curlm *cm = km_calloc(1, sizeof(*cm));
	cm->multi = curl_multi_init();
	if (!cm->multi) {
		free(cm);
		return NULL;
	}
	cm->loop = loop;
	cm->done = done;
	cm->ctx = ctx;
	curl_multi_setopt(cm->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(cm->multi, CURLMOPT_SOCKETDATA, cm);
	curl_multi_setopt(cm->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(cm->multi, CURLMOPT_TIMERDATA, cm);
	return cm;
}

int km_curlm_add(struct km_curlm *cm, CURL *easy)
{
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, on_close);
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, cm);
	return curl_multi_add_handle(cm->multi, easy) == CURLM_OK ? 0 : -ENOMEM;
}

void km_curlm_remove(struct km_curlm *cm, CURL *easy)
{
	curl_multi_remove_handle(cm->multi, easy);
}

void km_curlm_free(struct km_curlm *cm)
{
	if (!cm)
		return;
	km_loop_timer_stop(cm->loop, &cm->timer);
	curl_multi_cleanup(cm->multi);
	free(cm);
}
