#!/usr/bin/env bash
# kuma-cp benchmark, one command: builds the release binaries, starts kuma-cp
# (memory store) on free loopback ports, and measures idle RSS, the creation of
# BENCH_N Dataplanes, RSS after, PUT throughput and GET latency with wrk, paged
# listing (size=1000 and size=100), and `kumactl get dataplanes` with
# hyperfine. Writes bench/results/latest.md (and raw logs beside it). Every
# step fails loudly; kuma-cp is always stopped. See docs/performance.md.
#
#   bench/run.sh                     BENCH_N=10000 BENCH_DURATION=10 (seconds per wrk run)
set -euo pipefail
cd "$(dirname "$0")/.."

N=${BENCH_N:-10000}
DUR=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNECTIONS:-8}
OUT=bench/results
RAW=$OUT/raw
mkdir -p "$RAW"

say() { printf 'bench: %s\n' "$*"; }
die() {
	printf 'bench: FAILED: %s\n' "$*" >&2
	if [ -n "${CP_LOG:-}" ] && [ -f "$CP_LOG" ]; then
		printf 'bench: last lines of %s:\n' "$CP_LOG" >&2
		tail -n 30 "$CP_LOG" >&2
	fi
	exit 1
}
for tool in wrk hyperfine curl python3; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run scripts/install-deps.sh)"
done

say "building release binaries (build/)"
make --no-print-directory -j2 SAN=0 all >"$RAW/build.log" 2>&1 || { tail -n 30 "$RAW/build.log"; die "build failed"; }
CP_BIN=build/kuma-cp
CTL_BIN=build/kumactl

