/* SPDX-License-Identifier: Apache-2.0 */
/* PostgreSQL store over libpq with upstream's schema (pg_schema.c). Queries
 * are parameterised and synchronous on a dedicated connection; a second
 * connection LISTENs on resource_events and is driven by the event loop, so
 * writes made by any instance (and cascaded deletes) reach the event bus.
 * A third connection, in pipeline mode and driven by the loop, runs the
 * asynchronous read-modify-writes (cp_store_rmw) in batches: the reads of a
 * batch in one round trip, then its writes, each its own transaction.
 * A lost connection is re-established asynchronously with backoff; until
 * then operations fail fast with -KM_E_UNAVAILABLE and healthy() is false.
 * Results are copied into the caller's arena. */
#include <libpq-fe.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "codec/json.h"
#include "cp/config/config.h"
#include "cp/store/pg_schema.h"
#include "cp/store/store.h"
#include "ev/loop.h"

struct pg_store;

struct pgc {
	struct pg_store *p;
	PGconn *c;
	bool ok;
	bool listener;
	bool locker;
	bool writer;
	bool connecting;
	int fd;
	uint64_t backoff_ms;
	uint64_t deadline_ms;
	struct km_timer timer;
};

/* One operation of the batch on the writer connection. */
struct rmw_slot {
	struct cp_store_rmw *op; /* NULL: cancelled */
	struct km_arena *a;
	struct km_resource cur;
	bool have;  /* the record exists (cur) */
	int rc;
	bool retry; /* changed by another writer: read again */
};

/* What the writer connection's next result belongs to. */
struct rmw_expect {
	int slot; /* -1: the pipeline's sync point */
};

#define RMW_BATCH 64
#define RMW_TRIES 5

struct pg_store {
	struct cp_store base;
	const struct cp_config *cfg;
	struct km_loop *loop;
	struct pgc q; /* queries */
	struct pgc l; /* LISTEN resource_events */
	struct pgc k; /* leader lock (session advisory lock) */
	struct pgc w; /* read-modify-writes, pipelined */
	struct rmw_queue {
		struct cp_store_rmw *head, *tail;
	} wq[2]; /* waiting: [1] urgent, [0] the others */
	struct rmw_slot batch[RMW_BATCH];
	int nbatch;
	enum { RMW_IDLE, RMW_READING, RMW_WRITING } phase;
	struct rmw_expect expect[2 * RMW_BATCH + 1];
	int nexpect, next_expect;
	unsigned watching;
	void (*leader_fn)(void *ctx, bool leader);
	void *leader_ctx;
	bool leader;
	/* synchronous_commit off wanted (cp_store_relaxed) and as set on the
	 * query connection: a SET is sent only before a write that needs the
	 * other mode, so a run of relaxed writes costs no extra round trip */
	bool want_relaxed, is_relaxed;
	struct km_timer leader_timer;
	const char *keys[16];
	const char *vals[16];
	char port[16], timeout[16];
	char instance[128];
	int timeout_s;
};

static void conninfo(struct pg_store *p, const struct cp_config *cfg)
{
	const char *mode = cfg->store.postgres.tls.mode;
	const char *sslmode = "disable";
	if (strcmp(mode, "verifyNone") == 0)
		sslmode = "require";
	else if (strcmp(mode, "verifyCa") == 0)
		sslmode = "verify-ca";
	else if (strcmp(mode, "verifyFull") == 0)
		sslmode = "verify-full";
	snprintf(p->port, sizeof(p->port), "%d", cfg->store.postgres.port);
	p->timeout_s = cfg->store.postgres.connection_timeout > 0 ? cfg->store.postgres.connection_timeout : 5;
	snprintf(p->timeout, sizeof(p->timeout), "%d", p->timeout_s);
	size_t n = 0;
#define KV(k, v)                                                                                   \
	do {                                                                                       \
		if ((v) && *(v)) {                                                                 \
			p->keys[n] = (k);                                                          \
			p->vals[n] = (v);                                                          \
			n++;                                                                       \
		}                                                                                  \
	} while (0)
	KV("host", cfg->store.postgres.host);
	KV("port", p->port);
	KV("user", cfg->store.postgres.user);
	KV("password", cfg->store.postgres.password);
	KV("dbname", cfg->store.postgres.db_name);
	KV("sslmode", sslmode);
	KV("sslcert", cfg->store.postgres.tls.cert_path);
	KV("sslkey", cfg->store.postgres.tls.key_path);
	KV("sslrootcert", cfg->store.postgres.tls.ca_path);
	KV("connect_timeout", p->timeout);
	KV("application_name", "kuma-cp");
	/* notice a dead peer within seconds, not hours */
	KV("keepalives_idle", "5");
	KV("keepalives_interval", "2");
	KV("keepalives_count", "3");
#undef KV
	p->keys[n] = NULL;
	p->vals[n] = NULL;
}

static void notify(struct pg_store *p, enum cp_store_op op, const struct km_rtype *t,
		   struct km_str mesh, struct km_str name)
{
	if (p->base.on_change)
		p->base.on_change(p->base.on_change_ctx, op, t, mesh, name);
}

/* ---- connection management ---- */

static void start_connect(struct pgc *c);
static void rmw_fail_all(struct pg_store *p);
static void rmw_start(struct pg_store *p);
static void on_write_io(struct km_loop *loop, int fd, unsigned events, void *ctx);

static const char *pgc_name(const struct pgc *c)
{
	return c->listener ? "listen" : c->writer ? "write" : c->locker ? "lock" : "query";
}

static void on_retry(struct km_loop *loop, void *ctx)
{
	start_connect(ctx);
}

static void connect_failed(struct pgc *c, const char *reason)
{
	struct pg_store *p = c->p;
	char why[256];
	snprintf(why, sizeof(why), "%s", reason ? reason : "");
	for (char *nl = why; *nl; nl++)
		if (*nl == '\n')
			*nl = ' ';
	if (c->fd >= 0)
		km_loop_unwatch(p->loop, c->fd);
	c->fd = -1;
	if (c->c)
		PQfinish(c->c);
	c->c = NULL;
	c->connecting = false;
	c->ok = false;
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 500;
	if (c->backoff_ms > 5000)
		c->backoff_ms = 5000;
	km_warn("store", "postgres connection failed, retrying connection=%s retry_ms=%llu error=%s",
		pgc_name(c), (unsigned long long)c->backoff_ms, why);
	if (c->writer)
		rmw_fail_all(p);
	km_loop_timer_start(p->loop, &c->timer, c->backoff_ms, on_retry, c);
}

static void on_listen_io(struct km_loop *loop, int fd, unsigned events, void *ctx);
static void try_lead(struct pg_store *p);

