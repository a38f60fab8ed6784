#!/usr/bin/env bash
# Join latency on one stream while another stream of the same server fans out.
#
#   bench/join-latency.sh [--viewers N] [--joins J] [--estuary BIN] [--label NAME] [--out DIR]
#
# A fresh Estuary pinned to core 0 (taskset -c 0); on core 1: estuary-bench publishing
# stream `a` to N RTMP viewers (default 2000), a second estuary-bench publishing stream `b`
# with no viewers, and, once all of `a`'s viewers play, `examples/join_latency.rs` joining
# `b` J times, one after the other (accepted = play accepted; first frame = the join
# snapshot's keyframe arrived). --estuary runs another build (e.g. an older commit's) under
# the same load; --viewers 0 gives the quiet baseline. Results: DIR/join-LABEL.json and .txt
# (DIR defaults to bench/results/join-<date>).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

VIEWERS=2000
JOINS=300
ESTUARY=""
LABEL=""
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --viewers) VIEWERS="$2"; shift ;;
        --joins) JOINS="$2"; shift ;;
        --estuary) ESTUARY="$2"; shift ;;
        --label) LABEL="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "join-latency.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
LABEL=${LABEL:-estuary-$VIEWERS}
OUT=${OUT:-$ROOT/bench/results/join-$(date +%Y-%m-%d-%H%M)}
mkdir -p "$OUT"

log() { echo "join-latency.sh: $*" >&2; }

log "building release binaries"
cargo build --release -p estuary-bench --bins --example join_latency >&2
if [ -z "$ESTUARY" ]; then
    cargo build --release -p estuary >&2
    ESTUARY="$TARGET/release/estuary"
fi
BENCH="$TARGET/release/estuary-bench"
JOIN="$TARGET/release/examples/join_latency"
CLIP="$ROOT/bench/media/clip-720p-2500k.flv"

WORK=$(mktemp -d /tmp/estuary-join.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    local p
    for p in $(seq "$1" $(($1 + 500))); do
        if ! ss -ltnH "sport = :$p" | grep -q .; then echo "$p"; return; fi
    done
    log "no free port near $1"; exit 1
}
RTMP_PORT=$(free_port 42935)
HTTP_PORT=$(free_port 49080)
{
    printf '[rtmp]\nlisten = "127.0.0.1:%s"\n[http]\nlisten = "127.0.0.1:%s"\n' "$RTMP_PORT" "$HTTP_PORT"
    printf '[limits]\nper_ip_exempt = ["127.0.0.0/8"]\n'
} >"$WORK/estuary.toml"
RUST_LOG=warn taskset -c 0 "$ESTUARY" -c "$WORK/estuary.toml" >"$WORK/estuary.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
for _ in $(seq 1 100); do
    if ss -ltnH "sport = :$RTMP_PORT" | grep -q .; then break; fi
    sleep 0.1
done

URL="rtmp://127.0.0.1:$RTMP_PORT/live/{stream}"
WARMUP=5
RAMP=5
# Long enough for every join; the load is stopped when they are done.
DURATION=$((JOINS + 120))
taskset -c 1 "$BENCH" --clip "$CLIP" --publish-url "$URL" --stream a --rtmp-viewers "$VIEWERS" \
    --warmup-secs "$WARMUP" --ramp-secs "$RAMP" --duration-secs "$DURATION" --label "$LABEL-a" \
    >"$WORK/load-a.txt" 2>&1 &
PIDS+=("$!")
taskset -c 1 "$BENCH" --clip "$CLIP" --publish-url "$URL" --stream b \
    --warmup-secs 1 --duration-secs "$DURATION" --label "$LABEL-b" >"$WORK/load-b.txt" 2>&1 &
PIDS+=("$!")
# Publishing, then every viewer of `a` connected and caught up with the live edge.
sleep $((WARMUP + RAMP + 5))
conns() { ss -tnH state established "( sport = :$RTMP_PORT )" | wc -l; }
log "$LABEL: $JOINS joins of live/b while live/a plays to $VIEWERS viewers ($(conns) RTMP connections)"
# The prober runs at a higher priority than the load beside it (when allowed), so its own
# wait for core 1 is not counted as the server's.
PRIO=""
if nice -n -10 true 2>/dev/null; then PRIO="nice -n -10"; fi
taskset -c 1 $PRIO "$JOIN" --url "rtmp://127.0.0.1:$RTMP_PORT/live/b" --joins "$JOINS" --label "$LABEL" \
    --json "$OUT/join-$LABEL.json" | tee "$OUT/join-$LABEL.txt"
echo "RTMP connections after the joins: $(conns)" | tee -a "$OUT/join-$LABEL.txt"
# The server's CPU over the joins (utime + stime, clock ticks), for the record.
awk '{ print "server CPU seconds so far: " ($14 + $15) / 100 }' "/proc/$SERVER_PID/stat" | tee -a "$OUT/join-$LABEL.txt"
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "the server exited during the run; its log:"
    tail -20 "$WORK/estuary.log" >&2
    exit 1
fi
log "wrote $OUT/join-$LABEL.json"
