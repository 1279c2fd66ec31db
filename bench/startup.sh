#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Start-to-ready of kuma-cp on a fresh memory store: N starts (default 8),
# each until GET /ready on the diagnostics port answers 200, then stopped.
# Prints every time and the median, in milliseconds.
#   bench/startup.sh [N] [path/to/kuma-cp]      (default build/kuma-cp)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-8}
CP=${2:-build/kuma-cp}
[ -x "$CP" ] || make -s -j2 "$CP"
port() { python3 bench/load.py free-port; }
times=()
for _ in $(seq "$N"); do
	work=$(mktemp -d)
	diag=$(port) api=$(port) https=$(port) dps=$(port) icp=$(port)
	clean=$(env | sed -n 's/^\(KUMA_[A-Z0-9_]*\)=.*/-u \1/p')
	t0=$(date +%s%N)
	env $clean KUMA_GENERAL_WORK_DIR="$work" KUMA_API_SERVER_HTTP_PORT="$api" \
		KUMA_API_SERVER_HTTPS_PORT="$https" KUMA_DP_SERVER_PORT="$dps" \
		KUMA_DIAGNOSTICS_SERVER_PORT="$diag" KUMA_INTER_CP_SERVER_PORT="$icp" \
		"$CP" run >"$work/log" 2>&1 &
	pid=$!
	ok=0
	for _ in $(seq 4000); do
		if curl -fs -o /dev/null "http://127.0.0.1:$diag/ready"; then ok=1; break; fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.002
	done
	t1=$(date +%s%N)
	kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
	[ "$ok" = 1 ] || { cat "$work/log" >&2; rm -rf "$work"; echo "kuma-cp did not get ready" >&2; exit 1; }
	rm -rf "$work"
	times+=($(( (t1 - t0) / 1000000 )))
done
echo "start to ready (ms): ${times[*]}"
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print "median (ms): " a[int((NR+1)/2)]}'
