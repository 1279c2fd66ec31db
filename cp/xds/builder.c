/* SPDX-License-Identifier: Apache-2.0 */
/* The builder thread (see builder.h). One mutex guards the queue, the
 * pass and each job's done flag; a job is built outside it. Jobs are
 * claimed in queue order by the thread and, while it waits for the oldest
 * one, by the caller of cp_xds_builder_next, so both build at once (the
 * share table has its own lock) and jobs finish out of order; they are
 * taken back in queue order. */
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
#include "cp/pki/pki.h"
#include "pb/json.h"

int64_t cp_xds_thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void cp_xds_job_run(struct cp_xds_job *j, const struct cp_xds_mesh *m, struct cp_xds_share *sh)
{
	int64_t t0 = cp_xds_thread_cpu_ns();
	memset(&j->stats, 0, sizeof(j->stats));
	memset(&j->built, 0, sizeof(j->built));
	if (j->issue) {
		/* the signature is most of a certificate's cost: here, off the loop */
		int rc = cp_pki_issue_run(j->issue);
		if (!rc) {
			j->tls->cert_pem = cp_pki_issue_cert(j->issue);
			j->tls->key_pem = cp_pki_issue_key(j->issue);
			j->tls->keys_fp = cp_pki_pem_fp(j->tls->cert_pem, j->tls->key_pem);
		}
		uint64_t ns = (uint64_t)(cp_xds_thread_cpu_ns() - t0);
		j->issue_ns += ns;
		if (rc) {
			j->cpu_ns = ns;
			return;
		}
	}
	cp_xds_build(j->a, m, j->dp, &j->md, sh, j->lm, &j->built, &j->stats, &j->errors);
	j->cpu_ns = (uint64_t)(cp_xds_thread_cpu_ns() - t0);
}

/* Unclaimed jobs the taker leaves to the thread before it helps: more
 * waiting than that means the thread is the slower side; otherwise the
 * taker's own work (sending) is, and building would only delay it. The
 * taker helps from the far end of the queue: neighbouring jobs are
 * usually replicas of one service with the same destinations, and two
 * builds of those at once would wait for each other's new resources and
 * pass the shared ones' cache lines back and forth (gen_bench -t 2). */
#define HELP_MARGIN 64

struct cp_xds_builder {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work; /* a job was queued, or stop */
	pthread_cond_t done; /* a job was built */
	struct cp_xds_job **q;
	size_t cap;
	size_t nsub, ntaken;               /* ntaken <= nsub */
	size_t front;                      /* every job before it is claimed */
	size_t nunclaimed;
	size_t nbusy;                      /* jobs being built */
	struct cp_xds_builder_stats stats; /* of the open pass */
	const struct cp_xds_mesh *m;
	struct cp_xds_share *sh;
	size_t settle; /* blocks freed from the thread's heap to settle (0: none) */
	bool stop;
};

/* Builds the first unclaimed job, or the last one (<from_back>); called
 * with an unclaimed job queued, and returns, with the lock held. Only
 * entries from <ntaken> on are looked at: every unclaimed job is there. */
static void build_one(struct cp_xds_builder *b, bool from_back)
{
	struct cp_xds_job *j;
	if (from_back) {
		size_t k = b->nsub;
		while (b->q[k - 1]->claimed)
			k--;
		j = b->q[k - 1];
	} else {
		/* a job taken back may be in memory its caller has reused for a
		 * later one (the server's pass recycles a window of slots), which
		 * can look unclaimed; none before <ntaken> is still to build */
		if (b->front < b->ntaken)
			b->front = b->ntaken;
		while (b->q[b->front]->claimed)
			b->front++;
		j = b->q[b->front++];
	}
	j->claimed = true;
	b->nunclaimed--;
	const struct cp_xds_mesh *m = b->m;
	struct cp_xds_share *sh = b->sh;
	b->nbusy++;
	pthread_mutex_unlock(&b->mu);
	cp_xds_job_run(j, m, sh);
	pthread_mutex_lock(&b->mu);
	j->done = true;
	b->nbusy--;
	pthread_cond_broadcast(&b->done);
}

static void *thread_main(void *arg)
{
	struct cp_xds_builder *b = arg;
	pthread_mutex_lock(&b->mu);
	for (;;) {
		while (!b->stop && !b->nunclaimed && !b->settle) {
			b->stats.thread_waits++;
			pthread_cond_wait(&b->work, &b->mu);
		}
		if (b->nunclaimed) {
			build_one(b, false);
		} else if (b->settle && !b->stop) {
			size_t n = b->settle;
			b->settle = 0;
			pthread_mutex_unlock(&b->mu);
			km_heap_settle(n);
			pthread_mutex_lock(&b->mu);
		} else {
			break; /* stopping, nothing queued */
		}
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
	b->nsub = b->ntaken = b->front = b->nunclaimed = 0;
	pthread_mutex_unlock(&b->mu);
}

void cp_xds_builder_submit(struct cp_xds_builder *b, struct cp_xds_job *j)
{
	pthread_mutex_lock(&b->mu);
	if (b->nsub == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 256;
		b->q = km_realloc(b->q, b->cap * sizeof(*b->q));
	}
	j->done = false;
	j->claimed = false;
	b->q[b->nsub++] = j;
	b->nunclaimed++;
	pthread_cond_signal(&b->work);
	pthread_mutex_unlock(&b->mu);
}

void cp_xds_builder_settle(struct cp_xds_builder *b, size_t nfreed)
{
	pthread_mutex_lock(&b->mu);
	b->settle += nfreed;
	pthread_cond_signal(&b->work);
	pthread_mutex_unlock(&b->mu);
}

struct cp_xds_job *cp_xds_builder_next(struct cp_xds_builder *b)
{
	pthread_mutex_lock(&b->mu);
	struct cp_xds_job *j = NULL;
	if (b->ntaken < b->nsub) {
		j = b->q[b->ntaken];
		/* rather than wait for the thread, build what it has not
		 * claimed yet: this job when the thread has not taken it, else
		 * from the far end when the thread is well behind */
		while (!j->done) {
			if (!j->claimed) {
				b->stats.taker_built++;
				build_one(b, false);
			} else if (b->nunclaimed > HELP_MARGIN) {
				b->stats.taker_built++;
				build_one(b, true);
			} else {
				b->stats.taker_waits++;
				pthread_cond_wait(&b->done, &b->mu);
			}
		}
		b->ntaken++;
	}
	pthread_mutex_unlock(&b->mu);
	return j;
}

void cp_xds_builder_end(struct cp_xds_builder *b, struct cp_xds_builder_stats *stats)
{
	pthread_mutex_lock(&b->mu);
	if (stats)
		*stats = b->stats;
	memset(&b->stats, 0, sizeof(b->stats));
	if (b->ntaken != b->nsub)
		km_error("xds",
			 "builder pass closed with jobs not taken back submitted=%zu taken=%zu",
			 b->nsub, b->ntaken);
	/* nothing may run past the pass: wait for what was queued */
	b->nunclaimed = 0;
	while (b->nbusy)
		pthread_cond_wait(&b->done, &b->mu);
	b->m = NULL;
	b->sh = NULL;
	b->nsub = b->ntaken = b->front = b->nunclaimed = 0;
	pthread_mutex_unlock(&b->mu);
}
