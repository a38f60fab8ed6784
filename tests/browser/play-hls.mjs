// Plays an HLS URL with hls.js in headless Chromium and prints one JSON line:
//   {url, seconds, currentTime, fatalErrors:[...], errors:[...], events:{...}, ...}
//
// Usage: node play-hls.mjs URL SECONDS [low-latency[,catch-up]]
//
// With `low-latency`, hls.js runs in its low-latency mode (LL-HLS parts, blocking reloads)
// and the JSON also carries `stalls` (hls.js BUFFER_STALLED_ERROR count), `waiting` (the video
// element's `waiting` events after playback started), `latencies`
// (one sample a second after playback started: now - hls.playingDate, seconds, with the
// program date time the server stamped at ingest) and `events.partLoaded`; `trace` has, per
// sample, hls.js's own view (`hls.latency` from its live-edge estimate, `hls.targetLatency`,
// the buffer ahead of the playhead, the playback rate) and `firstPlaying` where playback
// started against hls.js's start and live-sync positions. `catch-up` lets hls.js play at up
// to 1.5x to reach its target latency (`maxLiveSyncPlaybackRate: 1.5`, as a player page
// for low latency sets it).
//
// The page and hls.js are served from a local HTTP server on 127.0.0.1:0 started here; the
// browser is Debian's Chromium (never a downloaded one): CHROMIUM overrides the path.
// Exit status: 0 when the JSON line was printed (the caller judges it), 2 on a harness failure.

import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const [url, secondsArg, mode] = process.argv.slice(2);
const modes = (mode || '').split(',');
const lowLatency = modes.includes('low-latency');
// hls.js may play up to 1.5x to catch up with its target latency (it starts at an
// independent part, up to a GOP before the target).
const catchUp = modes.includes('catch-up');
if (!url || !secondsArg) {
  console.error('usage: node play-hls.mjs URL SECONDS [low-latency]');
  process.exit(2);
}
const seconds = Number(secondsArg);
const here = path.dirname(fileURLToPath(import.meta.url));
const hlsJs = fs.readFileSync(path.join(here, 'node_modules/hls.js/dist/hls.min.js'));
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

// Whatever happens, never outlive the time we were given.
const hardLimit = setTimeout(() => {
  console.error('play-hls: hard time limit reached');
  process.exit(2);
}, (seconds + 60) * 1000);
hardLimit.unref();

