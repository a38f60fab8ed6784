#!/usr/bin/env bash
# The cluster (issue 15): one publisher -> origin -> 2 edges -> N viewers each (RTMP on edge 1,
# HTTP-FLV on edge 2), against the same 2N viewers on the origin alone, in one run. Reports the
# latency an edge hop adds (publisher send -> viewer kernel receive, per frame, from
# estuary-bench), the origin's CPU in both set-ups, each edge's CPU, and the viewers per core an
# edge reaches. About a minute and a half with the defaults.
#
#   bench/cluster.sh [--viewers N] [--duration SECS] [--out FILE]
#
# Every Estuary runs on core 0, the bench on core 1 (a 2-core machine: the edges share the
# origin's core, so the figures are per core of CPU time, not wall time).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

VIEWERS=200
DURATION=20
WARMUP=6
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --viewers) VIEWERS="$2"; shift ;;
        --duration) DURATION="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "cluster.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

STAMP=$(date +%Y-%m-%d-%H%M)
OUT=${OUT:-$ROOT/bench/results/cluster-$STAMP.md}
WORK=$(mktemp -d /tmp/estuary-cluster.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "cluster.sh: $*" >&2; }

log "building release binaries"
cargo build --release -p estuary -p estuary-bench --bins >&2
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH="$TARGET/release/estuary-bench"
ESTUARY="$TARGET/release/estuary"
CLIP="$ROOT/bench/media/clip-720p-2500k.flv"

free_port() {
    local p
    for p in $(seq "$1" $(($1 + 500))); do
        if ! ss -ltnH "sport = :$p" | grep -q .; then echo "$p"; return; fi
    done
    log "no free port near $1"; exit 1
}
wait_port() {
    local i
    for i in $(seq 1 100); do
        if ss -ltnH "sport = :$1" | grep -q .; then return 0; fi
        sleep 0.1
    done
    log "nothing listens on $1"; return 1
}
# CPU seconds (utime + stime) a process has used so far.
cpu_of() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

# node LABEL EXTRA-TOML: starts an Estuary on core 0; sets NODE_PID, NODE_RTMP, NODE_HTTP.
node() {
    local label=$1 extra=$2
    NODE_RTMP=$(free_port 43935)
    NODE_HTTP=$(free_port 46080)
    printf '[limits]\nper_ip_exempt = ["127.0.0.0/8"]\n[hls]\nenabled = false\n%b\n' "$extra" >"$WORK/$label.toml"
    RUST_LOG=warn taskset -c 0 "$ESTUARY" -c "$WORK/$label.toml" --rtmp-listen "127.0.0.1:$NODE_RTMP" \
        --http-listen "127.0.0.1:$NODE_HTTP" >"$WORK/$label.log" 2>&1 &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
    wait_port "$NODE_RTMP"
    wait_port "$NODE_HTTP"
}

# bench LABEL ORIGIN_RTMP ORIGIN_PID RTMP_PLAY_URL FLV_URL
bench() {
    local label=$1 origin=$2 pid=$3 rtmp_url=$4 flv_url=$5
    if ! taskset -c 1 "$BENCH" --clip "$CLIP" --server-pid "$pid" --label "cluster-$label" \
        --publish-url "rtmp://127.0.0.1:$origin/live/{stream}" \
        --rtmp-url "$rtmp_url" --rtmp-viewers "$VIEWERS" \
        --flv-url "$flv_url" --flv-viewers "$VIEWERS" \
        --warmup-secs "$WARMUP" --duration-secs "$DURATION" \
        --json "$WORK/$label.json" >"$WORK/$label.txt" 2>&1; then
        log "$label: the bench failed:"; tail -5 "$WORK/$label.txt" >&2; exit 1
    fi
}

log "run 1: origin alone, $VIEWERS RTMP + $VIEWERS HTTP-FLV viewers on it"
node origin-alone ""
O_PID=$NODE_PID
bench alone "$NODE_RTMP" "$O_PID" "rtmp://127.0.0.1:$NODE_RTMP/live/{stream}" "http://127.0.0.1:$NODE_HTTP/live/{stream}.flv"
kill "$O_PID"; wait "$O_PID" 2>/dev/null || true

