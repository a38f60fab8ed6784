#!/usr/bin/env bash
# Regenerates the fuzz targets' seed corpus, fuzz/seeds/<target>/ (committed; small files only).
#
# Sources: the real OBS publish capture in ../shared/fixtures (or $FIXTURES), split into the
# RTMP bytes after the handshake, its command messages and its tag bodies; tiny ffmpeg-made
# streams (64x64 H.264 + AAC as FLV and MPEG-TS, H.265 for an hvcC record; AV1, VP9, Opus and
# Multitrack from the modern ffmpeg of .test-venv); hand-written Enhanced RTMP bodies; and
# hand-written HTTP-FLV request heads. Needs ffmpeg (with libx264 and libx265) and python3.
#
#   bash scripts/fuzz-seeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
fixtures=${FIXTURES:-../shared/fixtures}
[ -d "$fixtures" ] || fixtures=/work/shared/fixtures
capture="$fixtures/obs-29.0.2-publish.c2s.bin"
[ -f "$capture" ] || { echo "fuzz-seeds: no OBS capture at $capture" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }
# 0.5 s of 64x64 test pattern with a tone: a few kilobytes per file.
src=(-f lavfi -i "testsrc=size=64x64:rate=10:duration=0.5" -f lavfi -i "sine=frequency=440:duration=0.5")
ff "${src[@]}" -c:v libx264 -g 5 -bf 2 -c:a aac -b:a 32k -ac 1 -ar 22050 "$work/avc.flv"
ff "${src[@]}" -c:v libx264 -g 5 -bf 2 -bsf:v h264_metadata=aud=insert -c:a aac -b:a 32k -ac 1 -ar 22050 \
  -f mpegts -mpegts_flags +resend_headers "$work/avc.ts"
ff -f lavfi -i "testsrc=size=64x64:rate=10:duration=0.2" -c:v libx265 -x265-params log-level=error \
  -tag:v hvc1 "$work/hevc.mp4"
