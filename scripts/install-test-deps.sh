#!/usr/bin/env bash
# Installs what the test suite needs when it is missing: ffmpeg/ffprobe, rtmpdump,
# GStreamer (rtmp2sink, x264, AAC), Chromium and the Node packages of the browser test.
# Idempotent: a machine that has everything installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ffmpeg >/dev/null        || need_apt+=(ffmpeg)
command -v rtmpdump >/dev/null      || need_apt+=(rtmpdump)
command -v gst-launch-1.0 >/dev/null || need_apt+=(gstreamer1.0-tools)
# rtmp2sink (bad), x264enc (ugly), avenc_aac (libav), flvmux/videotestsrc (good/base).
if ! gst-inspect-1.0 rtmp2sink >/dev/null 2>&1 || ! gst-inspect-1.0 x264enc >/dev/null 2>&1 \
   || ! gst-inspect-1.0 avenc_aac >/dev/null 2>&1; then
  need_apt+=(gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
             gstreamer1.0-plugins-ugly gstreamer1.0-libav)
fi
command -v chromium >/dev/null      || need_apt+=(chromium)
command -v node >/dev/null          || need_apt+=(nodejs npm)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# hls.js for the browser test, from the npm registry, pinned by package-lock.json.
if [ -f tests/browser/package.json ] && [ ! -d tests/browser/node_modules/hls.js ]; then
  echo "install-test-deps: npm ci in tests/browser"
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
