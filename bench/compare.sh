#!/usr/bin/env bash
# raftkv beside etcd and Redis on this machine, in one run, with one load
# generator, all durable (fsync on) with their data on the same disk:
#   - a 3-member etcd cluster, a 3-node raftkv cluster (release build) and one
#     redis-server with appendonly yes + appendfsync always, all on loopback;
#   - the raw fdatasync rate of that disk;
#   - SET with 1, 16, 64 and 256 clients, GET with 64, 50/50 with 64 (256-byte
#     values, keys drawn uniformly) on each system: `raftkv bench` for raftkv
#     and Redis, `etcd-load` (the same generator over etcd's v3 gRPC API);
#   - last, GET with 64 on raftkv restarted with `--lease-read`, and on Redis
#     again beside it;
#   - JSON results, SVG plots (docs/bench/) and the generated part of
#     docs/BENCHMARKS.md's comparison section (bench-report).
#
#   bench/compare.sh                 default run (~2 min after the build)
#   DURATION=5 KEYS=10000            seconds per workload, key space
#   FAILOVER=1                       + 20 trials: SIGKILL the leader -> first acknowledged write (before KEYS_1M)
#   KEYS_1M=1                        + RSS of each system before/after writing 1M keys
#   PROFILE=1                        + `perf record` of the raftkv leader during GETs and SETs (64 clients)
#   SCALE=1                          + bench/scale.sh afterwards (1M/10M keys, restart with a 1 GiB log or snapshot, catch-up)
#   RESULTS=DIR                      keep the JSON results there (default: a temp dir, removed)
#   LEASE=0                          skip the lease-read GETs at the end
#   NO_DOCS=1                        do not touch docs/ (results and plots stay in RESULTS)
#   RENDER_ONLY=1 RESULTS=DIR        only regenerate docs/ from the results of an earlier run
#
# Every process it starts is stopped on every exit path (trap); every step is
# bounded by `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-5}"
KEYS="${KEYS:-10000}"
WORK="$(mktemp -d "${BENCH_DIR:-/var/tmp}/raftkv-compare.XXXXXX")"
RESULTS="${RESULTS:-$WORK/results}"
TARGET="${CARGO_TARGET_DIR:-target}"
RKV="$TARGET/release/raftkv"
ETCD_LOAD="$TARGET/release/etcd-load"
REPORT="$TARGET/release/bench-report"
RKV_CLIENT=(26381 26382 26383)
RKV_PEER=(27381 27382 27383)
ETCD_CLIENT=(23791 23792 23793)
ETCD_PEER=(23801 23802 23803)
REDIS_PORT=26400
RKV_FLAGS=()
declare -A PID=()

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

cleanup() {
    local code=$?
    for name in "${!PID[@]}"; do kill -TERM "${PID[$name]}" 2>/dev/null || true; done
    sleep 0.5
    for name in "${!PID[@]}"; do kill -KILL "${PID[$name]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # The default RESULTS lives in WORK and goes with it; RESULTS=DIR elsewhere is kept.
    rm -rf "$WORK"
    exit "$code"
}
trap cleanup EXIT INT TERM

render() { # docs/BENCHMARKS.md's generated part and docs/bench/*.svg, from $RESULTS
    if [ "${NO_DOCS:-0}" = 1 ]; then
        "$REPORT" --results "$RESULTS" --svg-dir "$RESULTS/svg" --markdown "$RESULTS/section.md"
        log "results in $RESULTS"
        return 0
    fi
    "$REPORT" --results "$RESULTS" --svg-dir docs/bench --markdown "$WORK/section.md"
    python3 - docs/BENCHMARKS.md "$WORK/section.md" <<'PY'
import sys
doc_path, section_path = sys.argv[1], sys.argv[2]
doc = open(doc_path).read()
begin, end = "<!-- compare.sh:begin -->", "<!-- compare.sh:end -->"
section = open(section_path).read()
if begin in doc and end in doc:
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc = head + begin + "\n" + section + end + tail
else:
    doc += "\n" + begin + "\n" + section + end + "\n"
open(doc_path, "w").write(doc)
PY
    log "docs/BENCHMARKS.md and docs/bench/*.svg updated; results in $RESULTS"
}

if [ "${RENDER_ONLY:-0}" = 1 ]; then
    [ "$RESULTS" != "$WORK/results" ] || { log "RENDER_ONLY needs RESULTS=DIR"; exit 1; }
    timeout 1200 cargo build --release -q -p bench-report
    render
    exit 0
fi


