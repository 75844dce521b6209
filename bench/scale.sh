#!/usr/bin/env bash
# Scale figures of issue 8, with raftkv's own tools (`raftkv server`,
# `raftkv bench`, `raftkv admin`, INFO) and standard ones:
#
#   keys      1M, then 10M keys of 256 B written into a 3-node raftkv cluster
#             and into one redis-server (appendonly yes, appendfsync always):
#             RSS per key (raftkv: the leader) and GETs with 64 clients at
#             each size. Redis runs first and is stopped before raftkv starts,
#             so the two never share the memory.
#   restart   a fresh 3-node cluster with automatic snapshots off; ~1 GiB of
#             SETs (LOG_KEYS distinct keys) loaded, so a follower's log is
#             ~1 GiB. Then:
#               log:      TRIALS restarts of that follower (SIGKILL, then
#                         SIGTERM once), each timed from exec to "port
#                         answers" (PING), to "serving" (INFO has the Raft
#                         section: log open, snapshot restored) and to
#                         "caught up" (its
#                         raft_applied_index reaches the leader's
#                         raft_commit_index read just before the kill);
#               snapshot: RAFT.SNAPSHOT on every node (the log is compacted),
#                         then the same restarts of a node whose snapshot is
#                         ~1 GiB;
#               catch-up: a new, empty node 4 (`--join`) added with
#                         `RAFT.NODE ADD`, timed from the ADD to its applied
#                         index reaching the leader's commit index (by
#                         snapshot: the leader's log is compacted).
#             Beside each restart: the time to read the node's log or
#             snapshot files with `cat` (warm page cache), the floor of any
#             replay, and the node's peak RSS (VmHWM).
#
#   bench/scale.sh                      every step
#   SCALE_STEPS="keys restart"          the steps to run (each holds the bench lock separately if wanted)
#   SCALE_KEYS="1000000 10000000"       key counts of the keys step
#   LOG_KEYS=3600000                    keys written in the restart step (~1.07 GB of log, ~1.06 GB of snapshot)
#   TRIALS=3                            SIGKILL restarts per kind (plus one SIGTERM restart)
#   DURATION=5                          seconds of each GET run
#   RESULTS=DIR                         keep results there (default: a temp dir, removed); steps add to it
#   NO_DOCS=1                           do not touch docs/
#   PROFILE=1                           + `perf record` of the first restart of each kind (RESULTS/perf-restart-*.txt)
#   KEEP_LOGS=DIR                       on failure, copy the servers' logs there
#   RENDER_ONLY=1 RESULTS=DIR           only regenerate docs/BENCHMARKS.md's scale section
#
# Every process it starts is stopped on every exit path (trap); every wait is
# bounded. `bench/compare.sh` runs it with `SCALE=1`.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${SCALE_STEPS:-keys restart}"
SCALE_KEYS="${SCALE_KEYS:-1000000 10000000}"
LOG_KEYS="${LOG_KEYS:-3600000}"
TRIALS="${TRIALS:-3}"
DURATION="${DURATION:-5}"
WORK="$(mktemp -d "${BENCH_DIR:-/var/tmp}/raftkv-scale.XXXXXX")"
RESULTS="${RESULTS:-$WORK/results}"
TARGET="${CARGO_TARGET_DIR:-target}"
RKV="$TARGET/release/raftkv"
REPORT="$TARGET/release/bench-report"
# Ports apart from compare.sh's, so the two can run one after the other, and
# below Linux's ephemeral range (32768-60999): a restarted node must find its
# port free, not taken as the local end of some outgoing connection.
CLIENT=(16381 16382 16383 16384)
PEER=(17381 17382 17383 17384)
REDIS_PORT=16400
# Automatic snapshots off (the restart step decides when to snapshot; the keys
# step would otherwise rewrite a multi-GB snapshot every 100,000 entries).
NO_AUTO_SNAPSHOT=(--snapshot-entries 1000000000000 --snapshot-bytes 1000000000000000)
declare -A PID=()

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