log "run 2: origin -> 2 edges, $VIEWERS RTMP viewers on edge 1, $VIEWERS HTTP-FLV viewers on edge 2"
node origin ""
O_PID=$NODE_PID; O_RTMP=$NODE_RTMP
EDGE="[edge]\norigins = [\"127.0.0.1:$O_RTMP\"]"
node edge1 "$EDGE"
E1_PID=$NODE_PID; E1_RTMP=$NODE_RTMP
node edge2 "$EDGE"
E2_PID=$NODE_PID; E2_HTTP=$NODE_HTTP
e1_before=$(cpu_of "$E1_PID"); e2_before=$(cpu_of "$E2_PID")
bench edges "$O_RTMP" "$O_PID" "rtmp://127.0.0.1:$E1_RTMP/live/{stream}" "http://127.0.0.1:$E2_HTTP/live/{stream}.flv"
e1_after=$(cpu_of "$E1_PID"); e2_after=$(cpu_of "$E2_PID")

python3 - "$WORK/alone.json" "$WORK/edges.json" "$e1_before" "$e1_after" "$e2_before" "$e2_after" \
    "$VIEWERS" "$DURATION" "$STAMP" >"$OUT" <<'EOF'
import json, sys
alone, edges = (json.load(open(p)) for p in sys.argv[1:3])
e1 = float(sys.argv[4]) - float(sys.argv[3])
e2 = float(sys.argv[6]) - float(sys.argv[5])
n, duration, stamp = int(sys.argv[7]), sys.argv[8], sys.argv[9]
run_secs = float(edges["warmup_secs"]) + float(edges["window_secs"])

def kind(report, k):
    return next(v for v in report["viewers"] if v["kind"] == k)

def lat(report, k):
    l = kind(report, k)["latency"]
    return l["p50_ms"] or 0.0, l["p99_ms"] or 0.0

def ok(report, k):
    v = kind(report, k)
    return f'{v["connected"]}/{v["viewers"]}, {v["frames_missing"]} frames missing'

print(f"# The cluster: origin -> 2 edges -> {n} viewers each ({stamp})\n")
print(f"- command: `bench/cluster.sh --viewers {n} --duration {duration}`")
print("- clip: bench/media/clip-720p-2500k.flv (720p30 H.264 2.5 Mbps + AAC 128 kbps), one publisher from estuary-bench to the origin")
print("- every Estuary (release) on core 0, the bench on core 1; latency = publisher send to viewer kernel receive, per frame")
print(f"- run 1: {n} RTMP + {n} HTTP-FLV viewers on the origin; run 2: the {n} RTMP viewers on edge 1, the {n} HTTP-FLV viewers on edge 2, each edge pulling once from the origin\n")
print("| run | origin CPU s | edge 1 CPU s | edge 2 CPU s | RTMP latency p50 / p99 ms | HTTP-FLV latency p50 / p99 ms | RTMP viewers | HTTP-FLV viewers |")
print("| --- | ---: | ---: | ---: | --- | --- | --- | --- |")
for name, r, c1, c2 in (("origin alone", alone, "-", "-"), ("origin + 2 edges", edges, f"{e1:.2f}", f"{e2:.2f}")):
    (rp50, rp99), (fp50, fp99) = lat(r, "rtmp"), lat(r, "http-flv")
    print(f'| {name} | {r["server"]["cpu_seconds"]:.2f} | {c1} | {c2} | {rp50:.1f} / {rp99:.1f} | {fp50:.1f} / {fp99:.1f} | {ok(r, "rtmp")} | {ok(r, "http-flv")} |')
(ar, _), (af, _) = lat(alone, "rtmp"), lat(alone, "http-flv")
(er, _), (ef, _) = lat(edges, "rtmp"), lat(edges, "http-flv")
print()
print(f"- an edge hop adds {er - ar:.1f} ms (RTMP) and {ef - af:.1f} ms (HTTP-FLV) at the median.")
o_alone, o_edges = alone["server"]["cpu_seconds"], edges["server"]["cpu_seconds"]
print(f"- the origin's CPU: {o_edges:.2f} s serving 2 edges against {o_alone:.2f} s serving the {2 * n} viewers itself.")
for name, cpu in (("edge 1 (RTMP)", e1), ("edge 2 (HTTP-FLV)", e2)):
    per_core = n / (cpu / run_secs) if cpu > 0 else float("inf")
    print(f"- {name}: {cpu:.2f} CPU s over {run_secs:.0f} s for {n} viewers, about {per_core:,.0f} viewers per core at 2.6 Mbps.")
EOF
cat "$OUT"
