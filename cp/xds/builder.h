/* SPDX-License-Identifier: Apache-2.0 */
/* A second thread that builds proxies' configurations (cp_xds_build) while
 * the event loop sends the ones already built. A pass that regenerates many
 * proxies submits one job per proxy, in order, and takes them back in the
 * same order; while the oldest job is not built yet, the taker builds it
 * itself if the thread has not started it, or else, when many are waiting,
 * the last unclaimed one, instead of waiting. Ownership: a job and its
 * arena belong to the caller; between submit and next only the builders
 * touch them. The pass's mesh context is read-only to both and the loop
 * leaves it alone until cp_xds_builder_end; the share table locks. */
#ifndef CP_XDS_BUILDER_H
#define CP_XDS_BUILDER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "cp/xds/share.h"

struct cp_xds_job {
	/* in */
	const struct cp_xds_dataplane *dp;
	struct cp_xds_metadata md;
	struct cp_xds_local_memo *lm; /* the proxy's, or NULL */
	struct km_arena *a;           /* temporaries and the built arrays */
	void *ud;
	/* a certificate to issue first (cp_pki_leaf_deferred), whose PEMs go
	 * into <tls> (md.tls); NULL: none. A failed issuance builds nothing. */
	struct cp_pki_issue *issue;
	struct cp_xds_tls *tls;
	/* out */
	struct cp_xds_built built;
	struct cp_xds_share_stats stats;
	struct km_buf errors; /* cp_xds_build's error lines */
	uint64_t cpu_ns;      /* CPU time of the build on the thread that ran it */
	/* of that and of preparing it, signing a certificate (PKI work, not
	 * configuration; zeroed with the job, added to by cp_xds_job_run) */
	uint64_t issue_ns;
	bool done, claimed;   /* builder-internal */
};

/* CPU time of the calling thread, in nanoseconds (what a build costs, not
 * the time the thread was preempted meanwhile). */
int64_t cp_xds_thread_cpu_ns(void);

/* Runs <j> on the calling thread (what the builder thread does with it). */
void cp_xds_job_run(struct cp_xds_job *j, const struct cp_xds_mesh *m, struct cp_xds_share *sh);

struct cp_xds_builder;
/* Starts the thread. Returns NULL when it cannot be started (the caller
 * builds on its own thread then). */
struct cp_xds_builder *cp_xds_builder_new(void);
/* Stops and joins the thread; no pass may be open. */
void cp_xds_builder_free(struct cp_xds_builder *b);

/* Opens a pass over context <m> and table <sh> (NULL: nothing shared). */
void cp_xds_builder_begin(struct cp_xds_builder *b, const struct cp_xds_mesh *m,
			  struct cp_xds_share *sh);
/* Queues <j>: the builder thread runs it after the jobs queued before. */
void cp_xds_builder_submit(struct cp_xds_builder *b, struct cp_xds_job *j);
/* The oldest submitted job not yet taken back, once built (meanwhile the
 * caller builds unclaimed jobs or waits); NULL when every submitted job was
 * taken back. */
struct cp_xds_job *cp_xds_builder_next(struct cp_xds_builder *b);
struct cp_xds_builder_stats {
	uint64_t taker_built;  /* jobs the taker built itself */
	uint64_t taker_waits;  /* times the taker waited for the thread */
	uint64_t thread_waits; /* times the thread waited for a job */
};
/* Closes the pass; every submitted job must have been taken back. Fills
 * <stats> (may be NULL) with the pass's counts. */
void cp_xds_builder_end(struct cp_xds_builder *b, struct cp_xds_builder_stats *stats);
/* Has the thread settle its heap (km_heap_settle) about <nfreed> blocks
 * freed from it, when no job waits: the loop frees what the thread built,
 * and its next allocation would otherwise sort them in a build. */
void cp_xds_builder_settle(struct cp_xds_builder *b, size_t nfreed);

#endif