cleanup() {
    local code=$?
    for name in "${!PID[@]}"; do kill -TERM "${PID[$name]}" 2>/dev/null || true; done
    sleep 0.5
    for name in "${!PID[@]}"; do kill -KILL "${PID[$name]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$code" != 0 ] && [ -n "${KEEP_LOGS:-}" ]; then
        mkdir -p "$KEEP_LOGS" && cp "$WORK"/*.log "$KEEP_LOGS"/ 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$code"
}
trap cleanup EXIT INT TERM

render() { # docs/BENCHMARKS.md's scale section, from $RESULTS/scale-*.json and scale-runs/
    "$REPORT" --results "$RESULTS" --scale --markdown "$RESULTS/scale-section.md"
    if [ "${NO_DOCS:-0}" = 1 ]; then
        log "results in $RESULTS"
        return 0
    fi
    python3 - docs/BENCHMARKS.md "$RESULTS/scale-section.md" <<'PY'
import sys
doc_path, section_path = sys.argv[1], sys.argv[2]
doc = open(doc_path).read()
begin, end = "<!-- scale.sh:begin -->", "<!-- scale.sh:end -->"
section = open(section_path).read()
if begin in doc and end in doc:
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc = head + begin + "\n" + section + end + tail
else:
    doc += "\n" + begin + "\n" + section + end + "\n"
open(doc_path, "w").write(doc)
PY
    log "docs/BENCHMARKS.md (scale section) updated; results in $RESULTS"
}

if [ "${RENDER_ONLY:-0}" = 1 ]; then
    [ "$RESULTS" != "$WORK/results" ] || { log "RENDER_ONLY needs RESULTS=DIR"; exit 1; }
    timeout 1200 cargo build --release -q -p bench-report
    render
    exit 0
fi

bench/setup
if [ "${SCALE_NO_BUILD:-0}" != 1 ]; then
    log "building (release): raftkv, bench-report"
    timeout 1200 cargo build --release -q -p server -p bench-report
fi
mkdir -p "$RESULTS/scale-runs"

# --- helpers ---------------------------------------------------------------

info_field() { # port field: one field of INFO (empty if the node does not answer)
    timeout 2 redis-cli -p "$1" info 2>/dev/null | tr -d '\r' | awk -F: -v f="$2" '$1 == f {print $2}'
}

# kB fields times 1024 in bash: awk's printf %d stops at 2^31 on some awks.
kb_field() { echo $(( $(awk -v f="$1:" '$1 == f {print $2}' "$2") * 1024 )); }
rss() { kb_field VmRSS "/proc/$1/status"; }
hwm() { kb_field VmHWM "/proc/$1/status"; }

start_node() { # index data-dir [flags...]: node index+1, client CLIENT[index], peer PEER[index]
    local i=$1 dir=$2 cluster=""
    shift 2
    for j in 0 1 2; do cluster+="${cluster:+,}$((j + 1))=127.0.0.1:${PEER[$j]}"; done
    RUST_LOG=warn "$RKV" server --id "$((i + 1))" --data-dir "$dir" \
        --client-addr "127.0.0.1:${CLIENT[$i]}" --peer-addr "127.0.0.1:${PEER[$i]}" \
        --initial-cluster "$cluster" "$@" >>"$dir.log" 2>&1 &
    PID[node$i]=$!
}

stop_node() { # index signal: sends it and waits (SIGTERM: up to 60 s, then SIGKILL)
    local i=$1 sig=$2 pid="${PID[node$1]}"
    kill "-$sig" "$pid" 2>/dev/null || true
    if ! timeout 60 tail --pid="$pid" -f /dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
    unset "PID[node$i]"
}

leader() { # prints the leader's index among the first three nodes; waits up to 30 s
    for _ in $(seq 1 300); do
        for i in 0 1 2; do
            [ "$(info_field "${CLIENT[$i]}" raft_role)" = leader ] && { echo "$i"; return 0; }
        done
        sleep 0.1
    done
    return 1
}

wait_serving() { # port timeout_s pid [field]: until the port answers INFO (with that field; default raft_node_id)
    local deadline=$(( $(date +%s) + $2 ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        [ -n "$(info_field "$1" "${4:-raft_node_id}")" ] && return 0
        kill -0 "$3" 2>/dev/null || { log "process $3 (port $1) exited"; return 1; }
        sleep 0.02
    done
    return 1
}

wait_answering() { # port timeout_s pid: until the port answers PING (whatever the node's state)
    local deadline=$(( $(date +%s) + $2 ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        [ "$(timeout 2 redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
        kill -0 "$3" 2>/dev/null || { log "process $3 (port $1) exited"; return 1; }
        sleep 0.01
    done
    return 1
}

wait_applied() { # port index timeout_s: until raft_applied_index >= index
    local deadline=$(( $(date +%s) + $3 )) applied
    while [ "$(date +%s)" -lt "$deadline" ]; do
        applied="$(info_field "$1" raft_applied_index)"
        [ -n "$applied" ] && [ "$applied" -ge "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

load_keys() { # port keys: writes keys 0..keys-1 once (64 connections, pipelines of 32); prints seconds
    local t0 t1
    t0="$(now_ms)"
    timeout 1800 "$RKV" bench --addr "127.0.0.1:$1" --keys "$2" -d 256 -c 64 -P 32 --prefill -n 1 -q >"$WORK/load.txt" 2>&1 \
        || { log "load of $2 keys into :$1 failed: $(tail -2 "$WORK/load.txt")"; return 1; }
    t1="$(now_ms)"
    grep -h "prefill:" "$WORK/load.txt" >&2 || true
    python3 -c "print(round(($t1 - $t0) / 1000, 1))"
}

get_run() { # system port keys name: 64-client GETs over the key space, JSON into runs/
    log "$1: GETs with 64 clients over $3 keys"
    if ! RUST_LOG=warn timeout $((DURATION + 120)) "$RKV" bench --addr "127.0.0.1:$2" -c 64 --keys "$3" -d 256 \
        --read-percent 100 --duration "$DURATION" -q --json "$RESULTS/scale-runs/${1}__$4.json" >"$WORK/last.txt" 2>&1; then
        log "FAILED: $1 $4: $(tail -2 "$WORK/last.txt")"
        rm -f "$RESULTS/scale-runs/${1}__$4.json"
    else
        sed -n '2p' "$WORK/last.txt" >&2
    fi
}

mem_available() { kb_field MemAvailable /proc/meminfo; }

need_memory() { # bytes what: refuses a step the machine cannot hold
    local have
    have="$(mem_available)"
    if [ "$have" -lt "$1" ]; then
        log "skipping $2: needs ~$(( $1 >> 30 )) GiB, $(( have >> 30 )) GiB available"
        return 1
    fi
}

# --- keys: 1M and 10M keys, RSS and GETs -----------------------------------

# Functions that start processes run in this shell (never in `$(...)`), so the
# trap knows every PID; they leave their JSON in $WORK/*.json.

keys_system() { # system: loads each SCALE_KEYS count in turn into it; JSON points into $WORK/points-SYSTEM.json
    local system=$1 port pid points="" before after secs keys
    if [ "$system" = redis ]; then
        mkdir -p "$WORK/redis"
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --appendonly yes \
            --appendfsync always --save "" --daemonize no >"$WORK/redis.log" 2>&1 &
        PID[redis]=$!
        port=$REDIS_PORT pid=${PID[redis]}
        wait_serving "$port" 20 "$pid" redis_version || { log "redis did not start"; return 1; }
    else
        for i in 0 1 2; do start_node "$i" "$WORK/keys$i" "${NO_AUTO_SNAPSHOT[@]}"; done
        local l
        l="$(leader)" || { log "no raftkv leader"; return 1; }
        port=${CLIENT[$l]} pid=${PID[node$l]}
    fi
    before="$(rss "$pid")"
    for keys in $SCALE_KEYS; do
        log "$system: writing $keys keys of 256 B"
        secs="$(load_keys "$port" "$keys")" || return 1
        after="$(rss "$pid")"
        log "$system: $keys keys in $secs s, RSS $(( before >> 20 )) -> $(( after >> 20 )) MiB"
        get_run "$system" "$port" "$keys" "get-c64-keys$keys"
        points+="${points:+, }{\"keys\": $keys, \"rss_before\": $before, \"rss_after\": $after, \"load_s\": $secs}"
    done
    if [ "$system" = redis ]; then
        kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; unset 'PID[redis]'
    else
        for i in 0 1 2; do stop_node "$i" TERM; done
        rm -rf "$WORK"/keys*
    fi
    echo "\"$system\": [$points]" >"$WORK/points-$system.json"
}

step_keys() {
    local max=0 k
    for k in $SCALE_KEYS; do [ "$k" -gt "$max" ] && max=$k; done
    # About 600 B per key on each of three raftkv nodes, 20% spare.
    need_memory $(( max * 600 * 3 * 12 / 10 )) "the keys step ($max keys)" || return 0
    keys_system redis
    keys_system raftkv
    echo "{\"value_size\": 256, \"points\": {$(cat "$WORK/points-redis.json"), $(cat "$WORK/points-raftkv.json")}}" \
        >"$RESULTS/scale-keys.json"
}

# --- restart: ~1 GiB log, ~1 GiB snapshot, catch-up by snapshot ------------

dir_bytes() { du -sb "$1" 2>/dev/null | cut -f1; }
log_bytes() { echo $(( $(dir_bytes "$1") - $(dir_bytes "$1/snap" || echo 0) )); }

read_ms() { # files...: ms to read them (warm page cache: read once before timing)
    cat "$@" >/dev/null
    local t0
    t0="$(now_ms)"
    cat "$@" >/dev/null
    echo $(( $(now_ms) - t0 ))
}

restart_trial() { # kind signal node: kills, restarts and times the node; appends a JSON object to $WORK/restarts.json
    local kind=$1 sig=$2 i=$3 l commit t0 answering serving caught read_files read pid
    l="$(leader)" || return 1
    commit="$(info_field "${CLIENT[$l]}" raft_commit_index)"
    if [ "$kind" = log ]; then
        mapfile -t read_files < <(find "$WORK/node$i" -maxdepth 1 -type f)
    else
        read_files=("$WORK/node$i"/snap/*.snap)
    fi
    stop_node "$i" "$sig"
    read="$(read_ms "${read_files[@]}")"
    t0="$(now_ms)"
    start_node "$i" "$WORK/node$i" "${NO_AUTO_SNAPSHOT[@]}"
    pid=${PID[node$i]}
    local profile=""
    if [ "${PROFILE:-0}" = 1 ] && [ ! -e "$RESULTS/perf-restart-$kind.txt" ] && command -v perf >/dev/null 2>&1; then
        perf record -q -F 499 -g -p "$pid" -o "$WORK/perf-restart.data" >/dev/null 2>&1 &
        profile=$!
        PID[perf]=$profile
    fi
    wait_answering "${CLIENT[$i]}" 300 "$pid" || { log "node $((i + 1)) did not answer within 300 s"; return 1; }
    answering=$(( $(now_ms) - t0 ))
    wait_serving "${CLIENT[$i]}" 300 "$pid" || { log "node $((i + 1)) did not serve within 300 s"; return 1; }
    serving=$(( $(now_ms) - t0 ))
    wait_applied "${CLIENT[$i]}" "$commit" 300 || { log "node $((i + 1)) did not catch up within 300 s"; return 1; }
    caught=$(( $(now_ms) - t0 ))
    if [ -n "$profile" ]; then
        kill -INT "$profile"; wait "$profile" 2>/dev/null || true; unset 'PID[perf]'
        timeout 120 perf report -i "$WORK/perf-restart.data" --stdio --no-children --sort symbol \
            --percent-limit 1 2>/dev/null | grep -E '^ +[0-9.]+%' | head -40 >"$RESULTS/perf-restart-$kind.txt" || true
    fi
    log "$kind restart (SIG$sig) of node $((i + 1)): port answers after $answering ms, serving after $serving ms, caught up (applied $commit) after $caught ms; cat of its files $read ms; peak RSS $(( $(hwm "$pid") >> 20 )) MiB"
    [ -s "$WORK/restarts.json" ] && echo "," >>"$WORK/restarts.json"
    echo "{\"kind\": \"$kind\", \"signal\": \"$sig\", \"answering_ms\": $answering, \"serving_ms\": $serving, \"caught_up_ms\": $caught, \"read_ms\": $read, \"log_bytes\": $(log_bytes "$WORK/node$i"), \"snapshot_bytes\": $(dir_bytes "$WORK/node$i/snap"), \"applied\": $commit, \"rss\": $(rss "$pid"), \"rss_peak\": $(hwm "$pid")}" >>"$WORK/restarts.json"
}

restart_trials() { # kind follower: TRIALS SIGKILL restarts and one SIGTERM restart
    local t sig
    for t in $(seq 1 "$TRIALS") term; do
        sig=KILL
        [ "$t" = term ] && sig=TERM
        restart_trial "$1" "$sig" "$2"
    done
}

snapshot_all() { # asks every node for a snapshot and waits until each has one at its applied index
    local i applied
    for i in 0 1 2; do
        applied="$(info_field "${CLIENT[$i]}" raft_applied_index)"
        timeout 10 "$RKV" admin --addr "127.0.0.1:${CLIENT[$i]}" RAFT.SNAPSHOT >/dev/null
        local deadline=$(( $(date +%s) + 300 ))
        until [ "$(info_field "${CLIENT[$i]}" raft_snapshot_index)" -ge "$applied" ] 2>/dev/null; do
            [ "$(date +%s)" -lt "$deadline" ] || { log "node $((i + 1)): no snapshot within 300 s"; return 1; }
            sleep 0.2
        done
    done
}

catch_up() { # starts node 4 empty, adds it, times it; JSON into $WORK/catch-up.json
    local l commit t0 ms pid
    l="$(leader)" || return 1
    # As OPERATIONS.md says: `--join` alone, the node knows no other node.
    RUST_LOG=warn "$RKV" server --id 4 --data-dir "$WORK/node3" --join \
        --client-addr "127.0.0.1:${CLIENT[3]}" --peer-addr "127.0.0.1:${PEER[3]}" "${NO_AUTO_SNAPSHOT[@]}" \
        >>"$WORK/node3.log" 2>&1 &
    PID[node3]=$!
    pid=${PID[node3]}
    wait_serving "${CLIENT[3]}" 30 "$pid" || { log "node 4 did not start"; return 1; }
    commit="$(info_field "${CLIENT[$l]}" raft_commit_index)"
    t0="$(now_ms)"
    timeout 60 "$RKV" admin --addr "127.0.0.1:${CLIENT[$l]}" RAFT.NODE ADD 4 "127.0.0.1:${PEER[3]}" \
        "127.0.0.1:${CLIENT[3]}" >"$WORK/add.txt" 2>&1 || { log "RAFT.NODE ADD failed: $(cat "$WORK/add.txt")"; return 1; }
    wait_applied "${CLIENT[3]}" "$commit" 600 || { log "node 4 did not catch up within 600 s"; return 1; }
    ms=$(( $(now_ms) - t0 ))
    log "catch-up: node 4 applied $commit after $ms ms (snapshot $(( $(dir_bytes "$WORK/node3/snap") >> 20 )) MiB, peak RSS $(( $(hwm "$pid") >> 20 )) MiB)"
    echo "{\"caught_up_ms\": $ms, \"applied\": $commit, \"snapshot_bytes\": $(dir_bytes "$WORK/node3/snap"), \"rss\": $(rss "$pid"), \"rss_peak\": $(hwm "$pid"), \"leader_rss\": $(rss "${PID[node$l]}")}" >"$WORK/catch-up.json"
}

step_restart() {
    need_memory $(( LOG_KEYS * 700 * 4 )) "the restart step ($LOG_KEYS keys)" || return 0
    local i l follower secs
    for i in 0 1 2; do start_node "$i" "$WORK/node$i" "${NO_AUTO_SNAPSHOT[@]}"; done
    l="$(leader)" || { log "no raftkv leader"; exit 1; }
    log "restart: writing $LOG_KEYS keys of 256 B, automatic snapshots off"
    secs="$(load_keys "${CLIENT[$l]}" "$LOG_KEYS")" || return 1
    follower=$(( (l + 1) % 3 ))
    log "loaded in $secs s; node $((follower + 1))'s log: $(( $(log_bytes "$WORK/node$follower") >> 20 )) MiB"
    : >"$WORK/restarts.json"
    restart_trials log "$follower"
    log "restart: snapshot on every node"
    snapshot_all
    l="$(leader)" || return 1
    follower=$(( (l + 1) % 3 ))
    log "node $((follower + 1))'s snapshot: $(( $(dir_bytes "$WORK/node$follower/snap") >> 20 )) MiB, log $(( $(log_bytes "$WORK/node$follower") >> 20 )) MiB"
    restart_trials snapshot "$follower"
    catch_up
    echo "{\"keys\": $LOG_KEYS, \"value_size\": 256, \"load_s\": $secs, \"restarts\": [$(cat "$WORK/restarts.json")], \"catch_up\": $(cat "$WORK/catch-up.json")}" \
        >"$RESULTS/scale-restart.json"
    for i in 3 0 1 2; do [ -n "${PID[node$i]:-}" ] && stop_node "$i" TERM; done
    rm -rf "$WORK"/node*
}

# --- run --------------------------------------------------------------------

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
for step in $STEPS; do
    case $step in
        keys) step_keys ;;
        restart) step_restart ;;
        *) log "unknown step $step (keys, restart)"; exit 1 ;;
    esac
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
DISK="$(df -P "$WORK" | awk 'NR==2 {print $1}') ($(df -PT "$WORK" | awk 'NR==2 {print $2}'))"
python3 - "$RESULTS/scale-meta-$(date -u +%H%M%S).json" <<PY
import json, sys
meta = {
    "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
    "steps": "$STEPS",
    "machine": "$(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r), data on $DISK",
    "versions": "raftkv $(git rev-parse --short HEAD), redis $(redis-server --version | awk '{print $3}' | cut -d= -f2), $(rustc --version | awk '{print $1, $2}')",
    "duration_s": float("$DURATION"),
    "notes": "load average (1/5/15 min) $LOAD_START at the start, $LOAD_END at the end${BENCH_NOTES:+; $BENCH_NOTES}",
}
json.dump(meta, open(sys.argv[1], "w"), indent=2)
PY
render
