//! Publish with real encoders (ffmpeg, GStreamer, a replayed OBS capture) and play with real
//! players (ffprobe, ffmpeg, rtmpdump) over RTMP and HTTP-FLV.

use std::process::Command;
use std::thread;
use std::time::Duration;

use estuary_tests::flv::FlvParser;
use estuary_tests::media::{assert_h264_aac, ffmpeg_decode, ffprobe_streams, status_text, ProbedStream};
use estuary_tests::obs::{Capture, Replay};
use estuary_tests::paths::shared_fixture;
use estuary_tests::viewer::ViewerState;
use estuary_tests::{publish_and_wait_live, wait_live, ChildGuard, Clip, Server, TestCtx, Viewer, LIMIT};

/// ffprobe on both outputs of one stream, concurrently.
fn probe_both(server: &Server, app: &str, stream: &str) -> [(String, Vec<ProbedStream>); 2] {
    let urls = [server.rtmp_url(app, stream), server.flv_url(app, stream)];
    let handles: Vec<_> = urls
        .iter()
        .map(|u| {
            let u = u.clone();
            thread::spawn(move || ffprobe_streams(&u, LIMIT))
        })
        .collect();
    let mut out = Vec::new();
    for (url, h) in urls.into_iter().zip(handles) {
        let streams = h.join().expect("ffprobe thread").unwrap_or_else(|e| panic!("{e}"));
        out.push((url, streams));
    }
    out.try_into().expect("two outputs")
}

/// ffmpeg publishes the H.264 + AAC clip; ffprobe reads RTMP and HTTP-FLV with the right
/// codecs, size and frame rate; the HTTP-FLV response is chunked, CORS-open, and its FLV header
/// announces audio and video.
#[test]
fn ffprobe_reads_rtmp_and_http_flv() {
    let ctx = TestCtx::new("ffprobe_reads_rtmp_and_http_flv");
    let server = Server::start(&ctx);
    let (_publisher, viewer) = publish_and_wait_live(&ctx, &server, Clip::Main, "live", "probe");

    for (url, streams) in probe_both(&server, "live", "probe") {
        assert_h264_aac(&url, &streams, 640, 360, 30.0);
    }

    let st = viewer.snapshot();
    let head = st.head.as_ref().expect("response head");
    assert_eq!(head.status, 200);
    assert!(head.is_chunked(), "HTTP-FLV response is not chunked: {head:?}");
    assert_eq!(
        head.header("access-control-allow-origin"),
        Some("*"),
        "CORS header: {head:?}"
    );
    assert_eq!(st.flv_flags, Some(0x05), "FLV header flags (audio+video)");
    st.check_startup(true, true).unwrap();
}

/// `ffmpeg -v error -i URL -t 10 -f null -` decodes 10 s of each output with no error output.
#[test]
fn ffmpeg_decodes_ten_seconds_of_each_output() {
    let ctx = TestCtx::new("ffmpeg_decodes_ten_seconds_of_each_output");
    let server = Server::start(&ctx);
    let (_publisher, _viewer) = publish_and_wait_live(&ctx, &server, Clip::Main, "live", "decode");

    let urls = [server.rtmp_url("live", "decode"), server.flv_url("live", "decode")];
    let handles: Vec<_> = urls
        .iter()
        .map(|u| {
            let u = u.clone();
            thread::spawn(move || ffmpeg_decode(&u, 10, Duration::from_secs(60)))
        })
        .collect();
    for (url, h) in urls.iter().zip(handles) {
        let out = h.join().expect("decoder thread");
        assert!(
            out.success(),
            "decoding {url}: {}; stderr:\n{}",
            status_text(&out),
            out.stderr
        );
        assert!(
            out.stderr.trim().is_empty(),
            "decoding {url} printed errors:\n{}",
            out.stderr
        );
    }
}

