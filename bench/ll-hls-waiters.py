#!/usr/bin/env python3
"""What N blocked LL-HLS playlist reloads cost the server (issue 16: "1000 blocked reloads
cost almost nothing").

Starts `estuary` (release build if present, else debug) on 127.0.0.1 (ports 19350/18080,
hls.variant = "fmp4", per-IP limits lifted for loopback), publishes the test clip with
ffmpeg, waits for the LL-HLS media playlist, then measures the server over WINDOW seconds
twice: once with no waiter, once while N requests `_HLS_msn=<last segment + 2>` are
blocked (each waits for a segment about two segments ahead, never more than three target
durations). It prints the server's CPU time over each window, its VmRSS growth and
`estuary_tasks` (from /metrics) with the waiters parked, and how many waiters got a 200.

    cargo build --release -p estuary && python3 bench/ll-hls-waiters.py [N=1000]
"""
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
WINDOW = 3.0
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BINARY = next(
    (p for p in (os.path.join(TARGET, "release", "estuary"), os.path.join(TARGET, "debug", "estuary")) if os.path.exists(p)),
    None,
)
CLIP = os.environ.get("CLIP", os.path.join(TARGET, "test-media", "main-640x360.flv"))
HZ = os.sysconf("SC_CLK_TCK")
resource.setrlimit(resource.RLIMIT_NOFILE, (4 * N + 200, 4 * N + 200))
MEDIA = "http://127.0.0.1:18080/live/w.media.m3u8"


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


def tasks():
    with urllib.request.urlopen("http://127.0.0.1:18080/metrics", timeout=5) as r:
        m = re.search(rb"^estuary_tasks (\d+)", r.read(), re.M)
        return int(m.group(1)) if m else -1


def playlist():
    with urllib.request.urlopen(MEDIA, timeout=5) as r:
        return r.read().decode()


def main():
    if not BINARY:
        sys.exit("build estuary first (cargo build --release -p estuary)")
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as cfg:
        cfg.write(
            '[rtmp]\nlisten = "127.0.0.1:19350"\n[http]\nlisten = "127.0.0.1:18080"\n'
            '[limits]\nper_ip_exempt = ["127.0.0.0/8"]\nmax_connections = 100000\n'
            '[hls]\nvariant = "fmp4"\n'
        )
    server = subprocess.Popen([BINARY, "-c", cfg.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    publisher = None
    try:
        time.sleep(1.0)
        publisher = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1",
             "-i", CLIP, "-c", "copy", "-f", "flv", "rtmp://127.0.0.1:19350/live/w"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if "#EXTINF" in playlist():
                    break
            except OSError:
                pass
            time.sleep(0.2)
        time.sleep(2)
        c0 = cpu_s(server.pid)
        time.sleep(WINDOW)
        idle_cpu = cpu_s(server.pid) - c0
        tasks_idle, rss_idle = tasks(), rss_kb(server.pid)

        text = playlist()
        seq = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))
        last = seq + text.count("#EXTINF") - 1
        ask = last + 2
        socks = []
        for _ in range(N):
            s = socket.create_connection(("127.0.0.1", 18080))
            s.sendall(f"GET /live/w.media.m3u8?_HLS_msn={ask} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            socks.append(s)
        time.sleep(0.3)
        c0 = cpu_s(server.pid)
        t0 = time.time()
        time.sleep(WINDOW)
        blocked_cpu = cpu_s(server.pid) - c0
        waited = time.time() - t0
        tasks_blocked, rss_blocked = tasks(), rss_kb(server.pid)
        ok = 0
        for s in socks:
            s.settimeout(15)
            try:
                head = s.recv(64)
                ok += head.startswith(b"HTTP/1.1 200")
            except OSError:
                pass
            s.close()
        print(f"server: {os.path.relpath(BINARY, ROOT)}, {N} blocked reloads for segment {ask} (last listed {last})")
        print(f"CPU over {WINDOW:.0f} s: {idle_cpu:.3f} s with no waiter, {blocked_cpu:.3f} s with {N} waiting "
              f"({(blocked_cpu - idle_cpu) / WINDOW * 100:.2f}% of a core more)")
        print(f"estuary_tasks: {tasks_idle} -> {tasks_blocked}; VmRSS {rss_idle} -> {rss_blocked} kB "
              f"({(rss_blocked - rss_idle) * 1024 / N:.0f} bytes per waiter)")
        print(f"answered 200: {ok}/{N} (waited at least {waited:.1f} s)")
    finally:
        if publisher:
            publisher.kill()
            publisher.wait()
        server.kill()
        server.wait()
        os.unlink(cfg.name)


main()
