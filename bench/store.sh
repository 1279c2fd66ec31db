#!/usr/bin/env bash
# Store benchmark: memory vs PostgreSQL 15 (a throwaway server started here as
# the postgres user), 10,000 Dataplanes: insert, update, page-by-page list, and
# for PostgreSQL the write-to-event propagation between two store handles.
# Usage: bench/store.sh [N]   (writes bench/results/store-latest.md)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
make -s build/bench/store_bench
PGBIN=/usr/lib/postgresql/15/bin
dir=$(mktemp -d /tmp/kuma-bench-pg.XXXXXX)
chmod 777 "$dir"
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_pg "$PGBIN/initdb" -D "$dir/data" -A trust -U kuma --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$dir/data" -w -l "$dir/log" -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
trap 'as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
psql -h 127.0.0.1 -p "$port" -U kuma -d postgres -qc "CREATE DATABASE kuma" >/dev/null
out=bench/results/store-latest.md
mkdir -p bench/results
{
	echo "# Store benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
	echo
	echo "Command: \`bench/store.sh $N\`"
	echo
	echo "| backend | N | insert | update | list all | propagation to a 2nd instance p50 / p99 |"
	echo "|---|---|---|---|---|---|"
	build/bench/store_bench memory "$N" 2>/dev/null
	KUMA_STORE_POSTGRES_HOST=127.0.0.1 KUMA_STORE_POSTGRES_PORT=$port KUMA_STORE_POSTGRES_PASSWORD=kuma \
		build/bench/store_bench postgres "$N" 2>/dev/null
} | tee "$out"
