#!/usr/bin/env bash
# What pulling live HLS sources costs: Estuary pulling N sources natively ([[sources]]),
# against the N `ffmpeg -i URL -c copy -f flv rtmp://...` processes a platform runs
# instead (each pushing into an Estuary), in the same run, over the same origin.
#
#   bench/pull-cost.sh [--sources N] [--duration SECS]
#
# The origin: 720p 2.5 Mbps H.264 + AAC encoded once into 2-s MPEG-TS segments, listed by N
# live playlists that slide in real time (bench/hls-origin.py), served by
# `python3 -m http.server`. Each phase starts the origin's clock anew, warms up, then reads
# the CPU time (utime + stime, /proc/PID/stat) of the processes over SECS seconds:
#   estuary-pull  one Estuary with N [[sources]] (HLS pulled, demuxed, fed to N paths);
#   ffmpeg-copy   N ffmpeg processes (HLS pulled, demuxed, remuxed to FLV, pushed over
#                 RTMP), and the Estuary they push into, apart.
# The report goes to bench/results/pull-cost-<date>.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
N=20
DURATION=60
WARMUP=12
while [ $# -gt 0 ]; do
    case "$1" in
        --sources) N="$2"; shift ;;
        --duration) DURATION="$2"; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "pull-cost.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
log() { echo "[pull-cost] $*" >&2; }

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ESTUARY=${PULL_COST_ESTUARY:-$TARGET/release/estuary}
if [ -z "${PULL_COST_ESTUARY:-}" ]; then
    log "building the release binary"
    cargo build --release -p estuary --bin estuary >&2