/* libpq prints server notices on stderr by default; route them to our log */
static void on_notice(void *arg, const char *message)
{
	size_t n = strlen(message);
	while (n && message[n - 1] == '\n')
		n--;
	km_info("store", "postgres notice: %.*s", (int)n, message);
}

static void connected(struct pgc *c)
{
	struct pg_store *p = c->p;
	c->connecting = false;
	c->backoff_ms = 0;
	km_loop_timer_stop(p->loop, &c->timer);
	PQsetNoticeProcessor(c->c, on_notice, NULL);
	/* server side keepalives too, so a vanished leader releases its lock */
	PGresult *r = PQexec(c->c, "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2;"
				   " SET tcp_keepalives_count = 3");
	PQclear(r);
	if (c->locker) {
		c->ok = true;
		try_lead(p);
		return;
	}
	if (c->listener) {
		r = PQexec(c->c, "LISTEN resource_events");
		bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (!ok) {
			connect_failed(c, PQerrorMessage(c->c));
			return;
		}
		PQsetnonblocking(c->c, 1);
		c->fd = PQsocket(c->c);
		km_loop_watch(p->loop, c->fd, KM_EV_READ, on_listen_io, c);
		c->ok = true;
		km_info("store", "listening for resource events");
		/* anything may have changed while we were not listening */
		notify(p, CP_STORE_RESYNC, NULL, KM_STR(""), KM_STR(""));
	} else if (c->writer) {
		/* everything written here is derived and rewritten: no commit
		 * waits for the disk (see cp_store_relaxed) */
		r = PQexec(c->c, "SET synchronous_commit TO off");
		bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (!ok || PQsetnonblocking(c->c, 1) != 0 || !PQenterPipelineMode(c->c)) {
			connect_failed(c, PQerrorMessage(c->c));
			return;
		}
		c->fd = PQsocket(c->c);
		p->watching = KM_EV_READ;
		km_loop_watch(p->loop, c->fd, KM_EV_READ, on_write_io, c);
		c->ok = true;
		rmw_start(p);
	} else {
		c->ok = true;
		p->is_relaxed = false; /* a new session commits durably */
		km_info("store", "connected to postgres host=%s", p->cfg->store.postgres.host);
	}
}

static void on_connect_io(struct km_loop *loop, int fd, unsigned events, void *ctx);

static void poll_connect(struct pgc *c)
{
	struct pg_store *p = c->p;
	if (km_loop_now_ms() > c->deadline_ms) {
		connect_failed(c, "timeout");
		return;
	}
	PostgresPollingStatusType st = PQconnectPoll(c->c);
	int fd = PQsocket(c->c);
	if (c->fd >= 0 && c->fd != fd)
		km_loop_unwatch(p->loop, c->fd);
	c->fd = fd;
	switch (st) {
	case PGRES_POLLING_READING:
		km_loop_watch(p->loop, fd, KM_EV_READ, on_connect_io, c);
		break;
	case PGRES_POLLING_WRITING:
		km_loop_watch(p->loop, fd, KM_EV_WRITE, on_connect_io, c);
		break;
	case PGRES_POLLING_OK:
		km_loop_unwatch(p->loop, fd);
		c->fd = -1;
		connected(c);
		break;
	default:
		connect_failed(c, PQerrorMessage(c->c));
	}
}

static void on_connect_io(struct km_loop *loop, int fd, unsigned events, void *ctx)
{
	poll_connect(ctx);
}

static void on_connect_timeout(struct km_loop *loop, void *ctx)
{
	struct pgc *c = ctx;
	if (c->connecting)
		poll_connect(c);
}

static void start_connect(struct pgc *c)
{
	struct pg_store *p = c->p;
	if (c->connecting)
		return;
	if (c->c)
		PQfinish(c->c);
	c->ok = false;
	c->connecting = true;
	c->fd = -1;
	c->c = PQconnectStartParams(p->keys, p->vals, 0);
	if (!c->c || PQstatus(c->c) == CONNECTION_BAD) {
		connect_failed(c, c->c ? PQerrorMessage(c->c) : "out of memory");
		return;
	}
	c->deadline_ms = km_loop_now_ms() + (uint64_t)p->timeout_s * 1000;
	km_loop_timer_start(p->loop, &c->timer, (uint64_t)p->timeout_s * 1000 + 10,
			    on_connect_timeout, c);
	poll_connect(c);
}

static void set_leader(struct pg_store *p, bool leader)
{
	if (p->leader == leader)
		return;
	p->leader = leader;
	km_info("store", leader ? "leader elected: this instance" : "leadership lost");
	if (p->leader_fn)
		p->leader_fn(p->leader_ctx, leader);
}

static void lost(struct pgc *c)
{
	struct pg_store *p = c->p;
	if (!c->ok)
		return;
	if (c->locker)
		set_leader(p, false);
	if (c->listener && p->q.ok) {
		/* the server may be gone for every connection: check the query one */
		PGresult *r = PQexec(p->q.c, "SELECT 1");
		bool alive = PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
		if (!alive)
			lost(&p->q);
	}
	if (c->fd >= 0)
		km_loop_unwatch(p->loop, c->fd);
	c->fd = -1;
	c->ok = false;
	km_warn("store", "postgres connection lost connection=%s", pgc_name(c));
	if (c->writer)
		rmw_fail_all(p);
	start_connect(c);
}

/* {"action":"INSERT","data":{"name":..,"mesh":..,"type":..}} */
static void dispatch_event(struct pg_store *p, const char *payload)
{
	struct km_arena *a = km_arena_new(1024);
	struct km_json *ev;
	if (km_json_parse(a, payload, strlen(payload), &ev, NULL) == 0) {
		struct km_str action = km_json_get_string(ev, "action");
		struct km_json *data = km_json_get(ev, "data");
		const struct km_rtype *t = km_rtype_by_name(km_json_get_string(data, "type"));
		enum cp_store_op op = km_str_eqc(action, "INSERT")   ? CP_STORE_CREATE
				      : km_str_eqc(action, "UPDATE") ? CP_STORE_UPDATE
								     : CP_STORE_DELETE;
		if (t)
			notify(p, op, t, km_json_get_string(data, "mesh"), km_json_get_string(data, "name"));
	}
	km_arena_free(a);
}

static void on_listen_io(struct km_loop *loop, int fd, unsigned events, void *ctx)
{
	struct pgc *c = ctx;
	if (!PQconsumeInput(c->c) || PQstatus(c->c) != CONNECTION_OK) {
		lost(c);
		return;
	}
	PGnotify *n;
	while ((n = PQnotifies(c->c))) {
		dispatch_event(c->p, n->extra);
		PQfreemem(n);
	}
}

