/* SPDX-License-Identifier: Apache-2.0 */
#include "ev/mhd.h"

static void on_timer(struct km_loop *loop, void *ctx)
{
	km_mhd_run(ctx);
}

static void on_io(struct km_loop *loop, int fd, unsigned events, void *ctx)
{
	km_mhd_run(ctx);
}

void km_mhd_run(struct km_mhd *w)
{
	MHD_run(w->d);
	MHD_UNSIGNED_LONG_LONG ms;
	if (MHD_get_timeout(w->d, &ms) == MHD_YES)
		km_loop_timer_start(w->loop, &w->timer, ms, on_timer, w);
	else
		km_loop_timer_stop(w->loop, &w->timer);
}

void km_mhd_run_soon(struct km_mhd *w)
{
	if (w->d)
		km_loop_timer_start(w->loop, &w->timer, 0, on_timer, w);
}

int km_mhd_attach(struct km_mhd *w, struct km_loop *loop, struct MHD_Daemon *d)
{
	*w = (struct km_mhd){.loop = loop, .epfd = -1};
	const union MHD_DaemonInfo *di = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	int epfd = di ? di->epoll_fd : -1;
	if (epfd < 0 || km_loop_watch(loop, epfd, KM_EV_READ, on_io, w) != 0)
		return -1;
	w->d = d;
	w->epfd = epfd;
	km_mhd_run(w);
	return 0;
}

void km_mhd_stop(struct km_mhd *w)
{
	if (!w->d)
		return;
	km_loop_unwatch(w->loop, w->epfd);
	km_loop_timer_stop(w->loop, &w->timer);
	MHD_stop_daemon(w->d);
	w->d = NULL;
	w->epfd = -1;
}