bench/setup
scripts/setup
log "building (release): raftkv, etcd-load, bench-report"
timeout 1200 cargo build --release -q -p server -p loadgen-etcd -p bench-report
mkdir -p "$RESULTS/runs" "$WORK/raftkv" "$WORK/etcd" "$WORK/redis"

fsync_rate() { # fdatasync calls per second: 4 KiB writes with O_DSYNC, bounded
    local out secs
    out="$(timeout 120 dd if=/dev/zero of="$WORK/fsync.test" bs=4k count=1000 oflag=dsync 2>&1 | tail -1)"
    secs="$(echo "$out" | sed -E 's/.* copied, ([0-9.]+) s.*/\1/')"
    python3 -c "print(round(1000 / max(float('$secs'), 1e-9), 1))"
}

start_raftkv_node() { # index (0-based)
    local i=$1 id=$(($1 + 1)) cluster=""
    for j in 0 1 2; do cluster+="${cluster:+,}$((j + 1))=127.0.0.1:${RKV_PEER[$j]}"; done
    RUST_LOG=warn "$RKV" server --id "$id" --data-dir "$WORK/raftkv/node$id" \
        --client-addr "127.0.0.1:${RKV_CLIENT[$i]}" --peer-addr "127.0.0.1:${RKV_PEER[$i]}" \
        --initial-cluster "$cluster" "${RKV_FLAGS[@]}" >>"$WORK/raftkv/node$id.log" 2>&1 &
    PID[raftkv$i]=$!
}

start_etcd() {
    local cluster=""
    for j in 0 1 2; do cluster+="${cluster:+,}e$j=http://127.0.0.1:${ETCD_PEER[$j]}"; done
    for i in 0 1 2; do
        etcd --name "e$i" --data-dir "$WORK/etcd/e$i" \
            --listen-client-urls "http://127.0.0.1:${ETCD_CLIENT[$i]}" \
            --advertise-client-urls "http://127.0.0.1:${ETCD_CLIENT[$i]}" \
            --listen-peer-urls "http://127.0.0.1:${ETCD_PEER[$i]}" \
            --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER[$i]}" \
            --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token raftkv-bench \
            --logger zap --log-level warn >"$WORK/etcd/e$i.log" 2>&1 &
        PID[etcd$i]=$!
    done
}

raftkv_leader() { # prints the leader's index, waits up to 20 s
    for _ in $(seq 1 200); do
        for i in 0 1 2; do
            if timeout 2 redis-cli -p "${RKV_CLIENT[$i]}" info raft 2>/dev/null | grep -q "raft_role:leader"; then
                echo "$i"; return 0
            fi
        done
        sleep 0.1
    done
    return 1
}

etcd_leader() { # prints the leader's client port, waits up to 20 s
    local eps="127.0.0.1:${ETCD_CLIENT[0]},127.0.0.1:${ETCD_CLIENT[1]},127.0.0.1:${ETCD_CLIENT[2]}"
    for _ in $(seq 1 100); do
        local status
        status="$(ETCDCTL_API=3 timeout 5 etcdctl --endpoints="$eps" endpoint status -w json 2>/dev/null || true)"
        local leader
        leader="$(python3 -c '
import json, sys
try:
    for s in json.loads(sys.argv[1]):
        if s["Status"]["header"]["member_id"] == s["Status"]["leader"]:
            print(s["Endpoint"].rsplit(":", 1)[1]); break
except Exception:
    pass' "$status")"
        if [ -n "$leader" ]; then echo "$leader"; return 0; fi
        sleep 0.2
    done
    return 1
}

caught_up() { # index: waits up to 30 s until its applied index reaches the leader's commit index
    local i=$1 leader commit applied
    for _ in $(seq 1 300); do
        leader="$(raftkv_leader)" || return 1
        commit="$(timeout 2 redis-cli -p "${RKV_CLIENT[$leader]}" info raft 2>/dev/null | tr -d '\r' | awk -F: '/^raft_commit_index/ {print $2}')"
        applied="$(timeout 2 redis-cli -p "${RKV_CLIENT[$i]}" info raft 2>/dev/null | tr -d '\r' | awk -F: '/^raft_applied_index/ {print $2}')"
        if [ -n "$commit" ] && [ -n "$applied" ] && [ "$applied" -ge "$commit" ]; then return 0; fi
        sleep 0.1
    done
    return 1
}

rss() { awk '/^VmRSS/ {print $2 * 1024}' "/proc/$1/status"; }