/* Leader election: a session advisory lock held on a dedicated connection.
 * PostgreSQL releases it the moment that session ends (process killed or
 * connection lost), so another instance takes over on its next attempt. The
 * row in `locks` names the current leader for operators and upstream tools. */
#define LEADER_LOCK_KEY 7286327389LL
#define LEADER_RETRY_MS 1000
#define LEADER_CHECK_MS 2000

static void on_leader_timer(struct km_loop *loop, void *ctx)
{
	try_lead(ctx);
}

static void try_lead(struct pg_store *p)
{
	struct pgc *c = &p->k;
	if (!p->leader_fn || !c->ok)
		return;
	PGresult *r;
	if (p->leader) {
		/* still holding it? a broken session means the lock is gone */
		r = PQexec(c->c, "SELECT 1");
		bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
		if (!ok) {
			lost(c);
			return;
		}
		km_loop_timer_start(p->loop, &p->leader_timer, LEADER_CHECK_MS, on_leader_timer, p);
		return;
	}
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%lld)", LEADER_LOCK_KEY);
	r = PQexec(c->c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		PQclear(r);
		lost(c);
		return;
	}
	bool got = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (got) {
		const char *v[] = {p->instance};
		r = PQexecParams(c->c,
				 "INSERT INTO locks (name, record_version_number, owner) VALUES"
				 " ('kuma-cp-lock', nextval('locks_rvn'), $1) ON CONFLICT (name) DO UPDATE"
				 " SET owner = $1, record_version_number = nextval('locks_rvn')",
				 1, NULL, v, NULL, NULL, 0);
		PQclear(r);
		set_leader(p, true);
	}
	km_loop_timer_start(p->loop, &p->leader_timer, got ? LEADER_CHECK_MS : LEADER_RETRY_MS,
			    on_leader_timer, p);
}

static void pg_elect(struct cp_store *s, void (*fn)(void *ctx, bool leader), void *ctx)
{
	struct pg_store *p = (struct pg_store *)s;
	p->leader_fn = fn;
	p->leader_ctx = ctx;
	start_connect(&p->k);
}

/* ---- queries ---- */

enum { SQLSTATE_UNIQUE = 0, SQLSTATE_FK, SQLSTATE_OTHER };

static int classify(PGresult *r)
{
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (st && strcmp(st, "23505") == 0)
		return SQLSTATE_UNIQUE;
	if (st && strcmp(st, "23503") == 0)
		return SQLSTATE_FK;
	return SQLSTATE_OTHER;
}

/* Runs a parameterised statement. NULL with *rc set when the connection is
 * down or the statement failed. */
static PGresult *exec(struct pg_store *p, const char *sql, int n, const char *const *vals, int *rc)
{
	if (!p->q.ok) {
		*rc = -KM_E_UNAVAILABLE;
		return NULL;
	}
	PGresult *r = PQexecParams(p->q.c, sql, n, NULL, vals, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		*rc = 0;
		return r;
	}
	if (PQstatus(p->q.c) != CONNECTION_OK) {
		PQclear(r);
		lost(&p->q);
		*rc = -KM_E_UNAVAILABLE;
		return NULL;
	}
	int cls = classify(r);
	*rc = cls == SQLSTATE_UNIQUE ? -KM_E_EXISTS : cls == SQLSTATE_FK ? -KM_E_MESH_NOT_FOUND : -EIO;
	if (cls == SQLSTATE_OTHER)
		km_error("store", "postgres statement failed error=%s", PQresultErrorMessage(r));
	PQclear(r);
	return NULL;
}

static char *cstr(struct km_arena *a, struct km_str s)
{
	return km_arena_strndup(a, s.ptr ? s.ptr : "", s.len);
}

/* Owner columns: explicit owner, else the Mesh for mesh-scoped types, else the
 * same-named owner of insights. */
static void owner_of(struct km_arena *a, const struct km_resource *r, const char **name,
		     const char **mesh, const char **type)
{
	*name = *mesh = *type = NULL;
	if (r->owner_type.len) {
		*name = cstr(a, r->owner_name);
		*mesh = cstr(a, r->owner_mesh);
		*type = cstr(a, r->owner_type);
	} else if (km_rtype_has(r->type, KM_RT_INSIGHT) && r->type->owner_type) {
		*name = cstr(a, r->name);
		*mesh = cstr(a, r->mesh);
		*type = r->type->owner_type;
	} else if (r->type->scope == KM_SCOPE_MESH) {
		*name = cstr(a, r->mesh);
		*mesh = "";
		*type = "Mesh";
	}
}

static const char *ts(struct km_arena *a, int64_t ns)
{
	return km_time_format(a, ns ? ns : km_time_now());
}

/* Before a write: the query session's synchronous_commit as the caller wants it. */
static void durability(struct pg_store *p)
{
	if (!p->q.ok || p->want_relaxed == p->is_relaxed)
		return;
	PGresult *r = PQexec(p->q.c, p->want_relaxed ? "SET synchronous_commit TO off" : "SET synchronous_commit TO on");
	if (PQresultStatus(r) == PGRES_COMMAND_OK)
		p->is_relaxed = p->want_relaxed;
	else
		km_debug("store", "cannot set synchronous_commit error=%s", PQresultErrorMessage(r));
	PQclear(r);
}

/* The writes, shared by the query connection and the writer's pipeline. */
#define INSERT_SQL                                                                                 \
	"INSERT INTO resources (name, mesh, type, version, spec, creation_time,"                   \
	" modification_time, owner_name, owner_mesh, owner_type, labels, status)"                  \
	" VALUES ($1, $2, $3, 1, $4, $5::timestamptz AT TIME ZONE 'UTC',"                          \
	" $6::timestamptz AT TIME ZONE 'UTC', $7, $8, $9, $10::jsonb, $11::jsonb)"
#define INSERT_PARAMS 11
#define UPDATE_SQL                                                                                 \
	"UPDATE resources SET spec = $1, version = $2, labels = $3::jsonb,"                        \
	" status = $4::jsonb, modification_time = $9::timestamptz AT TIME ZONE 'UTC'"              \
	" WHERE name = $5 AND mesh = $6 AND type = $7 AND version = $8"
#define UPDATE_PARAMS 9

