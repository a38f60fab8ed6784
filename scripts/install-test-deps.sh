#!/usr/bin/env bash
# Installs what the test suite needs when it is missing: ffmpeg/ffprobe, rtmpdump, nginx + nginx-rtmp,
# GStreamer (rtmp2sink, x264enc, avenc_aac, flvmux), Chromium, redis-server, Node/npm and the
# Node packages of the browser test (tests/browser, pinned by its package-lock.json), and a modern
# ffmpeg (PyPI's imageio-ffmpeg, in the project-local venv .test-venv/) for Enhanced RTMP.
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
# nginx-rtmp: the upstream and origin of the forward and pull tests (started by each test on
# loopback; the package's own service is not needed).
command -v nginx >/dev/null && [ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] \
                                      || need_apt+=(nginx libnginx-mod-rtmp)
# The tests signal processes with the kill utility (not the shell builtin).
[ -x /usr/bin/kill ] || [ -x /bin/kill ] || need_apt+=(procps)
# Python with venv and pip, for the modern ffmpeg below (Debian splits venv out of python3).
command -v python3 >/dev/null         || need_apt+=(python3 python3-venv)
python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The nginx package starts a system nginx on :80; the tests run their own.
  if command -v systemctl >/dev/null; then systemctl stop nginx >/dev/null 2>&1 || true; fi
fi

# The modern ffmpeg of the Enhanced RTMP tests (tests/tests/enhanced_rtmp.rs): Debian's ffmpeg
# 5.1 publishes neither HEVC/AV1/VP9/Opus over RTMP nor Multitrack; imageio-ffmpeg ships a
# static ffmpeg 9 that does. Pinned; installed into .test-venv/ (not committed), where
# tests/src/modern_ffmpeg.rs finds it (or set ESTUARY_MODERN_FFMPEG to another ffmpeg ≥ 8).
venv=.test-venv
imageio_ffmpeg=imageio-ffmpeg==0.8.1
have_modern() {
  "$venv/bin/python" -c 'import os, sys, imageio_ffmpeg
sys.exit(0 if os.access(imageio_ffmpeg.get_ffmpeg_exe(), os.X_OK) else 1)' 2>/dev/null
}
if ! have_modern; then
  echo "install-test-deps: pip install $imageio_ffmpeg into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$imageio_ffmpeg"
  have_modern || { echo "install-test-deps: imageio-ffmpeg installed no usable ffmpeg" >&2; exit 1; }
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
