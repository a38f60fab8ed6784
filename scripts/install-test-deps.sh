#!/usr/bin/env bash
# Installs what the test suite needs when it is missing: ffmpeg/ffprobe, rtmpdump,
# GStreamer (rtmp2sink, x264enc, avenc_aac, flvmux), Chromium, redis-server, nginx, Node/npm and the Node packages
# of the browser test (tests/browser, pinned by its package-lock.json).
# Idempotent: a machine that has everything installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ffmpeg >/dev/null          || need_apt+=(ffmpeg)
command -v ffprobe >/dev/null         || need_apt+=(ffmpeg)
command -v rtmpdump >/dev/null        || need_apt+=(rtmpdump)
command -v gst-launch-1.0 >/dev/null  || need_apt+=(gstreamer1.0-tools)
# rtmp2sink (bad), x264enc (ugly), avenc_aac (libav), flvmux/h264parse/aacparse (good, bad),
# videotestsrc/audiotestsrc/audioconvert (base).
gst_ok=1
for element in rtmp2sink x264enc avenc_aac flvmux h264parse aacparse videotestsrc audiotestsrc; do
  gst-inspect-1.0 "$element" >/dev/null 2>&1 || gst_ok=0
done
if [ "$gst_ok" = 0 ]; then
  need_apt+=(gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
             gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav)
fi
command -v chromium >/dev/null        || need_apt+=(chromium)
# The origin cluster's directory (server/tests/cluster.rs); redis-cli comes with it.
command -v redis-server >/dev/null    || need_apt+=(redis-server)
command -v redis-cli >/dev/null       || need_apt+=(redis-tools)
# The HTTP cache in front of HLS (server/tests/hls_cdn.rs).
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
command -v node >/dev/null            || need_apt+=(nodejs)
command -v npm >/dev/null             || need_apt+=(npm)
# The tests signal processes with the kill utility (not the shell builtin).
[ -x /usr/bin/kill ] || [ -x /bin/kill ] || need_apt+=(procps)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# hls.js and playwright-core for the browser test, from the npm registry, pinned by
# package-lock.json; reinstalled when the lock file changes. Playwright never downloads a
# browser here: play-hls.mjs drives Debian's /usr/bin/chromium.
if [ -f tests/browser/package-lock.json ]; then
  stamp=tests/browser/node_modules/.estuary-lock.sha256
  want=$(sha256sum tests/browser/package-lock.json | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "install-test-deps: npm ci in tests/browser"
    (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
fi
