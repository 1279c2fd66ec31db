/* SPDX-License-Identifier: Apache-2.0 */
/* libmicrohttpd driven by a km_loop: a daemon started with MHD_USE_EPOLL
 * (and without a thread of its own) exposes one epoll fd; the loop watches it
 * and the one timeout MHD asks for, and runs the daemon on either. Resuming
 * a suspended connection wakes that fd (MHD's inter-thread channel), so no
 * explicit run is needed after MHD_resume_connection. */
#ifndef KM_EV_MHD_H
#define KM_EV_MHD_H

#include <microhttpd.h>

#include "ev/loop.h"

struct km_mhd {
	struct MHD_Daemon *d;
	struct km_loop *loop;
	struct km_timer timer;
	int epfd;
};

/* Watches <d>'s epoll fd on <loop> and runs it once. 0, or -1 when <d> has
 * no epoll fd or the loop refuses it (<w> then holds nothing and the caller
 * still owns <d>). */
int km_mhd_attach(struct km_mhd *w, struct km_loop *loop, struct MHD_Daemon *d);
/* Runs the daemon now (after MHD_add_connection, say) and re-arms its
 * timeout. */
void km_mhd_run(struct km_mhd *w);
/* Runs the daemon from the loop's next turn (for callers inside another
 * callback, say a transfer's completion, that must not re-enter MHD). */
void km_mhd_run_soon(struct km_mhd *w);
/* Stops watching and stops the daemon (which completes its connections). */
void km_mhd_stop(struct km_mhd *w);

#endif
