#!/usr/bin/env python3
"""Live latency of HLS in hls.js (issue 16, item 4): LL-HLS against classic HLS.

Starts `estuary` (release build if present, else debug) on 127.0.0.1 (ports 19350/18080),
pinned to core 0, with two apps: `ll` packaged as fMP4 with LL-HLS
(`[apps.ll.hls] variant = "fmp4"`) and `classic` as MPEG-TS (`[apps.classic.hls] variant =
"ts"`). ffmpeg publishes a test clip (640x360 H.264 with B-frames + AAC, generated here with
ffmpeg: 1-s or 2-s GOP) to both with `-c copy`. Each run then plays one of them for SECONDS
in hls.js in headless Chromium (`tests/browser/play-hls.mjs`, pinned to core 1), which
samples once a second `now - hls.playingDate` once playing: the program date time is the
arrival time the server stamped at ingest, so the figure covers packaging and delivery.
Prints, per run, median / p95 latency, stalls (hls.js BUFFER_STALLED_ERROR), frozen seconds
(1-s samples in which the playhead moved less than 0.5 s, reported or not), playlist
reloads, parts loaded, the first sample, and hls.js's own view (its latency and target, the
buffer ahead); writes everything as JSON to --json. Before the players, 20 s of blocking
reloads next to the server measure how old the live edge is when a reload answers.

The hls.js settings of each run are what a player page sets:
  ll-default   `{lowLatencyMode: true}` (hls.js's defaults otherwise);
  ll-catchup   `{lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5}`: hls.js plays at up to
               1.5x while it is behind its target (PART-HOLD-BACK) with more than 1 s buffered;
  classic      hls.js's defaults.

    python3 bench/hls-latency.py [--seconds 60] [--part-ms 300] [--gop 2]
        [--runs ll-default,ll-catchup,classic] [--json FILE]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ARGS = argparse.ArgumentParser(description="LL-HLS and classic HLS latency in hls.js")
ARGS.add_argument("seconds_pos", nargs="?", type=int, help=argparse.SUPPRESS)
ARGS.add_argument("--seconds", type=int, default=60, help="seconds of hls.js per run")
ARGS.add_argument("--part-ms", type=int, default=None, help="hls.part_ms (server default when absent)")
ARGS.add_argument("--gop", type=int, default=2, choices=(1, 2), help="publisher's keyframe interval, s")
ARGS.add_argument("--runs", default="ll-default,ll-catchup,classic")
ARGS.add_argument("--json", help="write the runs' figures here")
OPTS = ARGS.parse_args()
SECONDS = OPTS.seconds_pos or OPTS.seconds
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BINARY = next(
    (p for p in (os.path.join(TARGET, "release", "estuary"), os.path.join(TARGET, "debug", "estuary")) if os.path.exists(p)),
    None,
)
MEDIA = os.path.join(TARGET, "test-media")
RUNS = {
    "ll-default": ("ll", "LL-HLS, {lowLatencyMode: true}", "low-latency"),
    "ll-catchup": ("ll", "LL-HLS, + maxLiveSyncPlaybackRate: 1.5", "low-latency,catch-up"),
    "classic": ("classic", "classic HLS (MPEG-TS), hls.js defaults", None),
}


def clip(gop_s):
    """A 12-s 640x360@30 H.264 (B-frames) + AAC clip with a keyframe every `gop_s` s."""
    path = os.path.join(MEDIA, f"latency-gop{gop_s}.flv")
    if not os.path.exists(path):
        os.makedirs(MEDIA, exist_ok=True)
        frames = str(30 * gop_s)
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y",
             "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
             "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", frames, "-keyint_min", frames,
             "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-b:v", "600k", "-maxrate", "800k",
             "-bufsize", "800k", "-c:a", "aac", "-b:a", "96k", "-ac", "2", "-t", "12",
             "-f", "flv", path + ".tmp"], check=True)
        os.rename(path + ".tmp", path)
    return path


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
    args = ["taskset", "-c", "1", "node", "play-hls.mjs", url, str(SECONDS)] + ([mode] if mode else [])
    out = subprocess.run(args, cwd=os.path.join(ROOT, "tests", "browser"), capture_output=True, text=True,
                         timeout=SECONDS + 120)
    line = next((l for l in reversed(out.stdout.splitlines()) if l.startswith("{")), None)
    if not line:
        sys.exit(f"play-hls.mjs printed no JSON:\n{out.stdout}\n{out.stderr}")
    return json.loads(line)


def edge_probe(url, seconds):
    """How old the playlist's live edge is the moment a blocking reload answers: for each next
    part, `_HLS_msn`/`_HLS_part` is asked, and on the answer the edge (the last segment's
    program date time + its duration + the open segment's parts) is subtracted from now. With
    dates stamped at ingest, that is how long after its frames arrived a part is served."""
    import datetime
    import re
    ages, waits = [], []
    msn = part = None
    deadline = time.time() + seconds
    while time.time() < deadline:
        q = f"?_HLS_msn={msn}&_HLS_part={part}" if msn is not None else ""
        asked = time.time()
        with urllib.request.urlopen(url + q, timeout=10) as r:
            text = r.read().decode()
        now = time.time()
        pdt = dur = seq = last_sn = None
        for line in text.splitlines():
            if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
                seq = int(line.split(":")[1]) - 1
            elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
                pdt = datetime.datetime.fromisoformat(line.split(":", 1)[1].replace("Z", "+00:00")).timestamp()
            elif line.startswith("#EXTINF:"):
                dur = float(line[8:].split(",")[0])
                seq += 1
                last_sn = seq
        if pdt is None or last_sn is None:
            time.sleep(0.1)
            continue
        # The parts after the last segment's URI are those of the open segment.
        tail = text.split("#EXTINF")[-1].split("\n", 2)[-1]
        open_parts = [float(x) for x in re.findall(r"#EXT-X-PART:DURATION=([0-9.]+)", tail)]
        edge = pdt + dur + sum(open_parts)
        if msn is not None:
            ages.append(now - edge)
            waits.append(now - asked)
        msn, part = last_sn + 1, len(open_parts)
    return ages, waits


def summary(key, label, r):
    lat = sorted(r.get("latencies", []))
    trace = r.get("trace", [])
    first = r.get("firstPlaying") or {}
    ev = r.get("events", {})
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    return {
        "run": key, "label": label,
        "median_s": med(lat), "p95_s": lat[int(0.95 * (len(lat) - 1))] if lat else float("nan"),
        "min_s": lat[0] if lat else float("nan"), "max_s": lat[-1] if lat else float("nan"),
        "stalls": r.get("stalls", 0), "waiting": r.get("waiting", 0),
        # One-second samples in which the playhead moved less than half a second: a freeze a
        # viewer sees, whether or not hls.js or the element report it.
        "frozen_samples": sum(1 for a, b in zip(trace, trace[1:])
                              if "currentTime" in a and b["currentTime"] - a["currentTime"] < 0.5), "reloads": ev.get("levelLoaded", 0), "parts": ev.get("partLoaded", 0),
        "played_s": r.get("currentTime", 0), "fatal": r.get("fatalErrors", []),
        # hls.js's own view: latency from its estimate of the live edge, its target, the buffer ahead.
        "hls_latency_median_s": med([t["hlsLatency"] for t in trace if t.get("hlsLatency") is not None]),
        "hls_target_median_s": med([t["target"] for t in trace if t.get("target") is not None]),
        "forward_buffer_median_s": med([t["forward"] for t in trace]),
        "first_sample_s": lat and r["latencies"][0],
        "started_behind_sync_s": (first["startPosition"] - first["currentTime"])
        if first.get("startPosition") is not None and first.get("currentTime") is not None else None,
        "first_playing": first,
        "latencies": r.get("latencies", []),
    }


def main():
    if not BINARY:
        sys.exit("build estuary first (cargo build --release -p estuary)")
    source = clip(OPTS.gop)
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as cfg:
        cfg.write(
            '[rtmp]\nlisten = "127.0.0.1:19350"\n[http]\nlisten = "127.0.0.1:18080"\n'
            + (f"[hls]\npart_ms = {OPTS.part_ms}\n" if OPTS.part_ms else "")
            + '[apps.ll.hls]\nvariant = "fmp4"\n[apps.classic.hls]\nvariant = "ts"\n'
        )
    server = subprocess.Popen(["taskset", "-c", "0", BINARY, "-c", cfg.name],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    publishers = []
    try:
        time.sleep(1.0)
        for app in ("ll", "classic"):
            publishers.append(subprocess.Popen(
                ["taskset", "-c", "1", "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
                 "-stream_loop", "-1", "-i", source, "-c", "copy", "-f", "flv",
                 f"rtmp://127.0.0.1:19350/{app}/cam"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        rows = []
        wait_for(f"http://127.0.0.1:18080/ll/cam.media.m3u8")
        time.sleep(3)
        ages, waits = edge_probe("http://127.0.0.1:18080/ll/cam.media.m3u8", 20)
        edge = {"edge_age_median_s": statistics.median(ages), "edge_age_max_s": max(ages),
                "blocking_wait_median_s": statistics.median(waits), "answers": len(ages)}
        for key in OPTS.runs.split(","):
            app, label, mode = RUNS[key]
            url = f"http://127.0.0.1:18080/{app}/cam.m3u8"
            wait_for(url)
            rows.append(summary(key, label, play(url, mode)))
        print(f"LL-HLS live edge, 20 s of blocking reloads next to the server: the edge is"
              f" {edge['edge_age_median_s']:.3f} s old (median; max {edge['edge_age_max_s']:.3f}) when a"
              f" reload answers ({edge['answers']} answers, each waited {edge['blocking_wait_median_s']:.3f} s)")
        part = f"part_ms {OPTS.part_ms}" if OPTS.part_ms else "part_ms default"
        print(f"server: {os.path.relpath(BINARY, ROOT)}, {part}, {OPTS.gop}-s GOP, {SECONDS} s of hls.js per run")
        print(f"{'run':40} {'median':>7} {'p95':>6} {'stalls':>6} {'frozen':>6} {'reloads':>7} {'parts':>6} {'played':>7}"
              f" {'hls.js lat':>10} {'target':>6} {'ahead':>6} {'start':>6}")
        for r in rows:
            print(f"{r['label']:40} {r['median_s']:6.2f}s {r['p95_s']:5.2f}s {r['stalls']:6} {r['frozen_samples']:6} {r['reloads']:7}"
                  f" {r['parts']:6} {r['played_s']:6.1f}s {r['hls_latency_median_s']:9.2f}s"
                  f" {r['hls_target_median_s']:5.2f}s {r['forward_buffer_median_s']:5.2f}s"
                  f" {r['first_sample_s'] or float('nan'):5.2f}s"
                  + (f"  fatal: {r['fatal']}" if r["fatal"] else ""))
        if OPTS.json:
            with open(OPTS.json, "w") as f:
                json.dump({"seconds": SECONDS, "part_ms": OPTS.part_ms, "gop_s": OPTS.gop,
                           "server": os.path.relpath(BINARY, ROOT), "edge": edge, "runs": rows}, f, indent=1)
    finally:
        for p in publishers:
            p.kill()
            p.wait()
        server.kill()
        server.wait()
        os.unlink(cfg.name)


main()