WORK=$(mktemp -d /tmp/kuma-bench.XXXXXX)
CP_LOG=$RAW/kuma-cp.log
CP_PID=
cleanup() {
	if [ -n "$CP_PID" ] && kill -0 "$CP_PID" 2>/dev/null; then
		kill -TERM "$CP_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$CP_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$CP_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

port() { python3 bench/load.py free-port; }
API=$(port); DIAG=$(port); DPS=$(port); ICP=$(port); MADS=$(port); KDS=$(port)
while [ "$DIAG" = "$API" ]; do DIAG=$(port); done

say "starting kuma-cp (api 127.0.0.1:$API, diagnostics :$DIAG)"
# A clean KUMA_* environment: only what the benchmark sets.
env $(env | sed -n 's/^\(KUMA_[A-Z0-9_]*\)=.*/-u \1/p') \
	KUMA_STORE_TYPE=memory KUMA_ENVIRONMENT=universal \
	KUMA_API_SERVER_HTTP_PORT="$API" KUMA_API_SERVER_HTTP_INTERFACE=127.0.0.1 \
	KUMA_API_SERVER_HTTPS_ENABLED=false KUMA_DIAGNOSTICS_SERVER_PORT="$DIAG" \
	KUMA_DP_SERVER_PORT="$DPS" KUMA_INTER_CP_SERVER_PORT="$ICP" \
	KUMA_MONITORING_ASSIGNMENT_SERVER_PORT="$MADS" KUMA_MULTIZONE_GLOBAL_KDS_GRPC_PORT="$KDS" \
	KUMA_GENERAL_WORK_DIR="$WORK" \
	"$CP_BIN" run >"$CP_LOG" 2>&1 &
CP_PID=$!

ready=0
for _ in $(seq 300); do
	kill -0 "$CP_PID" 2>/dev/null || die "kuma-cp exited during startup"
	if curl -fsS -o /dev/null "http://127.0.0.1:$DIAG/ready" 2>/dev/null; then ready=1; break; fi
	sleep 0.1
done
[ "$ready" = 1 ] || die "kuma-cp not ready after 30s"
curl -fsS -o /dev/null "http://127.0.0.1:$API/meshes/default" || die "mesh 'default' is missing"

rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$CP_PID/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

sleep 1
RSS_IDLE=$(rss_kib)
say "idle RSS: $(mib "$RSS_IDLE") MiB"

say "creating $N Dataplanes (PUT, one keep-alive connection)"
CREATE=$(python3 bench/load.py create "$API" "$N") || die "creating Dataplanes failed"
say "$CREATE"
RSS_LOADED=$(rss_kib)
say "RSS with $N Dataplanes: $(mib "$RSS_LOADED") MiB"

wrk_run() { # name, wrk args...
	local name=$1; shift
	wrk "$@" >"$RAW/wrk-$name.txt" 2>&1 || { cat "$RAW/wrk-$name.txt"; die "wrk $name failed"; }
	local line
	line=$(grep '^RESULT ' "$RAW/wrk-$name.txt" | sed 's/^RESULT //')
	[ -n "$line" ] || { cat "$RAW/wrk-$name.txt"; die "wrk $name printed no result"; }
	[ "$(kv "$line" errors)" = 0 ] || { cat "$RAW/wrk-$name.txt"; die "wrk $name: requests failed ($line)"; }
	printf '%s\n' "$line"
}

say "PUT throughput (update round robin, wrk -t1 -c$CONNS -d${DUR}s)"
PUT=$(BENCH_N=$N wrk_run put -t1 -c"$CONNS" -d"${DUR}s" --timeout 10s -s bench/put.lua "http://127.0.0.1:$API")
say "$PUT"

ONE="/meshes/default/dataplanes/dp-$((N / 2))"
say "GET latency on $ONE (wrk -t1 -c$CONNS -d${DUR}s)"
GET=$(wrk_run get -t1 -c"$CONNS" -d"${DUR}s" --timeout 10s -s bench/get.lua "http://127.0.0.1:$API$ONE")
say "$GET"
say "GET latency, one connection (wrk -t1 -c1 -d${DUR}s)"
GET1=$(wrk_run get1 -t1 -c1 -d"${DUR}s" --timeout 10s -s bench/get.lua "http://127.0.0.1:$API$ONE")
say "$GET1"
RSS_AFTER=$(rss_kib)

best_list() { # size: best of 3 runs
	local best="" line s
	for _ in 1 2 3; do
		line=$(python3 bench/load.py list "$API" "$1") || die "listing with size=$1 failed"
		[ "$(kv "$line" items)" = "$N" ] || die "listing with size=$1 returned $(kv "$line" items) items, want $N"
		s=$(kv "$line" seconds)
		if [ -z "$best" ] || awk -v a="$s" -v b="$(kv "$best" seconds)" 'BEGIN { exit !(a < b) }'; then
			best=$line
		fi
	done
	printf '%s\n' "$best"
}
say "paged list, size=1000"
LIST1000=$(best_list 1000); say "$LIST1000"
say "paged list, size=100"
LIST100=$(best_list 100); say "$LIST100"

say "kumactl get dataplanes ($N) with hyperfine"
CTL_CFG=$WORK/kumactl.yaml
"$CTL_BIN" --config-file "$CTL_CFG" config control-planes add --name bench \
	--address "http://127.0.0.1:$API" >"$RAW/kumactl-config.txt" 2>&1 ||
	{ cat "$RAW/kumactl-config.txt"; die "kumactl config control-planes add failed"; }
CTL_CMD="$CTL_BIN --config-file $CTL_CFG get dataplanes --mesh default"
CTL_CMD_1000="$CTL_CMD --size 1000"
$CTL_CMD >"$RAW/kumactl-get.txt" 2>&1 || { tail -n 20 "$RAW/kumactl-get.txt"; die "kumactl get dataplanes failed"; }
$CTL_CMD_1000 >"$RAW/kumactl-get-1000.txt" 2>&1 || { tail -n 20 "$RAW/kumactl-get-1000.txt"; die "kumactl get dataplanes --size 1000 failed"; }
CTL_LINES=$(wc -l <"$RAW/kumactl-get.txt")
CTL_LINES_1000=$(wc -l <"$RAW/kumactl-get-1000.txt")
hyperfine --warmup 1 --runs 10 --export-json "$RAW/hyperfine.json" --output=null "$CTL_CMD" "$CTL_CMD_1000" \
	>"$RAW/hyperfine.txt" 2>&1 || { cat "$RAW/hyperfine.txt"; die "hyperfine failed"; }
ctl_stats() {
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]; print("mean_ms=%.1f stddev_ms=%.1f min_ms=%.1f max_ms=%.1f" % (r["mean"]*1e3, r["stddev"]*1e3, r["min"]*1e3, r["max"]*1e3))' "$RAW/hyperfine.json" "$1"
}
CTL_STATS=$(ctl_stats 0)
CTL_STATS_1000=$(ctl_stats 1)
say "default page: $CTL_STATS (output: $CTL_LINES lines)"
say "--size 1000: $CTL_STATS_1000 (output: $CTL_LINES_1000 lines)"