log "disk: measuring the raw fdatasync rate in $WORK"
FSYNC="$(fsync_rate)"
log "fdatasync: $FSYNC per second"

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
log "starting etcd (3 members), raftkv (3 nodes), redis-server (appendfsync always)"
start_etcd
for i in 0 1 2; do start_raftkv_node "$i"; done
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --appendonly yes --appendfsync always \
    --save "" --daemonize no >"$WORK/redis/redis.log" 2>&1 &
PID[redis]=$!

RKV_LEADER="$(raftkv_leader)" || { log "no raftkv leader"; exit 1; }
ETCD_PORT="$(etcd_leader)" || { log "no etcd leader"; tail -5 "$WORK"/etcd/e0.log >&2; exit 1; }
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
log "raftkv leader :${RKV_CLIENT[$RKV_LEADER]}, etcd leader :$ETCD_PORT, redis :$REDIS_PORT"

run_one() { # system workload clients read_percent keys [extra...]
    local system=$1 workload=$2 clients=$3 reads=$4 keys=$5
    shift 5
    local args=(-c "$clients" --keys "$keys" -d 256 --read-percent "$reads" --duration "$DURATION" -q
        --json "$RESULTS/runs/${system}__${workload}.json" "$@")
    local cmd
    case $system in
        raftkv) cmd=("$RKV" bench --addr "127.0.0.1:${RKV_CLIENT[$RKV_LEADER]}" "${args[@]}") ;;
        redis) cmd=("$RKV" bench --addr "127.0.0.1:$REDIS_PORT" "${args[@]}") ;;
        etcd) cmd=("$ETCD_LOAD" --endpoints "127.0.0.1:$ETCD_PORT" "${args[@]}") ;;
    esac
    log "$system $workload"
    # A failed run is reported and left out of the tables; the others go on.
    if ! RUST_LOG=warn timeout $((DURATION + 120)) "${cmd[@]}" >"$WORK/last.txt" 2>&1; then
        log "FAILED: $system $workload: $(tail -2 "$WORK/last.txt")"
        rm -f "$RESULTS/runs/${system}__${workload}.json"
    else
        sed -n '2p' "$WORK/last.txt" >&2
    fi
}

SYSTEMS=(raftkv etcd redis)
for c in 1 16 64 256; do
    for s in "${SYSTEMS[@]}"; do run_one "$s" "set-c$c" "$c" 0 "$KEYS"; done
done
for s in "${SYSTEMS[@]}"; do run_one "$s" get-c64 64 100 "$KEYS" --prefill; done
for s in "${SYSTEMS[@]}"; do run_one "$s" mix-c64 64 50 "$KEYS"; done

if [ "${FAILOVER:-0}" = 1 ]; then
    log "failover: 20 trials of SIGKILL to the raftkv leader"
    trials=()
    for t in $(seq 1 20); do
        victim="$(raftkv_leader)" || { log "no leader before trial $t"; break; }
        kill -KILL "${PID[raftkv$victim]}"
        wait "${PID[raftkv$victim]}" 2>/dev/null || true
        t0="$(date +%s%N)"
        ok=""
        deadline=$(( $(date +%s) + 30 ))
        while [ -z "$ok" ] && [ "$(date +%s)" -lt "$deadline" ]; do
            for i in 0 1 2; do
                [ "$i" = "$victim" ] && continue
                # A survivor that is the new leader answers OK; a follower
                # answers MOVED (possibly to the dead leader) or CLUSTERDOWN.
                if [ "$(timeout 1 redis-cli -p "${RKV_CLIENT[$i]}" SET failover "$t" 2>/dev/null)" = OK ]; then
                    ok=1; break
                fi
            done
        done
        t1="$(date +%s%N)"
        [ -n "$ok" ] && trials+=("$(( (t1 - t0) / 1000000 ))")
        start_raftkv_node "$victim"
        # The next trial starts only when the restarted node has caught up:
        # otherwise the new leader's first commit waits for it to catch up.
        caught_up "$victim" || log "node $((victim + 1)) did not catch up within 30 s"
    done
    log "failover ms: ${trials[*]}"
    echo "{\"trials_ms\": [$(IFS=,; echo "${trials[*]}")]}" >"$RESULTS/failover.json"
fi