const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>estuary hls test</title></head>
<body>
<video id="v" muted autoplay playsinline></video>
<script src="/hls.min.js"></script>
<script>
  const state = window.__state = {
    hlsSupported: Hls.isSupported(),
    mseH264Aac: window.MediaSource
      ? MediaSource.isTypeSupported('video/mp4; codecs="avc1.42E01E,mp4a.40.2"') : false,
    errors: [], fatalErrors: [],
    events: { manifestParsed: 0, levelLoaded: 0, fragLoaded: 0, fragBuffered: 0, playing: 0, partLoaded: 0 },
    levels: [], stalls: 0, waiting: 0, latencies: [], trace: [], firstPlaying: null,
  };
  const video = document.getElementById('v');
  video.addEventListener('playing', () => {
    state.events.playing += 1;
    if (!state.firstPlaying && window.__hls) {
      const b = video.buffered, hls = window.__hls;
      state.firstPlaying = { currentTime: video.currentTime, bufferStart: b.length ? b.start(0) : null,
        bufferEnd: b.length ? b.end(b.length - 1) : null, startPosition: hls.startPosition,
        liveSyncPosition: hls.liveSyncPosition, target: hls.targetLatency, hlsLatency: hls.latency,
        sincePageMs: performance.now() };
    }
  });
  // The element ran out of data after playback started: what a viewer sees as a stall, whether
  // or not hls.js reports one.
  video.addEventListener('waiting', () => { if (state.events.playing > 0) state.waiting += 1; });
  video.addEventListener('error', () => {
    const e = video.error;
    state.errors.push({ source: 'video', code: e && e.code, message: e && e.message });
    state.fatalErrors.push({ source: 'video', code: e && e.code, message: e && e.message });
  });
  if (state.hlsSupported) {
    const hls = new Hls({ lowLatencyMode: ${lowLatency}${catchUp ? ', maxLiveSyncPlaybackRate: 1.5' : ''} });
    window.__hls = hls;
    setInterval(() => {
      if (state.events.playing > 0 && hls.playingDate) {
        state.latencies.push((Date.now() - hls.playingDate.getTime()) / 1000);
        const b = video.buffered;
        state.trace.push({
          latency: state.latencies[state.latencies.length - 1],
          hlsLatency: hls.latency, target: hls.targetLatency,
          forward: b.length ? b.end(b.length - 1) - video.currentTime : 0,
          rate: video.playbackRate, currentTime: video.currentTime,
        });
      }
    }, 1000);
    hls.on(Hls.Events.MANIFEST_PARSED, (_e, d) => {
      state.events.manifestParsed += 1;
      state.levels = d.levels.map(l => ({ width: l.width, height: l.height, codecs: l.codecSet }));
      video.play().catch(err => state.errors.push({ source: 'play()', message: String(err) }));
    });
    hls.on(Hls.Events.LEVEL_LOADED, () => { state.events.levelLoaded += 1; });
    hls.on(Hls.Events.FRAG_LOADED, (_e, d) => {
      state.events.fragLoaded += 1;
      if (d.part) state.events.partLoaded += 1;
    });
    hls.on(Hls.Events.FRAG_BUFFERED, () => { state.events.fragBuffered += 1; });
    hls.on(Hls.Events.ERROR, (_e, d) => {
      const entry = { type: d.type, details: d.details, fatal: !!d.fatal,
                      reason: d.reason || (d.error && String(d.error)) || null };
      state.errors.push(entry);
      if (d.details === 'bufferStalledError') state.stalls += 1;
      if (d.fatal) state.fatalErrors.push(entry);
    });
    hls.loadSource(${JSON.stringify(url)});
    hls.attachMedia(video);
  } else {
    state.fatalErrors.push({ source: 'page', message: 'Hls.isSupported() is false' });
  }
</script>
</body></html>`;

const server = http.createServer((req, res) => {
  if (req.url === '/hls.min.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' });
    res.end(hlsJs);
  } else if (req.url === '/' || req.url.startsWith('/?')) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page);
  } else if (req.url === '/favicon.ico') {
    res.writeHead(204);
    res.end();
  } else {
    res.writeHead(404);
    res.end();
  }
});
await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
const pageUrl = `http://127.0.0.1:${server.address().port}/`;

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'estuary-chromium-'));
let context;
const pageErrors = [];
let result;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
    timeout: 60_000,
  });
  const tab = context.pages()[0] || await context.newPage();
  tab.on('pageerror', err => pageErrors.push(String(err)));
  tab.on('console', msg => { if (msg.type() === 'error') pageErrors.push(msg.text()); });
  await tab.goto(pageUrl, { timeout: 30_000 });
  await tab.waitForTimeout(seconds * 1000);
  const state = await tab.evaluate(() => {
    const v = document.getElementById('v');
    const s = window.__state;
    const buffered = [];
    for (let i = 0; i < v.buffered.length; i++) buffered.push([v.buffered.start(i), v.buffered.end(i)]);
    return { ...s, currentTime: v.currentTime, paused: v.paused, readyState: v.readyState,
             videoWidth: v.videoWidth, videoHeight: v.videoHeight, buffered };
  });
  result = { url, seconds, ...state, errors: [...state.errors, ...pageErrors.map(m => ({ source: 'page', message: m }))] };
} catch (err) {
  result = { url, seconds, currentTime: 0, fatalErrors: [{ source: 'harness', message: String(err) }],
             errors: [{ source: 'harness', message: String(err) }], events: {} };
} finally {
  if (context) await context.close().catch(() => {});
  server.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
process.exit(0);