/// rtmpdump plays the stream live: it connects and saves an FLV that starts properly (metadata,
/// sequence headers, keyframe first) and that ffprobe reads as the published H.264 + AAC.
#[test]
fn rtmpdump_plays() {
    let ctx = TestCtx::new("rtmpdump_plays");
    let server = Server::start(&ctx);
    let (_publisher, _viewer) = publish_and_wait_live(&ctx, &server, Clip::Main, "live", "dump");

    let out_path = ctx.dir.join("rtmpdump.flv");
    let log = ctx.next_log("rtmpdump");
    let mut cmd = Command::new("rtmpdump");
    cmd.arg("-r")
        .arg(server.rtmp_url("live", "dump"))
        .args(["--live", "--timeout", "20", "-o"])
        .arg(&out_path);
    let mut dump = ChildGuard::spawn_logged("rtmpdump", &mut cmd, &log);
    // Let it record about 5 s, then stop it the way a user would (it exits on SIGINT).
    let early_exit = dump.wait_timeout(Duration::from_secs(5));
    let text = dump.stderr_text().replace('\r', "\n");
    assert!(
        early_exit.is_none(),
        "rtmpdump ended by itself ({early_exit:?}) while the stream was live:\n{text}"
    );
    dump.signal("INT");
    assert!(
        dump.wait_timeout(Duration::from_secs(10)).is_some(),
        "rtmpdump did not exit after SIGINT"
    );
    let text = dump.stderr_text().replace('\r', "\n");
    let before_signal = text.split("Caught signal").next().unwrap_or_default();
    assert!(
        !before_signal.contains("ERROR"),
        "rtmpdump reported an error while playing:\n{before_signal}"
    );
    assert!(
        before_signal.contains("Starting Live Stream"),
        "rtmpdump did not start the live stream:\n{before_signal}"
    );

    let bytes = std::fs::read(&out_path).expect("rtmpdump wrote its output file");
    let mut parser = FlvParser::new();
    // rtmpdump may stop mid-tag on SIGINT: a trailing partial tag is fine.
    let tags = parser.push(&bytes).expect("rtmpdump's FLV parses");
    let st = ViewerState {
        flv_flags: parser.header_flags,
        tags,
        ..ViewerState::default()
    };
    st.check_startup(true, true).unwrap();
    assert!(
        st.coded_video().count() >= 60,
        "rtmpdump saved only {} video frames in ~5 s",
        st.coded_video().count()
    );
    let streams = ffprobe_streams(out_path.to_str().expect("utf-8 path"), LIMIT).unwrap_or_else(|e| panic!("{e}"));
    assert_h264_aac("rtmpdump's file", &streams, 640, 360, 30.0);
}

/// GStreamer publishes with rtmp2sink (x264enc + avenc_aac in flvmux); RTMP and HTTP-FLV play
/// it back as H.264 320x240@30 + AAC, and it decodes without errors.
///
/// flvmux gets 200 ms of latency: with live sources and none, it stamps AAC frames with the
/// times they reach it (two frames in one ms, `ffmpeg -v error` then reports non-monotonic
/// DTS even on a file it wrote directly).
#[test]
fn gstreamer_publishes() {
    let ctx = TestCtx::new("gstreamer_publishes");
    let server = Server::start(&ctx);
    let log = ctx.next_log("gst-launch");
    let location = server.rtmp_url("live", "gst");
    let pipeline = format!(
        "videotestsrc is-live=true pattern=smpte \
         ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=400 \
         ! h264parse ! queue ! flvmux name=mux streamable=true latency=200000000 \
         ! rtmp2sink location={location} \
         audiotestsrc is-live=true wave=sine \
         ! audio/x-raw,rate=44100,channels=2 ! audioconvert ! avenc_aac bitrate=96000 \
         ! aacparse ! queue ! mux."
    );
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.arg("-e").args(pipeline.split_whitespace());
    let _gst = ChildGuard::spawn_logged("gst-launch-1.0", &mut cmd, &log);
    let viewer = wait_live(&server, "live", "gst");

    for (url, streams) in probe_both(&server, "live", "gst") {
        assert_h264_aac(&url, &streams, 320, 240, 30.0);
    }
    viewer.snapshot().check_startup(true, true).unwrap();
    let out = ffmpeg_decode(&server.flv_url("live", "gst"), 4, LIMIT);
    assert!(
        out.success() && out.stderr.trim().is_empty(),
        "decoding GStreamer's stream: {}; stderr:\n{}",
        status_text(&out),
        out.stderr
    );
}

/// The OBS 29 capture replays as a publisher (its own handshake, chunk size 4096, pipelined
/// commands, one chunk stream for all media); ffprobe sees H.264 1280x720 + AAC 44.1 kHz
/// stereo on RTMP and HTTP-FLV while it streams, and a viewer gets the whole capture.
#[test]
fn obs_capture_replays_and_plays_back() {
    let ctx = TestCtx::new("obs_capture_replays_and_plays_back");
    let server = Server::start(&ctx);
    let capture = Capture::load(&shared_fixture("obs-29.0.2-publish.c2s.bin"));
    // The capture holds ~9.1 s of media from a 10-s session; replay it in real time.
    let replay = Replay::start(&format!("127.0.0.1:{}", server.rtmp_port), capture, 10.0, 1.0);
    let flv_viewer = wait_live(&server, "live", "obs");
    // Still within the first 2-s GOP: with the GOP cache this viewer gets the whole capture.
    let rtmp_viewer = Viewer::rtmp(&server.rtmp_url("live", "obs"));

    for (url, streams) in probe_both(&server, "live", "obs") {
        assert_h264_aac(&url, &streams, 1280, 720, 30.0);
    }
    let sent = replay.join().unwrap_or_else(|e| panic!("replay: {e}"));
    assert!(sent > 2_900_000, "replay sent {sent} bytes");

    // The RTMP viewer joined within the first GOP: it gets the entire capture (273 video
    // frames over 9066 ms, 390 AAC frames), each frame once. The capture ends with FCUnpublish
    // and a reset; the server may then close the viewer or keep it waiting.
    let complete = |s: &ViewerState| (s.coded_video().count() >= 273 && s.coded_audio().count() >= 390).then_some(());
    if let Err(e) = rtmp_viewer.wait_for(Duration::from_secs(10), complete) {
        panic!("rtmp viewer did not get the whole capture: {e}");
    }
    let st = rtmp_viewer.snapshot();
    assert_eq!(st.coded_video().count(), 273, "rtmp viewer: video frames");
    assert_eq!(st.coded_audio().count(), 390, "rtmp viewer: audio frames");

    for (label, st) in [("rtmp", st), ("http-flv", flv_viewer.snapshot())] {
        st.check_startup(true, true).unwrap_or_else(|e| panic!("{label}: {e}"));
        let video: Vec<_> = st.coded_video().collect();
        let span = video.last().expect("video").timestamp - video[0].timestamp;
        assert!(span >= 6_000, "{label}: video spans only {span} ms of the ~9 s capture");
    }
}

