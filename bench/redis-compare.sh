#!/usr/bin/env bash
# raftkv (3 nodes, fsync on) beside one redis-server with appendfsync always,
# on this machine, in the same run, with the same redis-benchmark workloads.
# Two raftkv clusters run side by side: one with the default ReadIndex reads
# and one with `--lease-read`; each round measures Redis, then both.
#
#   bench/redis-compare.sh [REQUESTS]      (default 200000)
#   ROUNDS=3                               rounds, interleaved (default 1)
#
# Installs redis-tools and redis-server from Debian's packages if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200000}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/raftkv-bench.XXXXXX")"
RKV_BASE=26381
LEASE_BASE=28381
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
target/release/raftkv cluster up --dir "$WORK/raftkv-lease" --base-port "$LEASE_BASE" --lease-read \
    >"$WORK/cluster-lease.log" 2>&1 &
PIDS+=($!)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" --appendonly yes --appendfsync always \
    --save "" --daemonize no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)

leader_of() { # base port -> the leader's client port, waits up to 10 s
    for _ in $(seq 1 100); do
        for port in "$1" $(($1 + 1)) $(($1 + 2)); do
            if redis-cli -p "$port" info raft 2>/dev/null | grep -q "raft_role:leader"; then echo "$port"; return 0; fi
        done
        sleep 0.1
    done
    return 1
}
leader="$(leader_of "$RKV_BASE")" || { echo "no raftkv leader"; exit 1; }
lease_leader="$(leader_of "$LEASE_BASE")" || { echo "no raftkv leader (--lease-read)"; exit 1; }
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

run() { # port pipeline -> "set_rps get_rps"
    redis-benchmark -p "$1" -t set,get -n "$N" -c 50 -d 256 -P "$2" -q 2>/dev/null \
        | tr '\r' '\n' | awk '/^SET: [0-9]/ {s=$2} /^GET: [0-9]/ {g=$2} END {print s, g}'
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "redis-benchmark -t set,get -n $N -c 50 -d 256 [-P 16]; raftkv leaders :$leader (ReadIndex) and :$lease_leader (--lease-read), 3 nodes each, WAL fsync; redis $(redis-server --version | awk '{print $3}' | cut -d= -f2) appendfsync always"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
printf '%-5s %-8s %-3s %12s %12s %7s %12s %7s\n' round workload P redis readindex ratio lease ratio
for round in $(seq 1 "${ROUNDS:-1}"); do
    for p in 1 16; do
        read -r ds dg <<<"$(run "$REDIS_PORT" "$p")"
        read -r rs rg <<<"$(run "$leader" "$p")"
        read -r ls lg <<<"$(run "$lease_leader" "$p")"
        printf '%-5s %-8s %-3s %12s %12s %7s %12s %7s\n' "$round" SET "$p" "$ds" "$rs" "$(ratio "$rs" "$ds")" "$ls" "$(ratio "$ls" "$ds")"
        printf '%-5s %-8s %-3s %12s %12s %7s %12s %7s\n' "$round" GET "$p" "$dg" "$rg" "$(ratio "$rg" "$dg")" "$lg" "$(ratio "$lg" "$dg")"
    done
done