if [ "${KEYS_1M:-0}" = 1 ]; then
    log "memory: 1M keys of 256 B into each system"
    declare -A RSS_BEFORE RSS_AFTER
    leader_pid="${PID[raftkv$RKV_LEADER]}"
    etcd_pid="${PID[etcd$(( ETCD_PORT - ETCD_CLIENT[0] ))]}"
    RSS_BEFORE[raftkv]="$(rss "$leader_pid")"; RSS_BEFORE[redis]="$(rss "${PID[redis]}")"; RSS_BEFORE[etcd]="$(rss "$etcd_pid")"
    load=(--keys 1000000 -d 256 -c 64 -P 32 --prefill -n 1 -q)
    timeout 600 "$RKV" bench --addr "127.0.0.1:${RKV_CLIENT[$RKV_LEADER]}" "${load[@]}" >/dev/null
    timeout 600 "$RKV" bench --addr "127.0.0.1:$REDIS_PORT" "${load[@]}" >/dev/null
    timeout 600 "$ETCD_LOAD" --endpoints "127.0.0.1:$ETCD_PORT" "${load[@]}" >/dev/null
    RSS_AFTER[raftkv]="$(rss "$leader_pid")"; RSS_AFTER[redis]="$(rss "${PID[redis]}")"; RSS_AFTER[etcd]="$(rss "$etcd_pid")"
    for s in raftkv redis etcd; do run_one "$s" get-c64-1m 64 100 1000000; done
    cat >"$RESULTS/memory.json" <<JSON
{"keys": 1000000, "value_size": 256, "rss": {"raftkv": [${RSS_BEFORE[raftkv]}, ${RSS_AFTER[raftkv]}], "redis": [${RSS_BEFORE[redis]}, ${RSS_AFTER[redis]}], "etcd": [${RSS_BEFORE[etcd]}, ${RSS_AFTER[etcd]}]}}
JSON
fi


if [ "${PROFILE:-0}" = 1 ] && command -v perf >/dev/null 2>&1; then
    leader_pid="${PID[raftkv$RKV_LEADER]}"
    for w in get:100 set:0; do
        name="${w%%:*}"
        log "profile: perf record of the raftkv leader during $name, 64 clients"
        timeout $((DURATION + 30)) perf record -q -F 499 -g -p "$leader_pid" -o "$WORK/perf-$name.data" \
            -- sleep "$DURATION" >/dev/null 2>&1 &
        perf_pid=$!
        PID[perf]=$perf_pid
        timeout $((DURATION + 60)) "$RKV" bench --addr "127.0.0.1:${RKV_CLIENT[$RKV_LEADER]}" -c 64 --keys "$KEYS" \
            -d 256 --read-percent "${w##*:}" --duration "$DURATION" -q >/dev/null || true
        wait "$perf_pid" || true
        unset 'PID[perf]'
        timeout 120 perf report -i "$WORK/perf-$name.data" --stdio --no-children --sort symbol \
            --percent-limit 1 2>/dev/null | grep -E '^ +[0-9.]+%' | head -40 >"$RESULTS/perf-$name.txt" || true
    done
fi

if [ "${LEASE:-1}" = 1 ]; then
    log "lease reads: restarting the raftkv nodes with --lease-read"
    for i in 0 1 2; do kill -TERM "${PID[raftkv$i]}"; done
    for i in 0 1 2; do wait "${PID[raftkv$i]}" 2>/dev/null || true; done
    RKV_FLAGS=(--lease-read)
    for i in 0 1 2; do start_raftkv_node "$i"; done
    RKV_LEADER="$(raftkv_leader)" || { log "no raftkv leader after the restart"; exit 1; }
    for i in 0 1 2; do caught_up "$i" || log "node $((i + 1)) did not catch up within 30 s"; done
    for s in raftkv redis; do run_one "$s" get-c64-lease 64 100 "$KEYS"; done
fi

LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
DISK="$(df -P "$WORK" | awk 'NR==2 {print $1}') ($(df -PT "$WORK" | awk 'NR==2 {print $2}'))"
python3 - "$RESULTS/meta.json" <<PY
import json, sys
meta = {
    "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
    "machine": "$(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r), data on $DISK",
    "fsync_per_s": float("$FSYNC"),
    "versions": "raftkv $(git rev-parse --short HEAD), etcd $(etcd --version | awk '/etcd Version/ {print $3}'), redis $(redis-server --version | awk '{print $3}' | cut -d= -f2), $(rustc --version | awk '{print $1, $2}')",
    "duration_s": float("$DURATION"),
    "keys": int("$KEYS"),
    "notes": "Load average (1/5/15 min) at the start $LOAD_START, at the end $LOAD_END${BENCH_NOTES:+; $BENCH_NOTES}.",
}
json.dump(meta, open(sys.argv[1], "w"), indent=2)
PY

render

if [ "${SCALE:-0}" = 1 ]; then
    # Its own clusters on its own ports; it renders its own section of the doc.
    SCALE_NO_BUILD=1 RESULTS="$RESULTS" bench/scale.sh
fi
