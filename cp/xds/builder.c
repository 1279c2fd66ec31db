/* SPDX-License-Identifier: Apache-2.0 */
/* The builder thread (see builder.h). One mutex guards the queue and the
 * pass; a job is built outside it. The thread runs jobs strictly in queue
 * order, so the share table has one writer and the loop takes jobs back in
 * the order it submitted them. */
#include "cp/xds/builder.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/mem.h"
#include "codec/jsonf.h"
#include "pb/json.h"

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void cp_xds_job_run(struct cp_xds_job *j, const struct cp_xds_mesh *m, struct cp_xds_share *sh)
{
	int64_t t0 = thread_cpu_ns();
	memset(&j->stats, 0, sizeof(j->stats));
	cp_xds_build(j->a, m, j->dp, &j->md, sh, &j->built, &j->stats, &j->errors);
	j->cpu_ns = (uint64_t)(thread_cpu_ns() - t0);
}

struct cp_xds_builder {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work; /* a job was queued, or stop */
	pthread_cond_t done; /* a job was built */
	struct cp_xds_job **q;
	size_t cap;
	size_t nsub, nbuilt, ntaken; /* ntaken <= nbuilt <= nsub */
	const struct cp_xds_mesh *m;
	struct cp_xds_share *sh;
	bool stop;
};

static void *thread_main(void *arg)
{
	struct cp_xds_builder *b = arg;
	pthread_mutex_lock(&b->mu);
	for (;;) {
		while (!b->stop && b->nbuilt == b->nsub)
			pthread_cond_wait(&b->work, &b->mu);
		if (b->nbuilt == b->nsub)
			break; /* stopping, nothing queued */
		struct cp_xds_job *j = b->q[b->nbuilt];
		const struct cp_xds_mesh *m = b->m;
		struct cp_xds_share *sh = b->sh;
		pthread_mutex_unlock(&b->mu);
		cp_xds_job_run(j, m, sh);
		pthread_mutex_lock(&b->mu);
		b->nbuilt++;
		pthread_cond_signal(&b->done);
	}
	pthread_mutex_unlock(&b->mu);
	/* the encoders' per-thread caches die with the thread */
	km_pb_json_thread_fini();
	km_json_fmt_thread_fini();
	return NULL;
}

struct cp_xds_builder *cp_xds_builder_new(void)
{
	struct cp_xds_builder *b = km_calloc(1, sizeof(*b));
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->work, NULL);
	pthread_cond_init(&b->done, NULL);
	/* the thread takes no signals: the loop's signalfd handles them,
	 * whenever that was set up */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&b->thread, NULL, thread_main, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		km_warn("xds", "cannot start the builder thread, building on the loop error=%s",
			strerror(rc));
		pthread_cond_destroy(&b->done);
		pthread_cond_destroy(&b->work);
		pthread_mutex_destroy(&b->mu);
		free(b);
		return NULL;
	}
	return b;
}

void cp_xds_builder_free(struct cp_xds_builder *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	b->stop = true;
	pthread_cond_signal(&b->work);
	pthread_mutex_unlock(&b->mu);
	pthread_join(b->thread, NULL);
	pthread_cond_destroy(&b->done);
	pthread_cond_destroy(&b->work);
	pthread_mutex_destroy(&b->mu);
	free(b->q);
	free(b);
}

void cp_xds_builder_begin(struct cp_xds_builder *b, const struct cp_xds_mesh *m,
			  struct cp_xds_share *sh)
{
	pthread_mutex_lock(&b->mu);
	b->m = m;
	b->sh = sh;
	b->nsub = b->nbuilt = b->ntaken = 0;
	pthread_mutex_unlock(&b->mu);
}

void cp_xds_builder_submit(struct cp_xds_builder *b, struct cp_xds_job *j)
{
	pthread_mutex_lock(&b->mu);
	if (b->nsub == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 256;
		b->q = km_realloc(b->q, b->cap * sizeof(*b->q));
	}
	b->q[b->nsub++] = j;
	pthread_cond_signal(&b->work);
	pthread_mutex_unlock(&b->mu);
}

struct cp_xds_job *cp_xds_builder_next(struct cp_xds_builder *b)
{
	pthread_mutex_lock(&b->mu);
	struct cp_xds_job *j = NULL;
	if (b->ntaken < b->nsub) {
		while (b->nbuilt <= b->ntaken)
			pthread_cond_wait(&b->done, &b->mu);
		j = b->q[b->ntaken++];
	}
	pthread_mutex_unlock(&b->mu);
	return j;
}

void cp_xds_builder_end(struct cp_xds_builder *b)
{
	pthread_mutex_lock(&b->mu);
	if (b->ntaken != b->nsub)
		km_error("xds",
			 "builder pass closed with jobs not taken back submitted=%zu taken=%zu",
			 b->nsub, b->ntaken);
	/* nothing may run past the pass: wait for what was queued */
	while (b->nbuilt < b->nsub)
		pthread_cond_wait(&b->done, &b->mu);
	b->m = NULL;
	b->sh = NULL;
	b->nsub = b->nbuilt = b->ntaken = 0;
	pthread_mutex_unlock(&b->mu);
}