/* INSERT_SQL's parameters for <r> (strings in <a>); times default to now. */
static void insert_params(struct km_arena *a, const struct km_resource *r, const char **v)
{
	const char *on, *om, *ot;
	owner_of(a, r, &on, &om, &ot);
	const char *ct = ts(a, r->ctime);
	const char *vals[INSERT_PARAMS] = {cstr(a, r->name), cstr(a, r->mesh), r->type->name,
					   r->spec.len ? cstr(a, r->spec) : "{}", ct,
					   r->mtime ? ts(a, r->mtime) : ct, on, om, ot,
					   r->labels.len ? cstr(a, r->labels) : "{}",
					   r->status.len ? cstr(a, r->status) : "{}"};
	memcpy(v, vals, sizeof(vals));
}

/* UPDATE_SQL's parameters: <r> over the stored <version>, modified now. */
static void update_params(struct km_arena *a, const struct km_resource *r, uint64_t version, const char **v)
{
	const char *vals[UPDATE_PARAMS] = {r->spec.len ? cstr(a, r->spec) : "{}",
					   km_arena_printf(a, "%llu", (unsigned long long)version + 1),
					   r->labels.len ? cstr(a, r->labels) : "{}",
					   r->status.len ? cstr(a, r->status) : "{}", cstr(a, r->name),
					   cstr(a, r->mesh), r->type->name,
					   km_arena_printf(a, "%llu", (unsigned long long)version), ts(a, 0)};
	memcpy(v, vals, sizeof(vals));
}

static int pg_create(struct cp_store *s, const struct km_resource *r)
{
	struct pg_store *p = (struct pg_store *)s;
	durability(p);
	struct km_arena *a = km_arena_new(4096);
	const char *v[INSERT_PARAMS];
	insert_params(a, r, v);
	int rc;
	PGresult *res = exec(p, INSERT_SQL, INSERT_PARAMS, v, &rc);
	PQclear(res);
	km_arena_free(a);
	return rc;
}

static int exists_row(struct pg_store *p, struct km_arena *a, const struct km_rtype *t,
		      struct km_str mesh, struct km_str name)
{
	const char *v[] = {cstr(a, name), cstr(a, mesh), t->name};
	int rc;
	PGresult *r = exec(p, "SELECT 1 FROM resources WHERE name = $1 AND mesh = $2 AND type = $3", 3, v, &rc);
	if (!r)
		return rc;
	rc = PQntuples(r) ? -KM_E_CONFLICT : -KM_E_NOT_FOUND;
	PQclear(r);
	return rc;
}

static int pg_update(struct cp_store *s, const struct km_resource *r)
{
	struct pg_store *p = (struct pg_store *)s;
	durability(p);
	struct km_arena *a = km_arena_new(4096);
	const char *v[UPDATE_PARAMS];
	update_params(a, r, r->version, v);
	int rc;
	PGresult *res = exec(p, UPDATE_SQL, UPDATE_PARAMS, v, &rc);
	if (res) {
		if (strcmp(PQcmdTuples(res), "0") == 0)
			rc = exists_row(p, a, r->type, r->mesh, r->name);
		PQclear(res);
	}
	km_arena_free(a);
	return rc;
}

static int pg_remove(struct cp_store *s, const struct km_rtype *t, struct km_str mesh,
		     struct km_str name, uint64_t version)
{
	struct pg_store *p = (struct pg_store *)s;
	durability(p);
	struct km_arena *a = km_arena_new(1024);
	char ver[24];
	snprintf(ver, sizeof(ver), "%llu", (unsigned long long)version);
	const char *v[] = {cstr(a, name), cstr(a, mesh), t->name, ver};
	int rc;
	PGresult *res = exec(p,
			     version ? "DELETE FROM resources WHERE name = $1 AND mesh = $2 AND type = $3 AND version = $4"
				     : "DELETE FROM resources WHERE name = $1 AND mesh = $2 AND type = $3",
			     version ? 4 : 3, v, &rc);
	if (res) {
		if (strcmp(PQcmdTuples(res), "0") == 0)
			rc = version ? exists_row(p, a, t, mesh, name) : -KM_E_NOT_FOUND;
		PQclear(res);
	}
	km_arena_free(a);
	return rc;
}

#define SELECT_COLS                                                                                \
	"SELECT name, mesh, version, spec, labels::text, status::text,"                            \
	" to_char(creation_time, 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"                            \
	" to_char(modification_time, 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"                       \
	" coalesce(owner_name, ''), coalesce(owner_mesh, ''), coalesce(owner_type, '')"            \
	" FROM resources"
#define SELECT_ONE SELECT_COLS " WHERE name = $1 AND mesh = $2 AND type = $3"

static struct km_str col(struct km_arena *a, PGresult *r, int row, int c)
{
	int n = PQgetlength(r, row, c);
	return (struct km_str){km_arena_strndup(a, PQgetvalue(r, row, c), (size_t)n), (size_t)n};
}

static void read_row(struct km_arena *a, const struct km_rtype *t, PGresult *r, int row,
		     struct km_resource *out)
{
	memset(out, 0, sizeof(*out));
	out->type = t;
	out->name = col(a, r, row, 0);
	out->mesh = col(a, r, row, 1);
	out->version = strtoull(PQgetvalue(r, row, 2), NULL, 10);
	out->spec = col(a, r, row, 3);
	out->labels = col(a, r, row, 4);
	if (km_str_eqc(out->labels, "{}"))
		out->labels = KM_STR("");
	out->status = col(a, r, row, 5);
	if (km_str_eqc(out->status, "{}") && !km_rtype_has(t, KM_RT_NEW_STYLE))
		out->status = KM_STR("");
	km_time_parse(col(a, r, row, 6), &out->ctime);
	km_time_parse(col(a, r, row, 7), &out->mtime);
	out->owner_name = col(a, r, row, 8);
	out->owner_mesh = col(a, r, row, 9);
	out->owner_type = col(a, r, row, 10);
	/* implicit owners are not reported back as explicit ones */
	if (km_str_eqc(out->owner_type, "Mesh") || km_rtype_has(t, KM_RT_INSIGHT))
		out->owner_type = out->owner_mesh = out->owner_name = KM_STR("");
}

static int pg_get(struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
		  struct km_str mesh, struct km_str name, struct km_resource *out)
{
	struct pg_store *p = (struct pg_store *)s;
	const char *v[] = {cstr(a, name), cstr(a, mesh), t->name};
	int rc;
	PGresult *r = exec(p, SELECT_ONE, 3, v, &rc);
	if (!r)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return -KM_E_NOT_FOUND;
	}
	read_row(a, t, r, 0, out);
	PQclear(r);
	return 0;
}

