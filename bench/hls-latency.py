#!/usr/bin/env python3
"""Live latency of HLS in hls.js (issue 16, item 4): LL-HLS against classic HLS.

Starts `estuary` (release build if present, else debug) on 127.0.0.1 (ports 19350/18080)
with two apps: `ll` packaged as fMP4 with LL-HLS (`[apps.ll.hls] variant = "fmp4"`) and
`classic` as MPEG-TS (`[apps.classic.hls] variant = "ts"`). ffmpeg publishes the test clip
(H.264 + AAC, 2-s GOP) to both. Each is then played for SECONDS in hls.js in headless
Chromium (`tests/browser/play-hls.mjs`; low-latency mode for `ll`), which samples once a
second `now - hls.playingDate` once playing: the program date time is the arrival time the server
stamped at ingest, so the figure covers packaging and delivery. LL-HLS is played twice: with
hls.js's defaults, and letting it play at up to 1.5x to reach its target latency
(`maxLiveSyncPlaybackRate`; it starts at an independent part, up to a GOP early). Prints
median / p95 latency, stalls (hls.js BUFFER_STALLED_ERROR) and playlist reloads per run.
Parts 300 ms (hold-back 0.9 s), MPEG-TS segments 2 s (target 3 s).

    python3 bench/hls-latency.py [SECONDS=60]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 60
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BINARY = next(
    (p for p in (os.path.join(TARGET, "release", "estuary"), os.path.join(TARGET, "debug", "estuary")) if os.path.exists(p)),
    None,
)
CLIP = os.environ.get("CLIP", os.path.join(TARGET, "test-media", "main-640x360.flv"))


def wait_for(url, deadline_s=30):
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    sys.exit(f"{url} never answered")


def play(url, mode):
    args = ["node", "play-hls.mjs", url, str(SECONDS)] + ([mode] if mode else [])
    out = subprocess.run(args, cwd=os.path.join(ROOT, "tests", "browser"), capture_output=True, text=True,
                         timeout=SECONDS + 120)
    line = next((l for l in reversed(out.stdout.splitlines()) if l.startswith("{")), None)
    if not line:
        sys.exit(f"play-hls.mjs printed no JSON:\n{out.stdout}\n{out.stderr}")
    return json.loads(line)


def main():
    if not BINARY:
        sys.exit("build estuary first (cargo build --release -p estuary)")
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as cfg:
        cfg.write(
            '[rtmp]\nlisten = "127.0.0.1:19350"\n[http]\nlisten = "127.0.0.1:18080"\n'
            '[apps.ll.hls]\nvariant = "fmp4"\n[apps.classic.hls]\nvariant = "ts"\n'
        )
    server = subprocess.Popen([BINARY, "-c", cfg.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    publishers = []
    try:
        time.sleep(1.0)
        for app in ("ll", "classic"):
            publishers.append(subprocess.Popen(
                ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1",
                 "-i", CLIP, "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:19350/{app}/cam"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        rows = []
        for app, label, mode in (("ll", "LL-HLS, hls.js low-latency mode", "low-latency"),
                                 ("ll", "LL-HLS, low-latency mode + catch-up (1.5x)", "low-latency,catch-up"),
                                 ("classic", "classic HLS (MPEG-TS), hls.js defaults", None)):
            url = f"http://127.0.0.1:18080/{app}/cam.m3u8"
            wait_for(url)
            r = play(url, mode)
            lat = sorted(r.get("latencies", []))
            fatal = r.get("fatalErrors", [])
            ev = r.get("events", {})
            rows.append((label, lat, r.get("stalls", 0), ev.get("levelLoaded", 0), ev.get("partLoaded", 0),
                         r.get("currentTime", 0), fatal))
        print(f"server: {os.path.relpath(BINARY, ROOT)}, {SECONDS} s of hls.js per run")
        print(f"{'run':48} {'median':>7} {'p95':>6} {'stalls':>6} {'reloads':>7} {'parts':>6} {'played':>7}")
        for label, lat, stalls, reloads, parts, played, fatal in rows:
            med = statistics.median(lat) if lat else float("nan")
            p95 = lat[int(0.95 * (len(lat) - 1))] if lat else float("nan")
            print(f"{label:48} {med:6.2f}s {p95:5.2f}s {stalls:6} {reloads:7} {parts:6} {played:6.1f}s"
                  + (f"  fatal: {fatal}" if fatal else ""))
    finally:
        for p in publishers:
            p.kill()
            p.wait()
        server.kill()
        server.wait()
        os.unlink(cfg.name)


main()
