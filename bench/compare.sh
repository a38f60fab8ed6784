#!/usr/bin/env bash
# Side by side: Estuary and nginx-rtmp under the same load, one Markdown table.
#
#   bench/compare.sh [--quick] [--servers "estuary nginx"] [--duration SECS] [--only REGEX] [--out FILE]
#
# Each scenario starts a fresh server pinned to core 0 (taskset -c 0) and runs estuary-bench
# pinned to core 1 against it, on loopback only. Scenarios (plus Estuary with
# stream.merge_write_ms = 100 and 350 at 1000 RTMP viewers):
#   fan-out  1 publisher (720p 2.5 Mbps H.264 + AAC) to 100/500/1000/2000 RTMP viewers
#            (and, for Estuary, the same counts of HTTP-FLV viewers);
#   hls      1 publisher, 500 HLS viewers;
#   ingest   50 publishers at 2.5 Mbps each, HLS on, no viewers;
#   record   (Estuary) 20 publishers, 10 RTMP viewers each, recording off and on.
# --quick: short runs and fewer viewer counts, to smoke-test the whole thing in minutes.
# --only REGEX: run only the scenarios whose name (e.g. fan-out-rtmp-500-nginx) matches.
# Binaries go to $CARGO_TARGET_DIR (default target/); COMPARE_ESTUARY=BIN runs that Estuary.
# The JSON and text report of every run stay in bench/results/compare-<date>/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

QUICK=0
SERVERS="estuary nginx"
DURATION=""
OUT=""
ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --servers) SERVERS="$2"; shift ;;
        --duration) DURATION="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --only) ONLY="$2"; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

if [ "$QUICK" = 1 ]; then
    FANOUT_COUNTS="100 500"
    HLS_VIEWERS=100
    INGEST_PUBLISHERS=10
    RECORD_STREAMS=5
    DURATION=${DURATION:-8}
    WARMUP=6
else
    FANOUT_COUNTS="100 500 1000 2000"
    HLS_VIEWERS=500
    INGEST_PUBLISHERS=50
    RECORD_STREAMS=20
    DURATION=${DURATION:-30}
    WARMUP=8
fi

STAMP=$(date +%Y-%m-%d-%H%M)
RESULTS="$ROOT/bench/results"
RUNDIR="$RESULTS/compare-$STAMP"
OUT=${OUT:-$RESULTS/compare-$STAMP.md}
mkdir -p "$RUNDIR"
WORK=$(mktemp -d /tmp/estuary-compare.XXXXXX)
SERVER_PID=""

cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "compare.sh: $*" >&2; }

# --- tools -----------------------------------------------------------------------------

need_nginx() {
    if command -v nginx >/dev/null && [ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ]; then
        return 0
    fi
    log "installing nginx + libnginx-mod-rtmp"
    if ! apt-get install -y nginx libnginx-mod-rtmp >"$WORK/apt.log" 2>&1; then
        apt-get update >>"$WORK/apt.log" 2>&1
        apt-get install -y nginx libnginx-mod-rtmp >>"$WORK/apt.log" 2>&1
    fi
    # The package starts a system nginx on :80; we run our own.
    if command -v systemctl >/dev/null; then systemctl stop nginx >/dev/null 2>&1 || true; fi
}

log "building release binaries"
cargo build --release -p estuary-bench --bins --example kernel_floor >&2
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH="$TARGET/release/estuary-bench"
FLOOR="$TARGET/release/examples/kernel_floor"
ESTUARY="$TARGET/release/estuary"
# COMPARE_ESTUARY=/path/to/estuary runs that build instead (an A/B against another commit).
if [ -n "${COMPARE_ESTUARY:-}" ]; then
    ESTUARY="$COMPARE_ESTUARY"
