#!/usr/bin/env bash
# raftkv (3 nodes, fsync on) beside one redis-server with appendfsync always,
# on this machine, in the same run, with the same redis-benchmark workloads.
#
#   bench/redis-compare.sh [REQUESTS]      (default 200000)
#
# Installs redis-tools and redis-server from Debian's packages if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200000}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/raftkv-bench.XXXXXX")"
RKV_BASE=26381
REDIS_PORT=26400
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

scripts/setup
if ! command -v redis-server >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get install -y -qq redis-server >/dev/null
fi
cargo build --release -q -p server --bin raftkv

target/release/raftkv cluster up --dir "$WORK/raftkv" --base-port "$RKV_BASE" >"$WORK/cluster.log" 2>&1 &
PIDS+=($!)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" --appendonly yes --appendfsync always \
    --save "" --daemonize no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)

leader=""
for _ in $(seq 1 100); do
    for port in $RKV_BASE $((RKV_BASE + 1)) $((RKV_BASE + 2)); do
        if redis-cli -p "$port" info raft 2>/dev/null | grep -q "raft_role:leader"; then leader=$port; fi
    done
    [ -n "$leader" ] && redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done
[ -n "$leader" ] || { echo "no raftkv leader"; exit 1; }

run() { # port pipeline -> "set_rps get_rps"
    redis-benchmark -p "$1" -t set,get -n "$N" -c 50 -d 256 -P "$2" -q 2>/dev/null \
        | tr '\r' '\n' | awk '/^SET: [0-9]/ {s=$2} /^GET: [0-9]/ {g=$2} END {print s, g}'
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "redis-benchmark -t set,get -n $N -c 50 -d 256 [-P 16]; raftkv leader :$leader (3 nodes, WAL fsync), redis $(redis-server --version | awk '{print $3}' | cut -d= -f2) appendfsync always"
printf '%-10s %-4s %14s %14s %8s\n' workload P raftkv redis ratio
for p in 1 16; do
    read -r rs rg <<<"$(run "$leader" "$p")"
    read -r ds dg <<<"$(run "$REDIS_PORT" "$p")"
    printf '%-10s %-4s %14s %14s %8s\n' SET "$p" "$rs" "$ds" "$(awk -v a="$rs" -v b="$ds" 'BEGIN {printf "%.2f", a / b}')"
    printf '%-10s %-4s %14s %14s %8s\n' GET "$p" "$rg" "$dg" "$(awk -v a="$rg" -v b="$dg" 'BEGIN {printf "%.2f", a / b}')"
done