kill -0 "$CP_PID" 2>/dev/null || die "kuma-cp died during the benchmark"

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
{
	echo "# kuma-cp benchmark results"
	echo
	echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit: $commit (working tree may differ)"
	echo "- machine: $(nproc) CPUs ($cpu), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
	echo "- kuma-cp: build/kuma-cp (-O2, no sanitizers), memory store, wrk -t1 -c$CONNS -d${DUR}s on the same machine"
	echo
	echo "| Metric | Value |"
	echo "|---|---|"
	echo "| RSS idle | $(mib "$RSS_IDLE") MiB |"
	echo "| RSS with $N Dataplanes | $(mib "$RSS_LOADED") MiB |"
	echo "| RSS after the wrk runs | $(mib "$RSS_AFTER") MiB |"
	echo "| Create $N Dataplanes (PUT, 1 connection, sequential) | $(kv "$CREATE" seconds) s ($(kv "$CREATE" per_second)/s) |"
	echo "| PUT update throughput ($CONNS connections) | $(kv "$PUT" rps) req/s (p50 $(ms "$(kv "$PUT" p50_us)") ms, p99 $(ms "$(kv "$PUT" p99_us)") ms) |"
	echo "| GET one Dataplane ($CONNS connections) | $(kv "$GET" rps) req/s, p50 $(ms "$(kv "$GET" p50_us)") ms, p99 $(ms "$(kv "$GET" p99_us)") ms |"
	echo "| GET one Dataplane (1 connection) | $(kv "$GET1" rps) req/s, p50 $(ms "$(kv "$GET1" p50_us)") ms, p99 $(ms "$(kv "$GET1" p99_us)") ms |"
	echo "| List $N, size=1000 ($(kv "$LIST1000" pages) pages) | $(kv "$LIST1000" seconds) s |"
	echo "| List $N, size=100 ($(kv "$LIST100" pages) pages) | $(kv "$LIST100" seconds) s |"
	echo "| \`kumactl get dataplanes\` at $N (first page, $CTL_LINES lines) | $(kv "$CTL_STATS" mean_ms) ms ± $(kv "$CTL_STATS" stddev_ms) (min $(kv "$CTL_STATS" min_ms), max $(kv "$CTL_STATS" max_ms)) |"
	echo "| \`kumactl get dataplanes --size 1000\` at $N ($CTL_LINES_1000 lines) | $(kv "$CTL_STATS_1000" mean_ms) ms ± $(kv "$CTL_STATS_1000" stddev_ms) (min $(kv "$CTL_STATS_1000" min_ms), max $(kv "$CTL_STATS_1000" max_ms)) |"
	echo
	echo "Raw outputs: bench/results/raw/ (not committed)."
} >"$OUT/latest.md"
say "wrote $OUT/latest.md"
cat "$OUT/latest.md"