elif [[ " $SERVERS " == *" estuary "* ]]; then
    if ! cargo build --release -p estuary >&2; then
        log "Estuary does not build; comparing nginx-rtmp only"
        SERVERS=${SERVERS//estuary/}
    fi
fi
if [[ " $SERVERS " == *" nginx "* ]]; then need_nginx; fi

# The clip is generated once (ffmpeg) by the bench itself when missing.
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
        if [ -n "$SERVER_PID" ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

# --- servers ---------------------------------------------------------------------------

start_nginx() {
    local dir="$WORK/nginx"
    rm -rf "$dir"; mkdir -p "$dir/hls" "$dir/logs"
    cat >"$dir/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 20000; }
rtmp {
    server {
        listen 127.0.0.1:$RTMP_PORT;
        chunk_size 4096;
        application live {
            live on;
            hls on;
            hls_path $dir/hls;
            hls_fragment 2s;
            hls_playlist_length 12s;
        }
    }
}
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$HTTP_PORT;
        location /hls/ {
            alias $dir/hls/;
            types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
            add_header Cache-Control no-cache;
        }
    }
}
EOF
    taskset -c 0 nginx -c "$dir/nginx.conf" -p "$dir" >"$dir/logs/stdout.log" 2>&1 &
    SERVER_PID=$!
}

start_estuary() {
    local dir="$WORK/estuary"
    rm -rf "$dir"; mkdir -p "$dir"
    {
        printf '[rtmp]\nlisten = "127.0.0.1:%s"\n[http]\nlisten = "127.0.0.1:%s"\n' "$RTMP_PORT" "$HTTP_PORT"
        # The same HLS settings as nginx's: 2 s fragments, a 12 s (6-segment) playlist.
        printf '[hls]\nfragment_ms = 2000\nwindow_segments = 6\n'
        # Every viewer comes from loopback: the per-IP limits would refuse the load itself.
        printf '[limits]\nper_ip_exempt = ["127.0.0.0/8"]\n'
        printf '%b\n' "${ESTUARY_EXTRA_TOML:-}"
        printf '%b\n' "${RUN_TOML:-}"
    } >"$dir/estuary.toml"
    RUST_LOG=${RUST_LOG:-warn} taskset -c 0 "$ESTUARY" -c "$dir/estuary.toml" >"$dir/estuary.log" 2>&1 &
    SERVER_PID=$!
}