fi
WORK=$(mktemp -d /tmp/pull-cost.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

SEG_SECS=2
# Content for the warm-up, the measurement and the window, plus slack.
SEGMENTS=$(( (WARMUP + DURATION) / SEG_SECS + 10 ))
log "encoding $((SEGMENTS * SEG_SECS)) s of 720p 2.5 Mbps into $SEGMENTS segments"
mkdir -p "$WORK/origin/seg"
ffmpeg -hide_banner -nostdin -v error -y \
    -f lavfi -i "testsrc2=size=1280x720:rate=25" -f lavfi -i "sine=frequency=440:sample_rate=44100" \
    -t $((SEGMENTS * SEG_SECS)) -c:v libx264 -preset ultrafast -b:v 2500k -maxrate 2500k -bufsize 5000k \
    -g 50 -keyint_min 50 -sc_threshold 0 -c:a aac -b:a 128k \
    -f hls -hls_time $SEG_SECS -hls_list_size 0 -hls_segment_filename "$WORK/origin/seg/a%d.ts" \
    "$WORK/origin/seg/all.m3u8"

HTTP_ORIGIN=18480
python3 -m http.server $HTTP_ORIGIN --bind 127.0.0.1 --directory "$WORK/origin" >"$WORK/http.log" 2>&1 &
PIDS+=($!)

start_origin() {
    python3 "$ROOT/bench/hls-origin.py" "$WORK/origin" "$N" "$SEGMENTS" "$SEG_SECS" &
    ORIGIN_PID=$!
    PIDS+=($ORIGIN_PID)
    sleep 1
}

# Starts Estuary with config $1 on ports 19350/18490; sets ESTUARY_PID.
start_estuary() {
    local dir="$WORK/estuary-$2"
    mkdir -p "$dir"
    printf '%s' "$1" >"$dir/estuary.toml"
    (cd "$dir" && exec "$ESTUARY" -c estuary.toml --rtmp-listen 127.0.0.1:19350 --http-listen 127.0.0.1:18490 \
        >"$dir/estuary.log" 2>&1) &
    ESTUARY_PID=$!
    PIDS+=($ESTUARY_PID)
    for _ in $(seq 1 100); do
        curl -fs http://127.0.0.1:18490/readyz >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    log "estuary did not start; see $dir/estuary.log"; exit 1
}

# CPU seconds (user + system) the given processes have used so far.
cpu_seconds() {
    local total=0 p t
    for p in "$@"; do
        t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "scale=2; $total / $(getconf CLK_TCK)" | bc
}
rss_mb() {
    local total=0 p k
    for p in "$@"; do
        k=$(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        total=$((total + k))
    done
    echo $((total / 1024))
}

CONFIG_BASE=$'[hls]\nenabled = false\n[record]\nposter = false\n'

log "phase 1: estuary pulls $N HLS sources"
start_origin
config="$CONFIG_BASE"
for i in $(seq 1 "$N"); do
    config+=$'[[sources]]\n'"name = \"s$i\""$'\nprotocol = "hls"\n'"url = \"http://127.0.0.1:$HTTP_ORIGIN/s$i/live.m3u8\""$'\n'"stream = \"live/s$i\""$'\n'
done
start_estuary "$config" pull
sleep "$WARMUP"
online=$(curl -fs http://127.0.0.1:18490/api/v1/sources | grep -o '"online":true' | wc -l)
a=$(cpu_seconds "$ESTUARY_PID")
sleep "$DURATION"
b=$(cpu_seconds "$ESTUARY_PID")
online_end=$(curl -fs http://127.0.0.1:18490/api/v1/sources | grep -o '"online":true' | wc -l)
PULL_CPU=$(echo "scale=2; $b - $a" | bc)
PULL_RSS=$(rss_mb "$ESTUARY_PID")
kill "$ESTUARY_PID" "$ORIGIN_PID"; wait "$ESTUARY_PID" 2>/dev/null || true
log "phase 1: $PULL_CPU CPU s in $DURATION s; $online/$online_end of $N online at start/end"

log "phase 2: $N ffmpeg -c copy processes push into estuary"
start_origin
start_estuary "$CONFIG_BASE" push
FF=()
for i in $(seq 1 "$N"); do
    ffmpeg -hide_banner -nostdin -loglevel error -i "http://127.0.0.1:$HTTP_ORIGIN/s$i/live.m3u8" \
        -c copy -f flv "rtmp://127.0.0.1:19350/live/s$i" >"$WORK/ffmpeg-$i.log" 2>&1 &
    FF+=($!)
    PIDS+=($!)
done
sleep "$WARMUP"
live=$(curl -fs http://127.0.0.1:18490/api/v1/streams | grep -o '"active":true' | wc -l)
fa=$(cpu_seconds "${FF[@]}")
ea=$(cpu_seconds "$ESTUARY_PID")
sleep "$DURATION"
fb=$(cpu_seconds "${FF[@]}")
eb=$(cpu_seconds "$ESTUARY_PID")
FF_CPU=$(echo "scale=2; $fb - $fa" | bc)
RECV_CPU=$(echo "scale=2; $eb - $ea" | bc)
FF_RSS=$(rss_mb "${FF[@]}")
log "phase 2: ffmpeg $FF_CPU CPU s, estuary receiving $RECV_CPU CPU s; $live of $N streams live"

pct() { echo "scale=1; 100 * $1 / $DURATION" | bc; }
STAMP=$(date +%Y-%m-%d-%H%M)
OUT="$ROOT/bench/results/pull-cost-$STAMP.md"
{
    echo "# Pulling $N live HLS sources: Estuary vs ffmpeg -c copy ($STAMP)"
    echo
    echo "720p 2.5 Mbps H.264 + 128k AAC, 2-s segments, python3 -m http.server on loopback;"
    echo "${DURATION} s measured after ${WARMUP} s of warm-up; $(nproc) cores, $(uname -r)."
    echo
    echo "| what | CPU s in ${DURATION} s | % of one core | RSS MiB |"
    echo "| --- | ---: | ---: | ---: |"
    echo "| Estuary pulling $N sources ($online_end online) | $PULL_CPU | $(pct "$PULL_CPU") | $PULL_RSS |"
    echo "| $N \`ffmpeg -c copy\` processes ($live streams live) | $FF_CPU | $(pct "$FF_CPU") | $FF_RSS |"
    echo "| Estuary receiving their $N RTMP pushes | $RECV_CPU | $(pct "$RECV_CPU") | |"
} | tee "$OUT"
log "report: $OUT"
