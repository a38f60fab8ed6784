#!/usr/bin/env python3
"""What a request for a key nobody publishes costs the server, against an idle connection.

Starts the release `estuary` on 127.0.0.1 (ports 19350/18080, per-IP limits lifted for
loopback), opens N HTTP-FLV requests for N random unpublished keys (each waits
`play.wait_for_publisher_ms`, default 10 s), then N idle keep-alive connections after a
`GET /healthz`, and prints VmRSS growth per request for each. Stops by itself.

    cargo build --release -p estuary && python3 bench/waiting-cost.py [N=2000]
"""
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
BINARY = os.path.join(os.path.dirname(__file__), "..", "target", "release", "estuary")
resource.setrlimit(resource.RLIMIT_NOFILE, (4 * N + 100, 4 * N + 100))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


def measure(path_of):
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as cfg:
        cfg.write(
            '[rtmp]\nlisten = "127.0.0.1:19350"\n[http]\nlisten = "127.0.0.1:18080"\n'
            '[limits]\nper_ip_exempt = ["127.0.0.0/8"]\nmax_connections = 100000\n'
        )
    server = subprocess.Popen([BINARY, "-c", cfg.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        socks = []

        def open_one(path):
            s = socket.create_connection(("127.0.0.1", 18080))
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            socks.append(s)

        for i in range(20):  # what any first requests allocate
            open_one(path_of(f"warm{i}"))
        time.sleep(1)
        before = rss_kb(server.pid)
        for i in range(N):
            open_one(path_of(f"r{i}"))
        time.sleep(2)
        after = rss_kb(server.pid)
        for s in socks:
            s.close()
        return before, after
    finally:
        server.kill()
        server.wait()
        os.unlink(cfg.name)


for name, path_of in [
    ("waiting .flv request", lambda k: f"/live/{k}.flv"),
    ("idle keep-alive connection", lambda k: "/healthz"),
]:
    before, after = measure(path_of)
    print(f"{N} x {name}: VmRSS {before} -> {after} kB, {(after - before) * 1024 / N:.0f} bytes each")
