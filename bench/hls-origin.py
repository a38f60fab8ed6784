#!/usr/bin/env python3
"""Live HLS origin for bench/pull-cost.sh: COUNT playlists s1..sCOUNT/live.m3u8 under ROOT,
each a sliding window over the same pre-encoded segments (/seg/aN.ts, DURATION s each),
advancing in real time from when this script starts. No loop: the content must outlast the
run. The files are served by `python3 -m http.server` started beside it."""
import os
import sys
import time

root, count, segments, duration = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
WINDOW = 5
start = time.monotonic()
for i in range(1, count + 1):
    os.makedirs(os.path.join(root, f"s{i}"), exist_ok=True)
while True:
    end = min(int((time.monotonic() - start) / duration) + WINDOW, segments)
    first = max(end - WINDOW, 0)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{int(duration + 0.999)}",
             f"#EXT-X-MEDIA-SEQUENCE:{first}"]
    for n in range(first, end):
        lines += [f"#EXTINF:{duration:.3f},", f"/seg/a{n}.ts"]
    text = "\n".join(lines) + "\n"
    for i in range(1, count + 1):
        path = os.path.join(root, f"s{i}", "live.m3u8")
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    time.sleep(0.2)