# Enhanced RTMP as ffmpeg 9 writes it (its RTMP output is its FLV muxer): AV1 + Opus, VP9, and
# two H.264 tracks (Multitrack). The modern ffmpeg is the one scripts/install-test-deps.sh puts
# in .test-venv (imageio-ffmpeg); without it these seeds are skipped.
modern=${ESTUARY_MODERN_FFMPEG:-$(.test-venv/bin/python -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())' 2>/dev/null || true)}
if [ -n "$modern" ] && [ -x "$modern" ]; then
  mf() { "$modern" -hide_banner -loglevel error -y "$@"; }
  small=(-f lavfi -i "testsrc=size=64x64:rate=10:duration=0.3" -f lavfi -i "sine=frequency=440:duration=0.3")
  mf "${small[@]}" -c:v libaom-av1 -usage realtime -cpu-used 8 -c:a libopus -b:a 16k "$work/av1-opus.flv"
  mf "${small[@]}" -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -an "$work/vp9.flv"
  mf -f lavfi -i "testsrc=size=64x64:rate=10:duration=0.3" -map 0:v -map 0:v -c:v libx264 -preset ultrafast \
    "$work/multitrack.flv"
else
  echo "fuzz-seeds: no modern ffmpeg (bash scripts/install-test-deps.sh); Enhanced RTMP files skipped" >&2
fi

rm -rf fuzz/seeds
python3 - "$capture" "$work" <<'PY'
import os, struct, sys

capture, work = sys.argv[1], sys.argv[2]
seeds = "fuzz/seeds"

def put(target, name, data):
    os.makedirs(f"{seeds}/{target}", exist_ok=True)
    with open(f"{seeds}/{target}/{name}", "wb") as f:
        f.write(data)

raw = open(capture, "rb").read()
rtmp = raw[1 + 1536 + 1536:]  # C0, C1, C2: the simple handshake

# rtmp_chunk: first byte = read size selector (1 + b % 64), then chunk-stream bytes.
put("rtmp_chunk", "obs-connect-4k", b"\x00" + rtmp[:4096])
put("rtmp_chunk", "obs-publish-24k-reads-of-7", b"\x06" + rtmp[:24576])

def chunk(csid, fmt0_ts, type_id, sid, payload, size, extended=False):
    """One message as a format-0 chunk and format-3 continuations."""
    ts = 0xFFFFFF if extended else fmt0_ts
    out = bytes([csid]) + ts.to_bytes(3, "big") + len(payload).to_bytes(3, "big") + bytes([type_id]) + struct.pack("<I", sid)
    ext = struct.pack(">I", fmt0_ts) if extended else b""
    out += ext
    for i in range(0, len(payload), size):
        if i:
            out += bytes([0xC0 | csid]) + ext
        out += payload[i:i + size]
    return out

# Extended timestamps repeated on continuations, a 2- and a 3-byte basic header, Set Chunk
# Size and an Abort: the header forms OBS does not send.
crafted = chunk(4, 0x01000000, 9, 1, bytes(range(256)) * 2, 128, extended=True)
crafted += bytes([0x00, 200 - 64]) + (5).to_bytes(3, "big") + (3).to_bytes(3, "big") + bytes([8]) + struct.pack("<I", 1) + b"abc"
crafted += bytes([0x01, 0x10, 0x02]) + (0).to_bytes(3, "big") + (2).to_bytes(3, "big") + bytes([8]) + struct.pack("<I", 1) + b"xy"
crafted += chunk(2, 0, 1, 0, struct.pack(">I", 4096), 128)
crafted += chunk(2, 0, 2, 0, struct.pack(">I", 4), 128)
put("rtmp_chunk", "crafted-header-forms", b"\x00" + crafted)

# Reassemble OBS's messages (no interleaving, no extended timestamps in this capture).
def messages(data):
    size, streams, pos, partial = 128, {}, 0, {}
    while pos < len(data):
        b0 = data[pos]; fmt, csid = b0 >> 6, b0 & 0x3F; pos += 1
        if csid == 0: csid = 64 + data[pos]; pos += 1
        elif csid == 1: csid = 64 + data[pos] + 256 * data[pos + 1]; pos += 2
        st = streams.setdefault(csid, {"len": 0, "type": 0, "ts": 0})
        if fmt <= 2: pos += 3
        if fmt <= 1:
            st["len"] = int.from_bytes(data[pos:pos + 3], "big"); st["type"] = data[pos + 3]; pos += 4
        if fmt == 0: pos += 4
        body = partial.get(csid, b"")
        take = min(size, st["len"] - len(body))
        if pos + take > len(data): return
        body += data[pos:pos + take]; pos += take
        if len(body) == st["len"]:
            partial.pop(csid, None)
            if st["type"] == 1: size = struct.unpack(">I", body)[0]
            yield st["type"], body
        else:
            partial[csid] = body

commands = video = audio = 0
avc_config = aac_config = None
for type_id, body in messages(rtmp[:400_000]):
    if type_id == 20 and commands < 8:
        put("amf0_command", f"obs-command-{commands}", b"\x00" + body); commands += 1
    elif type_id == 18:
        put("amf0_command", "obs-setdataframe", b"\x03" + body)
        put("flv_tag", "obs-metadata-body", b"\x02" + body)
    elif type_id == 9 and body[1] == 0 and avc_config is None:
        avc_config = body[5:]
        put("flv_tag", "obs-avc-sequence-header-body", b"\x00" + body)
    elif type_id == 9 and video < 3 and len(body) < 4096:
        put("flv_tag", f"obs-avc-frame-body-{video}", b"\x00" + body); video += 1
    elif type_id == 8 and body[1] == 0 and aac_config is None:
        aac_config = body[2:]
        put("flv_tag", "obs-aac-sequence-header-body", b"\x01" + body)
    elif type_id == 8 and audio < 2:
        put("flv_tag", f"obs-aac-frame-body-{audio}", b"\x01" + body); audio += 1
put("amf0_command", "user-control-ping", b"\x06" + bytes([0, 6, 0, 0, 1, 0]))
put("amf0_command", "window-ack-size", b"\x07" + struct.pack(">I", 2_500_000))

put("codec_config", "obs-avc-decoder-config", avc_config)
put("codec_config", "obs-aac-audio-specific-config", aac_config)
put("codec_config", "aac-lc-2-bytes", bytes([0x12, 0x10]))
put("codec_config", "he-aac-v2-explicit", bytes([0xEB, 0x09, 0x88, 0x00]))
put("codec_config", "adts-header", bytes([0xFF, 0xF1, 0x50, 0x80, 0x2E, 0x7F, 0xFC]))

# ffmpeg's FLV whole, and its hvcC record (from the MP4) alone and as an Enhanced-RTMP tag.
put("flv_tag", "ffmpeg-avc-aac.flv", open(f"{work}/avc.flv", "rb").read())
mp4 = open(f"{work}/hevc.mp4", "rb").read()
at = mp4.index(b"hvcC")
hvcc = mp4[at + 4:at - 4 + struct.unpack(">I", mp4[at - 4:at])[0]]
put("codec_config", "ffmpeg-hevc-decoder-config", hvcc)
put("flv_tag", "enhanced-hevc-sequence-start-body", b"\x00" + bytes([0x90]) + b"hvc1" + hvcc)

put("ts_check", "ffmpeg-avc-aac.ts", open(f"{work}/avc.ts", "rb").read())

# Enhanced RTMP v2: ffmpeg 9's files, and the Multitrack and ModEx forms no encoder sends yet.
for name in ("av1-opus.flv", "vp9.flv", "multitrack.flv"):
    if os.path.exists(f"{work}/{name}"):
        put("flv_tag", f"ffmpeg9-{name}", open(f"{work}/{name}", "rb").read())
av1c = bytes([0x81, 0x00, 0x0C, 0x00, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x03, 0xB4, 0xFD, 0x93, 0x6B, 0xE4, 0x01])
vpcc = bytes([1, 0, 0, 0, 0, 0x0A, 0x82, 2, 2, 2, 0, 0])
opus_head = b"OpusHead" + bytes([1, 1, 0x38, 1, 0x80, 0xBB, 0, 0, 0, 0, 0])
put("codec_config", "ffmpeg9-av1c", av1c)
put("codec_config", "ffmpeg9-vpcc", vpcc)
put("codec_config", "ffmpeg9-opus-head", opus_head)
video, audio = b"\x00", b"\x01"
put("flv_tag", "multitrack-one-track-avc-sequence-start", video + bytes([0x96, 0x00]) + b"avc1" + bytes([1]) + avc_config)
put("flv_tag", "multitrack-many-tracks-hevc", video + bytes([0x96, 0x11]) + b"hvc1"
    + bytes([0, 0, 0, 5, 0, 0, 40, 0xAA, 0xBB]) + bytes([2, 0, 0, 4, 0xFF, 0xFF, 0xFE, 0xCC]))
put("flv_tag", "multitrack-many-codecs-sequence-start", video + bytes([0x96, 0x20])
    + b"av01" + bytes([0, 0, 0, len(av1c)]) + av1c + b"vp09" + bytes([1, 0, 0, len(vpcc)]) + vpcc)
put("flv_tag", "modex-nano-offset-hevc", video + bytes([0x97, 2, 0, 1, 0x10, 0x01]) + b"hvc1" + bytes([0, 0, 33, 0xAB]))
put("flv_tag", "audio-multitrack-opus", audio + bytes([0x95, 0x10]) + b"Opus" + bytes([0, 0, 0, len(opus_head)]) + opus_head
    + bytes([1, 0, 0, 2, 0xF8, 0xFF]))

heads = {
    "get-http11": b"GET /live/cam.flv?token=abc HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Lavf/59.27.100\r\nAccept: */*\r\nRange: bytes=0-\r\nConnection: close\r\nIcy-MetaData: 1\r\n\r\n",
    "get-http10": b"GET /live/cam.flv HTTP/1.0\r\n\r\n",
    "browser-referer": b"GET /app/room_1.flv?sign=1a2b&t=99 HTTP/1.1\r\nHost: example.com\r\nOrigin: https://player.example\r\nReferer: https://player.example/page?x=1\r\nAccept-Encoding: identity\r\n\r\n",
    "api-path": b"GET /api/v1/x.flv HTTP/1.1\r\nhost: a\r\n\r\n",
}
for name, head in heads.items():
    put("flv_request_head", name, head)
PY
du -sh fuzz/seeds; find fuzz/seeds -type f | sort | while read -r f; do printf '%8d %s\n' "$(stat -c %s "$f")" "$f"; done