/// A raw connection to the server's HTTP port, reads bounded by `LIMIT`.
fn http_socket(server: &Server) -> std::net::TcpStream {
    let socket = std::net::TcpStream::connect(("127.0.0.1", server.http_port)).expect("connect");
    socket.set_read_timeout(Some(LIMIT)).unwrap();
    socket
}

/// Reads one HTTP/1.1 response head from `r`.
fn read_head(r: &mut impl std::io::BufRead) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).expect("read head") > 0,
            "connection closed: {head}"
        );
        head.push_str(&line);
        if line == "\r\n" {
            return head;
        }
    }
}

/// A live FLV request on a connection that asked for something else first (a browser
/// reusing a kept-alive connection) is served too: the same chunked FLV body.
#[test]
fn http_flv_on_a_kept_alive_connection() {
    use std::io::{BufRead, BufReader, Read, Write};
    let ctx = TestCtx::new("http_flv_on_a_kept_alive_connection");
    let server = Server::start(&ctx);
    let (_publisher, _viewer) = publish_and_wait_live(&ctx, &server, Clip::Main, "live", "reuse");
    let mut socket = http_socket(&server);
    let mut reader = BufReader::new(socket.try_clone().unwrap());

    socket.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let head = read_head(&mut reader);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-length: 3"), "{head}");
    let mut body = [0u8; 3];
    reader.read_exact(&mut body).unwrap();
    assert_eq!(&body, b"ok\n");

    socket
        .write_all(b"GET /live/reuse.flv HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let head = read_head(&mut reader).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: video/x-flv"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    // Decode the chunked body: the FLV header, then tags, up to 30 coded video frames.
    let mut parser = FlvParser::new();
    let mut first = true;
    let mut frames = 0;
    while frames < 30 {
        let mut size = String::new();
        reader.read_line(&mut size).unwrap();
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        assert!(size > 0, "the body ended after {frames} frames");
        let mut chunk = vec![0u8; size + 2];
        reader.read_exact(&mut chunk).unwrap();
        assert_eq!(&chunk[size..], b"\r\n", "chunk ends with CRLF");
        let data = &chunk[..size];
        if first {
            assert_eq!(&data[..3], b"FLV", "the body starts with the FLV header");
            first = false;
        }
        let tags = parser.push(data).expect("FLV tags");
        frames += tags.iter().filter(|t| t.is_coded_frame()).count();
    }
}

/// An HTTP/1.0 client gets the FLV body itself (no chunked framing, which HTTP/1.0 lacks),
/// ended by the connection; a request head over the limit is refused with 431.
#[test]
fn http_flv_for_http_1_0_and_oversized_heads() {
    use std::io::{BufReader, Read, Write};
    let ctx = TestCtx::new("http_flv_for_http_1_0_and_oversized_heads");
    let server = Server::start(&ctx);
    let (_publisher, _viewer) = publish_and_wait_live(&ctx, &server, Clip::Main, "live", "old");

    let mut socket = http_socket(&server);
    socket.write_all(b"GET /live/old.flv HTTP/1.0\r\n\r\n").unwrap();
    let mut reader = BufReader::new(socket);
    let head = read_head(&mut reader).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let mut body = vec![0u8; 256 * 1024];
    reader.read_exact(&mut body).expect("256 KB of body");
    let mut parser = FlvParser::new();
    let tags = parser.push(&body).expect("a plain FLV body");
    assert!(tags.iter().any(|t| t.is_coded_frame()), "video frames in the body");

    let mut socket = http_socket(&server);
    let mut request = b"GET /live/old.flv HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..400 {
        request.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "x".repeat(40)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let _ = socket.write_all(&request);
    let head = read_head(&mut BufReader::new(socket));
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
}