start_server() {
    RTMP_PORT=$(free_port 41935)
    HTTP_PORT=$(free_port 48080)
    case "$1" in
        nginx) start_nginx ;;
        estuary) start_estuary ;;
    esac
    if ! wait_port "$RTMP_PORT" || ! wait_port "$HTTP_PORT"; then
        log "$1 did not start; its log:"
        tail -20 "$WORK"/"$1"/*.log "$WORK"/"$1"/logs/*.log 2>/dev/null >&2 || true
        stop_server
        return 1
    fi
}

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

urls() {
    PUBLISH="rtmp://127.0.0.1:$RTMP_PORT/live/{stream}"
    FLV="http://127.0.0.1:$HTTP_PORT/live/{stream}.flv"
    if [ "$1" = nginx ]; then
        HLS="http://127.0.0.1:$HTTP_PORT/hls/{stream}.m3u8"
    else
        HLS="http://127.0.0.1:$HTTP_PORT/live/{stream}.m3u8"
    fi
}

# run SERVER SCENARIO LABEL BENCH-ARGS...
run() {
    local server=$1 scenario=$2 label=$3; shift 3
    local name="$scenario-$label-$server"
    if [ -n "$ONLY" ] && ! [[ "$name" =~ $ONLY ]]; then return 0; fi
    if ! start_server "$server"; then
        echo "{\"failed\": \"$server did not start\"}" >"$RUNDIR/$name.json"
        printf '%s\t%s\t%s\t%s\n' "$scenario" "$label" "$server" "$RUNDIR/$name.json" >>"$RUNDIR/index.tsv"
        return 0
    fi
    urls "$server"
    log "$name"
    if ! taskset -c 1 "$BENCH" --clip "$CLIP" --server-pid "$SERVER_PID" --label "$name" \
        --publish-url "$PUBLISH" --flv-url "$FLV" --hls-url "$HLS" \
        --warmup-secs "$WARMUP" --duration-secs "$DURATION" --ramp-secs 3 \
        --json "$RUNDIR/$name.json" "$@" >"$RUNDIR/$name.txt" 2>&1; then
        log "$name: the bench failed: $(tail -3 "$RUNDIR/$name.txt")"
        echo "{\"failed\": \"bench failed\"}" >"$RUNDIR/$name.json"
    fi
    cat "$RUNDIR/$name.txt" >&2
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "$server exited during $name"
    fi
    stop_server
    printf '%s\t%s\t%s\t%s\n' "$scenario" "$label" "$server" "$RUNDIR/$name.json" >>"$RUNDIR/index.tsv"
    sleep 1
}

: >"$RUNDIR/index.tsv"
for n in $FANOUT_COUNTS; do
    for s in $SERVERS; do
        run "$s" fan-out "rtmp-$n" --rtmp-viewers "$n"
        if [ "$s" = estuary ]; then
            run "$s" fan-out "http-flv-$n" --flv-viewers "$n"
        fi
    done
done
# Estuary with merged writes (stream.merge_write_ms): fewer, larger writes per viewer for
# that much added latency, the trade SRS makes by default (mw_latency 350 ms).
if [[ " $SERVERS " == *" estuary "* ]]; then
    MERGE_N=1000
    [[ " $FANOUT_COUNTS " == *" 1000 "* ]] || MERGE_N=${FANOUT_COUNTS##* }
    for ms in 100 350; do
        RUN_TOML="[stream]\nmerge_write_ms = $ms" run estuary fan-out "rtmp-$MERGE_N-merge$ms" --rtmp-viewers "$MERGE_N"
    done
fi
# The kernel's own floor for that fan-out (bench/examples/kernel_floor.rs): a "server" that
# only sends each frame to each socket, once with viewers that just read (as HTTP-FLV
# players) and once with viewers that first make request/reply round trips (as an RTMP
# player's handshake and connect/play), which leaves their TCP in delayed-ACK mode.
if [[ " $SERVERS " == *" estuary "* ]]; then
    FLOOR_N=${MERGE_N:-1000}
    for rt in 0 4; do
        label=$([ "$rt" = 0 ] && echo "http-flv-like-$FLOOR_N" || echo "rtmp-like-$FLOOR_N")
        name="fan-out-floor-$label"
        if [ -n "$ONLY" ] && ! [[ "$name" =~ $ONLY ]]; then continue; fi
        log "$name"
        if ! "$FLOOR" --viewers "$FLOOR_N" --secs "$DURATION" --round-trips "$rt" \
            --json "$RUNDIR/$name.json" >"$RUNDIR/$name.txt" 2>&1; then
            echo "{\"failed\": \"kernel_floor failed\"}" >"$RUNDIR/$name.json"
        fi
        cat "$RUNDIR/$name.txt" >&2
        printf '%s\t%s\t%s\t%s\n' "fan-out" "floor-$label" "kernel" "$RUNDIR/$name.json" >>"$RUNDIR/index.tsv"
        sleep 1
    done
fi
for s in $SERVERS; do
    run "$s" hls "hls-$HLS_VIEWERS" --hls-viewers "$HLS_VIEWERS"
done
for s in $SERVERS; do
    run "$s" ingest "publishers-$INGEST_PUBLISHERS" --publishers "$INGEST_PUBLISHERS"
done
# Recording: 20 streams recorded at once (MP4, a writer thread each) against the same load
# unrecorded, 10 RTMP viewers per stream: the viewers' latency must not rise (issue 10).
if [[ " $SERVERS " == *" estuary "* ]]; then
    for rec in off on; do
        toml=""
        if [ "$rec" = on ]; then
            toml="[record]\nenabled = true\nposter = false\nroot = \"$WORK/recordings\""
        fi
        RUN_TOML="$toml" run estuary record "publishers-$RECORD_STREAMS-rtmp-$((RECORD_STREAMS * 10))-record-$rec" \
            --publishers "$RECORD_STREAMS" --rtmp-viewers "$((RECORD_STREAMS * 10))"
        rm -rf "$WORK/recordings"
    done
fi

# --- the table -------------------------------------------------------------------------

python3 - "$RUNDIR/index.tsv" "$OUT" "$QUICK" "$DURATION" "$WARMUP" <<'PY'
import json, os, subprocess, sys
index, out, quick, duration, warmup = sys.argv[1:6]

def f(v, fmt="{:.0f}"):
    return "-" if v is None else fmt.format(v)

rows = []
for line in open(index):
    scenario, label, server, path = line.rstrip("\n").split("\t")
    try:
        r = json.load(open(path))
    except Exception as e:  # noqa: BLE001
        r = {"failed": f"no report ({e})"}
    if "failed" in r:
        rows.append(f"| {scenario} | {label} | {server} | failed: {r['failed']} |" + " |" * 9)
        continue
    if r.get("floor"):
        n = r["viewers"]
        rows.append(
            f"| {scenario} | {label} | {server} | {n}/{n} | {r['cpu_seconds']:.1f} ({100 * r['cpu_utilisation']:.0f}%) "
            f"| {r['cpu_seconds_per_gb']:.2f} | - | - | - | - | - | - | - |"
        )
        continue
    s = r.get("server") or {}
    v = r["viewers"][0] if r["viewers"] else None
    p = r["publishers"]
    if v:
        ok = f"{v['connected']}/{v['viewers']}"
        missing = v["frames_missing"]
        startup = f(v["startup"]["p50_ms"])
        p99 = f(v["latency"]["p99_ms"])
        stalls = v["stalls"]
        pl = v.get("playlist_latency")
        first = v.get("playlist_latency_first_viewer")
        playlist = f"{f(pl['p50_ms'])} / {f(pl['p95_ms'])}" if pl else "-"
        if first:
            playlist += f" (first viewer {f(first['p50_ms'])} / {f(first['p95_ms'])})"
    else:
        ok = f"{p['started']}/{p['count']} pub"
        missing = startup = p99 = stalls = playlist = "-"
    cpu = f"{s.get('cpu_seconds', 0):.1f} ({100 * s.get('cpu_utilisation', 0):.0f}%)" if s else "-"
    rows.append(
        f"| {scenario} | {label} | {server} | {ok} | {cpu} | {f(s.get('cpu_seconds_per_gb'), '{:.2f}')} "
        f"| {missing} | {startup} | {p99} | {playlist} | {stalls} | {f(s.get('peak_rss_mb'), '{:.1f}')} "
        f"| {r['bench_cpu_seconds']:.1f} |"
    )

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:  # noqa: BLE001
        return "?"

with open(out, "w") as o:
    o.write("# Estuary vs nginx-rtmp\n\n")
    o.write(f"- date: {sh('date -u +%Y-%m-%dT%H:%MZ')}, commit {sh('git rev-parse --short HEAD')}, "
            f"{'quick' if quick == '1' else 'full'} run: {warmup} s warm-up, {duration} s measured per scenario\n")
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    o.write(f"- machine: {sh('nproc')} cores, {sh('uname -r')}, load average at the end: {load}; "
            "server pinned to core 0, bench to core 1, loopback\n")
    o.write("- clip: 720p30 H.264 2.5 Mbps (keyframe every 2 s) + AAC 128 kbps, looped; every video frame "
            "tagged with an SEI so received frames are matched to sent ones\n")
    o.write("- nginx-rtmp: Debian nginx + libnginx-mod-rtmp, one worker, `live on; hls on; hls_fragment 2s; "
            "hls_playlist_length 12s` (HLS on in every scenario); no HTTP-FLV in nginx-rtmp\n")
    o.write("- Estuary: defaults plus listen addresses (see the JSON reports for everything else)\n\n")
    o.write("| scenario | run | server | ok/all | server CPU s (% core) | CPU s/GB | frames missing "
            "| startup p50 ms | latency p99 ms | playlist latency p50 / p95 ms (first viewer to see it) | stalls | peak RSS MB | bench CPU s |\n")
    o.write("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    o.write("\n".join(rows) + "\n\n")
    o.write("Reading it: *startup* is TCP connect to first keyframe received; *latency* is the publisher's "
            "send of a frame to the viewer's kernel receive timestamp, for frames sent after the viewer "
            "joined (so a GOP-cache burst does not count); for HLS it is the segment's arrival. *Playlist "
            "latency* is the closing keyframe of a segment sent → the playlist listing it (viewers poll "
            "every 500 ms, so up to 500 ms of it is polling). *CPU s/GB* is server CPU seconds per 10^9 "
            "bytes the viewers received. The *kernel* rows are `bench/examples/kernel_floor.rs`: a sender "
            "thread that does nothing but `send` a 2.7 Mbps frame to every socket 30 times a second, i.e. "
            "what the kernel alone charges for one write per frame per viewer. Per-run reports: `" + os.path.relpath(os.path.dirname(index)) + "/`.\n")
print(open(out).read())
PY
log "wrote $OUT"
