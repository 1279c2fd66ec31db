/* SPDX-License-Identifier: Apache-2.0 */
/* epoll-based loop with a binary min-heap of timers (each xDS stream arms a
 * few, so there can be tens of thousands: arming and stopping are O(log n))
 * and a signalfd for signals. Watch records live in a table indexed by
 * fd, grown on demand. */
#include "ev/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "base/mem.h"

struct watch {
	km_io_fn fn;
	void *ctx;
	unsigned events;
};

struct sig {
	int signo;
	km_signal_fn fn;
	void *ctx;
};

struct km_loop {
	int epfd;
	bool stop;
	struct watch *watches;
	size_t nwatches;
	struct km_timer **heap; /* min-heap on (deadline_ms, seq) */
	size_t nheap, capheap;
	uint64_t seq;
	int sigfd;
	sigset_t sigmask;
	struct sig sigs[16];
	size_t nsigs;
};

uint64_t km_loop_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct km_loop *km_loop_new(void)
{
	struct km_loop *l = km_calloc(1, sizeof(*l));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->sigfd = -1;
	sigemptyset(&l->sigmask);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	return l;
}

void km_loop_free(struct km_loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	if (l->sigfd >= 0)
		close(l->sigfd);
	free(l->watches);
	free(l->heap);
	free(l);
}

int km_loop_watch(struct km_loop *l, int fd, unsigned events, km_io_fn fn, void *ctx)
{
	if (fd < 0)
		return -EBADF;
	if (events == 0) {
		km_loop_unwatch(l, fd);
		return 0;
	}
	if ((size_t)fd >= l->nwatches) {
		size_t n = l->nwatches ? l->nwatches : 64;
		while (n <= (size_t)fd)
			n *= 2;
		l->watches = km_realloc(l->watches, n * sizeof(*l->watches));
		memset(l->watches + l->nwatches, 0, (n - l->nwatches) * sizeof(*l->watches));
		l->nwatches = n;
	}
	struct watch *w = &l->watches[fd];
	struct epoll_event ev = {0};
	ev.data.fd = fd;
	if (events & KM_EV_READ)
		ev.events |= EPOLLIN | EPOLLRDHUP;
	if (events & KM_EV_WRITE)
		ev.events |= EPOLLOUT;
	int op = w->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(l->epfd, op, fd, &ev) < 0)
		return -errno;
	w->fn = fn;
	w->ctx = ctx;
	w->events = events;
	return 0;
}

void km_loop_unwatch(struct km_loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nwatches || !l->watches[fd].events)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	memset(&l->watches[fd], 0, sizeof(l->watches[fd]));
}

static bool timer_before(const struct km_timer *a, const struct km_timer *b)
{
	return a->deadline_ms < b->deadline_ms || (a->deadline_ms == b->deadline_ms && a->seq < b->seq);
}

static void heap_set(struct km_loop *l, size_t i, struct km_timer *t)
{
	l->heap[i] = t;
	t->heap_index = i;
}

static void heap_up(struct km_loop *l, size_t i)
{
	struct km_timer *t = l->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!timer_before(t, l->heap[parent]))
			break;
		heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	heap_set(l, i, t);
}

static void heap_down(struct km_loop *l, size_t i)
{
	struct km_timer *t = l->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && timer_before(l->heap[c + 1], l->heap[c]))
			c++;
		if (!timer_before(l->heap[c], t))
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

void km_loop_timer_stop(struct km_loop *l, struct km_timer *t)
{
	if (!t->armed)
		return;
	size_t i = t->heap_index;
	struct km_timer *last = l->heap[--l->nheap];
	if (i < l->nheap) {
		heap_set(l, i, last);
		heap_up(l, i);
		heap_down(l, last->heap_index);
	}
	t->armed = false;
}

void km_loop_timer_start(struct km_loop *l, struct km_timer *t, uint64_t ms, km_timer_fn fn,
			 void *ctx)
{
	km_loop_timer_stop(l, t);
	t->deadline_ms = km_loop_now_ms() + ms;
	t->fn = fn;
	t->ctx = ctx;
	t->seq = l->seq++;
	t->armed = true;
	if (l->nheap == l->capheap) {
		l->capheap = l->capheap ? l->capheap * 2 : 16;
		l->heap = km_realloc(l->heap, l->capheap * sizeof(*l->heap));
	}
	heap_set(l, l->nheap++, t);
	heap_up(l, t->heap_index);
}

static void on_signalfd(struct km_loop *l, int fd, unsigned events, void *ctx)
{
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		for (size_t i = 0; i < l->nsigs; i++)
			if (l->sigs[i].signo == (int)si.ssi_signo)
				l->sigs[i].fn(l, (int)si.ssi_signo, l->sigs[i].ctx);
	}
}

int km_loop_signal(struct km_loop *l, int signo, km_signal_fn fn, void *ctx)
{
	if (l->nsigs == sizeof(l->sigs) / sizeof(l->sigs[0]))
		return -ENOSPC;
	sigaddset(&l->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &l->sigmask, NULL) < 0)
		return -errno;
	int fd = signalfd(l->sigfd, &l->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (l->sigfd < 0) {
		l->sigfd = fd;
		int rc = km_loop_watch(l, fd, KM_EV_READ, on_signalfd, NULL);
		if (rc)
			return rc;
	}
	l->sigs[l->nsigs++] = (struct sig){signo, fn, ctx};
	return 0;
}

void km_loop_stop(struct km_loop *l)
{
	l->stop = true;
}

int km_loop_run(struct km_loop *l)
{
	struct epoll_event evs[64];
	l->stop = false;
	while (!l->stop) {
		int timeout = -1;
		if (l->nheap) {
			uint64_t now = km_loop_now_ms();
			timeout = l->heap[0]->deadline_ms <= now ? 0 : (int)(l->heap[0]->deadline_ms - now);
		}
		int n = epoll_wait(l->epfd, evs, 64, timeout);
		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n && !l->stop; i++) {
			int fd = evs[i].data.fd;
			if ((size_t)fd >= l->nwatches || !l->watches[fd].events)
				continue;
			unsigned e = 0;
			if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				e |= KM_EV_READ;
			if (evs[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
				e |= KM_EV_WRITE;
			struct watch w = l->watches[fd];
			w.fn(l, fd, e, w.ctx);
		}
		uint64_t now = km_loop_now_ms();
		while (!l->stop && l->nheap && l->heap[0]->deadline_ms <= now) {
			struct km_timer *t = l->heap[0];
			km_loop_timer_stop(l, t);
			t->fn(l, t->ctx);
		}
	}
	return 0;
}