/* A text[] literal of <names>: {"a","b"}, quotes and backslashes escaped. */
static char *text_array(struct km_arena *a, const struct km_str *names, size_t n)
{
	struct km_buf b = KM_BUF_INIT;
	km_buf_putc(&b, '{');
	for (size_t i = 0; i < n; i++) {
		km_buf_puts(&b, i ? ",\"" : "\"");
		for (size_t k = 0; k < names[i].len; k++) {
			char ch = names[i].ptr[k];
			if (ch == '"' || ch == '\\')
				km_buf_putc(&b, '\\');
			km_buf_putc(&b, ch);
		}
		km_buf_putc(&b, '"');
	}
	km_buf_putc(&b, '}');
	char *out = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return out;
}

struct named_row {
	const char *name;
	int row;
};

static int by_row_name(const void *x, const void *y)
{
	return strcmp(((const struct named_row *)x)->name, ((const struct named_row *)y)->name);
}

#define GET_MANY_CHUNK 512

static int pg_get_many(struct cp_store *s, struct km_arena *a, const struct km_rtype *t, struct km_str mesh,
		       const struct km_str *names, size_t n, struct km_resource *out, int *rcs)
{
	struct pg_store *p = (struct pg_store *)s;
	for (size_t at = 0; at < n; at += GET_MANY_CHUNK) {
		size_t k = n - at < GET_MANY_CHUNK ? n - at : GET_MANY_CHUNK;
		struct km_arena *tmp = km_arena_new(4096);
		const char *v[] = {cstr(tmp, mesh), t->name, text_array(tmp, names + at, k)};
		int rc;
		PGresult *r = exec(p, SELECT_COLS " WHERE mesh = $1 AND type = $2 AND name = ANY($3::text[])", 3, v, &rc);
		if (!r) {
			km_arena_free(tmp);
			return rc;
		}
		int rows = PQntuples(r);
		struct named_row *byname = km_arena_alloc(tmp, ((size_t)rows + 1) * sizeof(*byname));
		for (int i = 0; i < rows; i++)
			byname[i] = (struct named_row){PQgetvalue(r, i, 0), i};
		qsort(byname, (size_t)rows, sizeof(*byname), by_row_name);
		for (size_t i = 0; i < k; i++) {
			struct named_row key = {cstr(tmp, names[at + i]), 0};
			struct named_row *hit = rows ? bsearch(&key, byname, (size_t)rows, sizeof(*byname), by_row_name) : NULL;
			rcs[at + i] = hit ? 0 : -KM_E_NOT_FOUND;
			if (hit)
				read_row(a, t, r, hit->row, &out[at + i]);
		}
		PQclear(r);
		km_arena_free(tmp);
	}
	return 0;
}

static int pg_list(struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
		   const struct cp_list_opts *o, struct cp_list_result *out)
{
	struct pg_store *p = (struct pg_store *)s;
	memset(out, 0, sizeof(*out));
	const char *v[4];
	int n = 0;
	struct km_buf sql = KM_BUF_INIT;
	km_buf_puts(&sql, SELECT_COLS " WHERE type = $1");
	v[n++] = t->name;
	if (o->mesh.len) {
		v[n++] = cstr(a, o->mesh);
		km_buf_printf(&sql, " AND mesh = $%d", n);
	}
	if (o->name_contains.len) {
		v[n++] = cstr(a, o->name_contains);
		km_buf_printf(&sql, " AND strpos(name, $%d) > 0", n);
	}
	if (o->labels_len) {
		struct km_json *sel = km_json_object(a);
		for (size_t i = 0; i < o->labels_len; i++)
			km_json_set_str(a, sel, o->labels[i].key, km_json_string(a, o->labels[i].value));
		struct km_buf j = KM_BUF_INIT;
		km_json_write(&j, sel, 0, 0);
		v[n++] = km_arena_strdup(a, km_buf_cstr(&j));
		km_buf_fini(&j);
		km_buf_printf(&sql, " AND labels @> $%d::jsonb", n);
	}
	int rc;
	/* without a caller predicate the database pages: LIMIT/OFFSET plus a count */
	bool paged = !o->match && (o->size || o->offset);
	size_t total = 0;
	if (paged) {
		struct km_buf cnt = KM_BUF_INIT;
		const char *where = strstr(km_buf_cstr(&sql), " WHERE ");
		km_buf_printf(&cnt, "SELECT count(*) FROM resources%s", where);
		PGresult *cr = exec(p, km_buf_cstr(&cnt), n, v, &rc);
		km_buf_fini(&cnt);
		if (!cr) {
			km_buf_fini(&sql);
			return rc;
		}
		total = strtoull(PQgetvalue(cr, 0, 0), NULL, 10);
		PQclear(cr);
		km_buf_printf(&sql, " ORDER BY name, mesh LIMIT %zu OFFSET %zu", o->size ? o->size : total,
			      o->offset);
	} else {
		km_buf_puts(&sql, " ORDER BY name, mesh");
	}
	PGresult *r = exec(p, km_buf_cstr(&sql), n, v, &rc);
	km_buf_fini(&sql);
	if (!r)
		return rc;
	int rows = PQntuples(r);
	if (paged) {
		out->items = km_arena_alloc(a, ((size_t)rows + 1) * sizeof(*out->items));
		for (int i = 0; i < rows; i++)
			read_row(a, t, r, i, &out->items[out->len++]);
		out->total = total;
		PQclear(r);
		return 0;
	}
	size_t want = o->size ? o->size : (size_t)rows;
	out->items = km_arena_alloc(a, (want ? want : 1) * sizeof(*out->items));
	struct km_arena *scratch = km_arena_new(4096);
	for (int i = 0; i < rows; i++) {
		struct km_resource res;
		/* the cheap view first: predicates need labels/spec, paging needs nothing */
		if (o->match) {
			read_row(scratch, t, r, i, &res);
			if (!o->match(o->match_ctx, &res))
				continue;
		}
		size_t idx = out->total++;
		if (idx >= o->offset && out->len < want)
			read_row(a, t, r, i, &out->items[out->len++]);
	}
	km_arena_free(scratch);
	PQclear(r);
	return 0;
}

static size_t pg_count(struct cp_store *s, const struct km_rtype *t, struct km_str mesh)
{
	struct pg_store *p = (struct pg_store *)s;
	struct km_arena *a = km_arena_new(256);
	const char *v[] = {t->name, cstr(a, mesh)};
	int rc;
	PGresult *r = exec(p,
			   mesh.len ? "SELECT count(*) FROM resources WHERE type = $1 AND mesh = $2"
				    : "SELECT count(*) FROM resources WHERE type = $1",
			   mesh.len ? 2 : 1, v, &rc);
	size_t n = r && PQntuples(r) ? strtoull(PQgetvalue(r, 0, 0), NULL, 10) : 0;
	PQclear(r);
	km_arena_free(a);
	return n;
}

