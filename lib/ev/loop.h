/* SPDX-License-Identifier: Apache-2.0 */
/* The event loop: one epoll set, one thread. File descriptors get a callback
 * for readiness; timers are one-shot with millisecond resolution (re-arm from
 * the callback for periodic work); signals arrive through a signalfd as
 * ordinary callbacks. Handles are owned by the caller and must outlive their
 * registration. */
#ifndef KM_EV_LOOP_H
#define KM_EV_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct km_loop;

enum { KM_EV_READ = 1, KM_EV_WRITE = 2 };

typedef void (*km_io_fn)(struct km_loop *loop, int fd, unsigned events, void *ctx);
typedef void (*km_timer_fn)(struct km_loop *loop, void *ctx);
typedef void (*km_signal_fn)(struct km_loop *loop, int signo, void *ctx);

struct km_timer {
	uint64_t deadline_ms; /* CLOCK_MONOTONIC */
	km_timer_fn fn;
	void *ctx;
	size_t heap_index;     /* private: position in the loop's heap */
	uint64_t seq;          /* private: arming order, breaks deadline ties */
	bool armed;
};

struct km_loop *km_loop_new(void);
void km_loop_free(struct km_loop *loop);
/* Registers or updates interest in <fd>; events = 0 removes it. */
int km_loop_watch(struct km_loop *loop, int fd, unsigned events, km_io_fn fn, void *ctx);
void km_loop_unwatch(struct km_loop *loop, int fd);
/* (Re-)arms <t> to fire once after <ms>. */
void km_loop_timer_start(struct km_loop *loop, struct km_timer *t, uint64_t ms, km_timer_fn fn,
			 void *ctx);
void km_loop_timer_stop(struct km_loop *loop, struct km_timer *t);
/* Blocks <signo> for the process and delivers it to <fn> from the loop. */
int km_loop_signal(struct km_loop *loop, int signo, km_signal_fn fn, void *ctx);
/* Runs until km_loop_stop(); returns 0. */
int km_loop_run(struct km_loop *loop);
void km_loop_stop(struct km_loop *loop);
uint64_t km_loop_now_ms(void);

#endif
