#!/usr/bin/env bash
# The CPU of forwarding (issue 14): Estuary with N published streams (the bench's publishers,
# the 720p 2.5 Mbps clip), once without forwards and once with every stream forwarded to an
# upstream (nginx-rtmp, or a second Estuary), over the same window. The difference is what
# forwarding N streams costs. About two minutes with the defaults.
#
#   bench/forward.sh [--streams N] [--duration SECS] [--upstream nginx|estuary] [--out FILE]
#
# Estuary runs on core 0; the bench and the upstream on core 1. Each run checks, half-way,
# that /api/v1/forwards lists N forwards `connected`. Writes a Markdown report to
# bench/results/forward-STAMP.md (or --out) and prints it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

STREAMS=20
DURATION=30
WARMUP=6
UPSTREAM=nginx
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --streams) STREAMS="$2"; shift ;;
        --duration) DURATION="$2"; shift ;;
        --upstream) UPSTREAM="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "forward.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
case "$UPSTREAM" in nginx|estuary) ;; *) echo "forward.sh: --upstream nginx or estuary" >&2; exit 2 ;; esac

STAMP=$(date +%Y-%m-%d-%H%M)
OUT=${OUT:-$ROOT/bench/results/forward-$STAMP.md}
WORK=$(mktemp -d /tmp/estuary-forward.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "forward.sh: $*" >&2; }

log "building release binaries"
cargo build --release -p estuary -p estuary-bench --bins >&2
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH="$TARGET/release/estuary-bench"
ESTUARY="$TARGET/release/estuary"
CLIP="$ROOT/bench/media/clip-720p-2500k.flv"
if [ "$UPSTREAM" = nginx ] && ! { command -v nginx >/dev/null && [ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ]; }; then
    log "nginx-rtmp is missing: run scripts/install-test-deps.sh"; exit 1
fi

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

# The upstream, for both runs (the first does not use it).
UP_RTMP=$(free_port 42935)
if [ "$UPSTREAM" = nginx ]; then
    mkdir -p "$WORK/nginx/logs"
    cat >"$WORK/nginx/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 1024; }
rtmp { server { listen 127.0.0.1:$UP_RTMP; chunk_size 4096; application live { live on; } } }
EOF
    taskset -c 1 nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" >"$WORK/nginx/logs/stdout.log" 2>&1 &
else
    UP_HTTP=$(free_port 47080)
    printf '[limits]\nper_ip_exempt = ["127.0.0.0/8"]\n[hls]\nenabled = false\n' >"$WORK/upstream.toml"
    RUST_LOG=warn taskset -c 1 "$ESTUARY" -c "$WORK/upstream.toml" --rtmp-listen "127.0.0.1:$UP_RTMP" \
        --http-listen "127.0.0.1:$UP_HTTP" >"$WORK/upstream.log" 2>&1 &
fi
PIDS+=($!)
wait_port "$UP_RTMP"

# run LABEL EXTRA-TOML: Estuary on core 0 with N publishers; writes "cpu_seconds percent
# connected window_secs" to $WORK/LABEL.result.
run() {
    local label=$1 extra=$2
    local rtmp http pid bench connected
    rtmp=$(free_port 41935)
    http=$(free_port 48080)
    printf '[limits]\nper_ip_exempt = ["127.0.0.0/8"]\n%b\n' "$extra" >"$WORK/$label.toml"
    RUST_LOG=warn taskset -c 0 "$ESTUARY" -c "$WORK/$label.toml" --rtmp-listen "127.0.0.1:$rtmp" \
        --http-listen "127.0.0.1:$http" >"$WORK/$label.log" 2>&1 &
    pid=$!
    PIDS+=($pid)
    wait_port "$rtmp"
    wait_port "$http"
    taskset -c 1 "$BENCH" --clip "$CLIP" --server-pid "$pid" --label "forward-$label" \
        --publish-url "rtmp://127.0.0.1:$rtmp/live/{stream}" --publishers "$STREAMS" \
        --warmup-secs "$WARMUP" --duration-secs "$DURATION" \
        --json "$WORK/$label.json" >"$WORK/$label.txt" 2>&1 &
    bench=$!
    sleep $((WARMUP + DURATION / 2))
    connected=$(curl -s "http://127.0.0.1:$http/api/v1/forwards" | grep -o '"state":"connected"' | wc -l || true)
    if ! wait "$bench"; then
        log "$label: the bench failed:"; tail -5 "$WORK/$label.txt" >&2; exit 1
    fi
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$WORK/$label.json" "$connected" >"$WORK/$label.result" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
s = r.get("server") or {}
print(f'{s.get("cpu_seconds", 0):.2f} {100 * s.get("cpu_utilisation", 0):.1f} {sys.argv[2]} {r.get("window_secs", 0):.1f}')
EOF
}

log "run 1: $STREAMS streams, no forward"
run plain ""
read -r base_cpu base_pct _ window <"$WORK/plain.result"
log "run 2: $STREAMS streams, each forwarded to $UPSTREAM"
run forwarded "[forward]\nurls = [\"rtmp://127.0.0.1:$UP_RTMP/live/{stream}\"]"
read -r fwd_cpu fwd_pct connected _ <"$WORK/forwarded.result"

per_stream_ms=$(python3 -c "print(f'{1000 * ($fwd_cpu - $base_cpu) / $STREAMS / $window:.2f}')")
extra_pct=$(python3 -c "print(f'{$fwd_pct - $base_pct:.1f}')")
mkdir -p "$(dirname "$OUT")"
{
    echo "# Forwarding $STREAMS streams ($STAMP)"
    echo
    echo "- command: \`bench/forward.sh --streams $STREAMS --duration $DURATION --upstream $UPSTREAM\`"
    echo "- clip: bench/media/clip-720p-2500k.flv (720p30 H.264 2.5 Mbps + AAC 128 kbps), $STREAMS publishers from estuary-bench"
    echo "- Estuary (release) on core 0; bench and upstream ($UPSTREAM) on core 1; CPU = utime + stime of Estuary over ${window} s"
    echo "- forwards connected half-way through run 2: $connected of $STREAMS"
    echo
    echo "| run | Estuary CPU s | % of one core |"
    echo "| --- | ---: | ---: |"
    echo "| $STREAMS streams, no forward | $base_cpu | $base_pct |"
    echo "| $STREAMS streams, each forwarded to $UPSTREAM | $fwd_cpu | $fwd_pct |"
    echo
    echo "Forwarding $STREAMS streams: +$extra_pct % of one core, ${per_stream_ms} ms CPU per stream per second."
} >"$OUT"
cat "$OUT"
if [ "$connected" != "$STREAMS" ]; then
    log "only $connected of $STREAMS forwards were connected"; exit 1
fi