static int pg_count_types(struct cp_store *s, struct km_str mesh, size_t *n)
{
	struct pg_store *p = (struct pg_store *)s;
	struct km_arena *a = km_arena_new(256);
	const char *v[] = {cstr(a, mesh)};
	int rc = 0;
	/* an empty mesh: every mesh's, as pg_count */
	PGresult *r = exec(p,
			   mesh.len ? "SELECT type, count(*) FROM resources WHERE mesh = $1 GROUP BY type"
				    : "SELECT type, count(*) FROM resources GROUP BY type",
			   mesh.len ? 1 : 0, v, &rc);
	memset(n, 0, km_rtypes_len * sizeof(*n));
	for (int i = 0; r && !rc && i < PQntuples(r); i++) {
		const struct km_rtype *t = km_rtype_by_name(km_str_c(PQgetvalue(r, i, 0)));
		if (t)
			n[t - km_rtypes] = strtoull(PQgetvalue(r, i, 1), NULL, 10);
	}
	PQclear(r);
	km_arena_free(a);
	return rc;
}

/* ---- asynchronous read-modify-writes (the writer connection) ----
 *
 * Operations wait in a queue; a batch of up to RMW_BATCH of them (never two
 * on one record) is read with one SELECT each and a single sync point, then
 * each merged record is written with its own sync point, so one failing
 * write aborts nothing else. A write that finds the record changed (an
 * UPDATE of no row, an INSERT of an existing key) sends its operation back
 * to the head of the queue to be read again. Results are read as the socket
 * delivers them: the loop never waits for the database here. */

static void rmw_watch(struct pg_store *p, unsigned ev)
{
	if (p->watching == ev || p->w.fd < 0)
		return;
	p->watching = ev;
	km_loop_watch(p->loop, p->w.fd, ev, on_write_io, &p->w);
}

/* Pushes what libpq buffered; waits for writability while some is left. */
static bool rmw_flush(struct pg_store *p)
{
	int f = PQflush(p->w.c);
	if (f < 0) {
		lost(&p->w);
		return false;
	}
	rmw_watch(p, f ? KM_EV_READ | KM_EV_WRITE : KM_EV_READ);
	return true;
}

static void rmw_finish(struct cp_store_rmw *op, int rc)
{
	op->slot = NULL;
	op->next = NULL;
	op->done(op, rc);
}

static void rmw_slot_clear(struct rmw_slot *sl)
{
	km_arena_free(sl->a);
	memset(sl, 0, sizeof(*sl));
}

static void rmw_fail_all(struct pg_store *p)
{
	/* detach everything first: done() may queue new operations */
	struct cp_store_rmw *fail = NULL, **tail = &fail;
	for (int i = 0; i < p->nbatch; i++) {
		if (p->batch[i].op) {
			*tail = p->batch[i].op;
			tail = &p->batch[i].op->next;
		}
		rmw_slot_clear(&p->batch[i]);
	}
	*tail = p->wq[1].head;
	if (p->wq[1].tail)
		tail = &p->wq[1].tail->next;
	*tail = p->wq[0].head;
	memset(p->wq, 0, sizeof(p->wq));
	p->nbatch = p->nexpect = p->next_expect = 0;
	p->phase = RMW_IDLE;
	while (fail) {
		struct cp_store_rmw *op = fail;
		fail = op->next;
		rmw_finish(op, -KM_E_UNAVAILABLE);
	}
}

static void q_push(struct rmw_queue *q, struct cp_store_rmw *op)
{
	op->next = NULL;
	if (q->tail)
		q->tail->next = op;
	else
		q->head = op;
	q->tail = op;
}

static bool rmw_waiting(const struct pg_store *p)
{
	return p->wq[0].head || p->wq[1].head;
}

static bool same_record(const struct cp_store_rmw *a, const struct cp_store_rmw *b)
{
	return a->type == b->type && km_str_eq(a->name, b->name) && km_str_eq(a->mesh, b->mesh);
}

/* Starts the next batch's reads when the connection is free. */
static void rmw_start(struct pg_store *p)
{
	if (p->phase != RMW_IDLE || !p->w.ok || !rmw_waiting(p))
		return;
	struct km_arena *a = km_arena_new(512);
	p->nbatch = p->nexpect = p->next_expect = 0;
	while (rmw_waiting(p) && p->nbatch < RMW_BATCH) {
		struct rmw_queue *q = p->wq[1].head ? &p->wq[1] : &p->wq[0];
		struct cp_store_rmw *op = q->head;
		bool clash = false;
		for (int i = 0; i < p->nbatch && !clash; i++)
			clash = same_record(p->batch[i].op, op);
		if (clash)
			break; /* the next batch, after this one's write */
		q->head = op->next;
		if (!q->head)
			q->tail = NULL;
		op->next = NULL;
		struct rmw_slot *sl = &p->batch[p->nbatch];
		memset(sl, 0, sizeof(*sl));
		sl->op = op;
		sl->a = km_arena_new(4096);
		op->slot = sl;
		const char *v[] = {cstr(a, op->name), cstr(a, op->mesh), op->type->name};
		if (!PQsendQueryParams(p->w.c, SELECT_ONE, 3, NULL,
				       v, NULL, NULL, 0)) {
			km_arena_free(a);
			p->nbatch++;
			lost(&p->w);
			return;
		}
		p->expect[p->nexpect++].slot = p->nbatch++;
	}
	km_arena_free(a);
	p->expect[p->nexpect++].slot = -1;
	p->phase = RMW_READING;
	if (!PQpipelineSync(p->w.c)) {
		lost(&p->w);
		return;
	}
	rmw_flush(p);
}

/* A write's SQL error: the record's key taken (created meanwhile), its
 * owner gone, or anything else. */
static int write_error(PGresult *r, bool *retry)
{
	int cls = classify(r);
	if (cls == SQLSTATE_UNIQUE) {
		*retry = true;
		return -KM_E_EXISTS;
	}
	if (cls == SQLSTATE_FK)
		return -KM_E_MESH_NOT_FOUND;
	km_error("store", "postgres statement failed error=%s", PQresultErrorMessage(r));
	return -EIO;
}

static void rmw_result(struct pg_store *p, struct rmw_slot *sl, PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	if (p->phase == RMW_READING) {
		if (st == PGRES_TUPLES_OK) {
			sl->have = PQntuples(r) > 0;
			if (sl->have && sl->op)
				read_row(sl->a, sl->op->type, r, 0, &sl->cur);
		} else {
			if (st == PGRES_FATAL_ERROR)
				km_error("store", "postgres statement failed error=%s", PQresultErrorMessage(r));
			sl->rc = -EIO;
		}
		return;
	}
	if (st == PGRES_COMMAND_OK) {
		/* an UPDATE of no row: changed or deleted since it was read */
		if (strcmp(PQcmdTuples(r), "0") == 0) {
			sl->rc = -KM_E_CONFLICT;
			sl->retry = true;
		}
	} else {
		sl->rc = st == PGRES_FATAL_ERROR ? write_error(r, &sl->retry) : -EIO;
	}
}

/* The batch's reads are in: merges each record and sends its write. */
static void rmw_write(struct pg_store *p)
{
	p->nexpect = p->next_expect = 0;
	p->phase = RMW_WRITING;
	for (int i = 0; i < p->nbatch; i++) {
		struct rmw_slot *sl = &p->batch[i];
		struct cp_store_rmw *op = sl->op;
		if (!op || sl->rc)
			continue;
		struct km_arena *a = sl->a;
		struct km_resource out = {.type = op->type, .mesh = op->mesh, .name = op->name};
		if (!op->merge(op, a, sl->have ? &sl->cur : NULL, &out))
			continue;
		if (!sl->op)
			continue; /* merge() cancelled its own operation */
		const char *v[INSERT_PARAMS];
		int ok;
		if (sl->have) {
			update_params(a, &out, sl->cur.version, v);
			ok = PQsendQueryParams(p->w.c, UPDATE_SQL, UPDATE_PARAMS, NULL, v, NULL, NULL, 0);
		} else {
			insert_params(a, &out, v);
			ok = PQsendQueryParams(p->w.c, INSERT_SQL, INSERT_PARAMS, NULL, v, NULL, NULL, 0);
		}
		if (!ok || !PQpipelineSync(p->w.c)) {
			lost(&p->w);
			return;
		}
		p->expect[p->nexpect++].slot = i;
		p->expect[p->nexpect++].slot = -1;
	}
	if (p->nexpect)
		rmw_flush(p);
}

/* The batch is written: reports each operation, or queues it again. */
static void rmw_end(struct pg_store *p)
{
	struct cp_store_rmw *fin[RMW_BATCH];
	int rcs[RMW_BATCH], nfin = 0;
	struct rmw_queue again[2] = {{0}};
	for (int i = 0; i < p->nbatch; i++) {
		struct rmw_slot *sl = &p->batch[i];
		struct cp_store_rmw *op = sl->op;
		if (op) {
			op->slot = NULL;
			if (sl->retry && ++op->tries < RMW_TRIES) {
				q_push(&again[op->urgent], op);
			} else {
				fin[nfin] = op;
				rcs[nfin++] = sl->rc;
			}
		}
		rmw_slot_clear(sl);
	}
	p->nbatch = p->nexpect = p->next_expect = 0;
	p->phase = RMW_IDLE;
	for (int u = 0; u < 2; u++) {
		if (!again[u].head)
			continue;
		/* before everything that was submitted after them */
		again[u].tail->next = p->wq[u].head;
		if (!p->wq[u].tail)
			p->wq[u].tail = again[u].tail;
		p->wq[u].head = again[u].head;
	}
	for (int i = 0; i < nfin; i++)
		rmw_finish(fin[i], rcs[i]);
	rmw_start(p);
}

static void on_write_io(struct km_loop *loop, int fd, unsigned events, void *ctx)
{
	struct pgc *c = ctx;
	struct pg_store *p = c->p;
	if ((events & KM_EV_WRITE) && !rmw_flush(p))
		return;
	if (!PQconsumeInput(c->c) || PQstatus(c->c) != CONNECTION_OK) {
		lost(c);
		return;
	}
	while (p->next_expect < p->nexpect) {
		if (PQisBusy(c->c))
			return;
		PGresult *r = PQgetResult(c->c);
		int slot = p->expect[p->next_expect].slot;
		if (slot < 0) {
			bool sync = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
			PQclear(r);
			if (!sync) {
				km_error("store", "postgres pipeline out of step: a sync point was expected");
				lost(c);
				return;
			}
			p->next_expect++;
			continue;
		}
		if (!r) {
			p->next_expect++; /* that statement's results are over */
			continue;
		}
		rmw_result(p, &p->batch[slot], r);
		PQclear(r);
	}
	if (p->phase == RMW_READING)
		rmw_write(p);
	if (p->phase == RMW_WRITING && p->next_expect == p->nexpect)
		rmw_end(p);
}

static void pg_rmw(struct cp_store *s, struct cp_store_rmw *op)
{
	struct pg_store *p = (struct pg_store *)s;
	if (!p->w.ok && !p->w.connecting) {
		op->done(op, -KM_E_UNAVAILABLE);
		return;
	}
	op->slot = NULL;
	q_push(&p->wq[op->urgent], op);
	rmw_start(p);
}

static void pg_rmw_cancel(struct cp_store *s, struct cp_store_rmw *op)
{
	struct pg_store *p = (struct pg_store *)s;
	if (op->slot) {
		((struct rmw_slot *)op->slot)->op = NULL;
		op->slot = NULL;
		return;
	}
	struct rmw_queue *q = &p->wq[op->urgent];
	struct cp_store_rmw *prev = NULL;
	for (struct cp_store_rmw *o = q->head; o; prev = o, o = o->next) {
		if (o != op)
			continue;
		if (prev)
			prev->next = o->next;
		else
			q->head = o->next;
		if (q->tail == o)
			q->tail = prev;
		o->next = NULL;
		return;
	}
}

static void pg_rmw_drain(struct cp_store *s, int timeout_ms)
{
	struct pg_store *p = (struct pg_store *)s;
	uint64_t deadline = km_loop_now_ms() + (uint64_t)timeout_ms;
	while ((rmw_waiting(p) || p->phase != RMW_IDLE) && p->w.ok && km_loop_now_ms() < deadline) {
		struct pollfd pfd = {.fd = p->w.fd, .events = POLLIN};
		if (p->watching & KM_EV_WRITE)
			pfd.events |= POLLOUT;
		if (poll(&pfd, 1, 100) > 0)
			on_write_io(p->loop, p->w.fd, (pfd.revents & POLLOUT ? KM_EV_WRITE : 0) | KM_EV_READ, &p->w);
	}
}

static void pg_relaxed(struct cp_store *s, bool on)
{
	((struct pg_store *)s)->want_relaxed = on;
}

static bool pg_healthy(struct cp_store *s)
{
	struct pg_store *p = (struct pg_store *)s;
	/* the listener sees a dead server at once (its socket closes) */
	return p->q.ok && p->l.ok;
}

static void pgc_fini(struct pg_store *p, struct pgc *c)
{
	km_loop_timer_stop(p->loop, &c->timer);
	if (c->fd >= 0)
		km_loop_unwatch(p->loop, c->fd);
	if (c->c)
		PQfinish(c->c);
	c->c = NULL;
}

static void pg_free(struct cp_store *s)
{
	struct pg_store *p = (struct pg_store *)s;
	pgc_fini(p, &p->q);
	pgc_fini(p, &p->l);
	pgc_fini(p, &p->k);
	pgc_fini(p, &p->w);
	/* operations still pending are dropped: their owners went first */
	for (int i = 0; i < p->nbatch; i++)
		km_arena_free(p->batch[i].a);
	km_loop_timer_stop(p->loop, &p->leader_timer);
	free(p);
}

static const struct cp_store_ops pg_ops = {
    .create = pg_create,
    .update = pg_update,
    .remove = pg_remove,
    .get = pg_get,
    .get_many = pg_get_many,
    .count_types = pg_count_types,
    .list = pg_list,
    .count = pg_count,
    .healthy = pg_healthy,
    .relaxed = pg_relaxed,
    .elect = pg_elect,
    .rmw = pg_rmw,
    .rmw_cancel = pg_rmw_cancel,
    .rmw_drain = pg_rmw_drain,
    .free = pg_free,
};

/* ---- schema ---- */

static int64_t schema_version(PGconn *c, bool *dirty, struct km_buf *err)
{
	PGresult *r = PQexec(c, "SELECT version, dirty FROM schema_migrations LIMIT 1");
	int64_t v = 0;
	*dirty = false;
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		if (PQntuples(r)) {
			v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
			*dirty = PQgetvalue(r, 0, 1)[0] == 't';
		}
	} else {
		const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (!st || strcmp(st, "42P01") != 0) { /* undefined_table = never migrated */
			km_buf_printf(err, "cannot read schema version: %s", PQresultErrorMessage(r));
			v = -1;
		}
	}
	PQclear(r);
	return v;
}

static PGconn *connect_blocking(struct pg_store *p, struct km_buf *err)
{
	PGconn *c = PQconnectdbParams(p->keys, p->vals, 0);
	if (PQstatus(c) != CONNECTION_OK) {
		km_buf_printf(err, "could not connect to postgres at %s:%s: %s", p->cfg->store.postgres.host,
			      p->port, PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

int cp_store_postgres_migrate(const struct cp_config *cfg, struct km_buf *err)
{
	struct pg_store tmp = {0};
	tmp.cfg = cfg;
	conninfo(&tmp, cfg);
	PGconn *c = connect_blocking(&tmp, err);
	if (!c)
		return -KM_E_UNAVAILABLE;
	int rc = 0;
	/* one migrator at a time across instances */
	PQclear(PQexec(c, "SELECT pg_advisory_lock(1617986203)"));
	PQclear(PQexec(c, "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY,"
			  " dirty boolean NOT NULL)"));
	bool dirty;
	int64_t cur = schema_version(c, &dirty, err);
	if (cur < 0 || dirty) {
		if (dirty)
			km_buf_printf(err, "database schema_migrations row is dirty at version %lld; fix it manually",
				      (long long)cur);
		rc = -EINVAL;
	}
	int64_t newest = cp_pg_migrations[cp_pg_migrations_len - 1].version;
	if (rc == 0 && cur > newest && !cfg->store.postgres.tolerate_newer_db_versions) {
		km_buf_printf(err, "DB is migrated to newer version than Kuma. DB migration version %lld. Kuma migration version %lld. Run newer version of Kuma",
			      (long long)cur, (long long)newest);
		rc = -EINVAL;
	}
	for (size_t i = 0; rc == 0 && i < cp_pg_migrations_len; i++) {
		const struct cp_pg_migration *m = &cp_pg_migrations[i];
		if (m->version <= cur)
			continue;
		char upd[160];
		snprintf(upd, sizeof(upd), "DELETE FROM schema_migrations; INSERT INTO schema_migrations VALUES (%lld, false)",
			 (long long)m->version);
		PGresult *r = PQexec(c, "BEGIN");
		PQclear(r);
		r = PQexec(c, m->sql);
		bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
		if (!ok)
			km_buf_printf(err, "migration %lld failed: %s", (long long)m->version, PQresultErrorMessage(r));
		PQclear(r);
		if (ok) {
			r = PQexec(c, upd);
			ok = PQresultStatus(r) == PGRES_COMMAND_OK;
			PQclear(r);
		}
		r = PQexec(c, ok ? "COMMIT" : "ROLLBACK");
		PQclear(r);
		if (!ok)
			rc = -EIO;
		else
			km_info("store", "migration applied version=%lld", (long long)m->version);
	}
	PQclear(PQexec(c, "SELECT pg_advisory_unlock(1617986203)"));
	PQfinish(c);
	return rc;
}

struct cp_store *cp_store_postgres_new(const struct cp_config *cfg, struct km_loop *loop,
				       struct km_buf *err)
{
	struct pg_store *p = km_calloc(1, sizeof(*p));
	p->base.ops = &pg_ops;
	p->cfg = cfg;
	p->loop = loop;
	conninfo(p, cfg);
	p->q = (struct pgc){.p = p, .fd = -1};
	p->l = (struct pgc){.p = p, .fd = -1, .listener = true};
	p->k = (struct pgc){.p = p, .fd = -1, .locker = true};
	p->w = (struct pgc){.p = p, .fd = -1, .writer = true};
	char host[64] = "kuma-cp";
	gethostname(host, sizeof(host) - 1);
	snprintf(p->instance, sizeof(p->instance), "%s-%d", host, (int)getpid());
	p->q.c = connect_blocking(p, err);
	if (!p->q.c) {
		free(p);
		return NULL;
	}
	bool dirty;
	int64_t v = schema_version(p->q.c, &dirty, err);
	int64_t newest = cp_pg_migrations[cp_pg_migrations_len - 1].version;
	if (v >= 0 && (v < newest || dirty)) {
		km_buf_puts(err, "database is not migrated. Run \"kuma-cp migrate up\" to update database to the newest schema");
		v = -1;
	} else if (v > newest && !cfg->store.postgres.tolerate_newer_db_versions) {
		km_buf_printf(err, "DB is migrated to newer version than Kuma. DB migration version %lld. Kuma migration version %lld. Run newer version of Kuma",
			      (long long)v, (long long)newest);
		v = -1;
	}
	if (v < 0) {
		PQfinish(p->q.c);
		free(p);
		return NULL;
	}
	connected(&p->q);
	/* the listener connects in the background; the first RESYNC tells subscribers */
	p->l.c = connect_blocking(p, err);
	if (p->l.c)
		connected(&p->l);
	else
		start_connect(&p->l);
	start_connect(&p->w);
	return &p->base;
}
