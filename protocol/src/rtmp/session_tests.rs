//! Sans-IO session tests: `rml_rtmp`'s client session talks to ours, no sockets.

use super::*;
use crate::rtmp::chunker;
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};

fn config() -> SessionConfig {
    SessionConfig {
        limits: ChunkLimits::default(),
        out_chunk_size: 4096,
    }
}

/// Sends client results to the server, returning the server's events.
fn to_server(server: &mut ServerSession, results: Vec<ClientSessionResult>) -> Vec<SessionEvent> {
    let mut buf = BytesMut::new();
    for r in results {
        if let ClientSessionResult::OutboundResponse(p) = r {
            buf.extend_from_slice(&p.bytes);
        }
    }
    let n = buf.len();
    let events = server.handle_input(&mut buf, n).unwrap();
    assert!(buf.is_empty());
    events
}

/// Sends the server's pending bytes to the client, returning the client's events.
/// Sends the server's pending bytes to the client and the client's replies back to the
/// server, returning the client's events.
fn to_client(server: &mut ServerSession, client: &mut ClientSession) -> Vec<ClientSessionEvent> {
    let bytes = server.take_outbound().unwrap_or_default();
    let (mut events, mut replies) = (Vec::new(), Vec::new());
    for r in client.handle_input(&bytes).unwrap() {
        match r {
            ClientSessionResult::RaisedEvent(e) => events.push(e),
            other => replies.push(other),
        }
    }
    assert!(to_server(server, replies).is_empty());
    events
}

fn connected() -> (ServerSession, ClientSession) {
    let mut server = ServerSession::new(config());
    let (mut client, initial) = ClientSession::new(ClientSessionConfig::new()).unwrap();
    to_server(&mut server, initial);
    let connect = client.request_connection("live?token=abc".into()).unwrap();
    let events = to_server(&mut server, vec![connect]);
    let SessionEvent::Connect(info) = &events[0] else {
        panic!("expected connect, got {events:?}")
    };
    assert_eq!((info.app.as_str(), info.app_query.as_str()), ("live", "token=abc"));
    server.accept_connect().unwrap();
    let client_events = to_client(&mut server, &mut client);
    assert!(
        client_events.contains(&ClientSessionEvent::ConnectionRequestAccepted),
        "{client_events:?}"
    );
    (server, client)
}

#[test]
fn publish_flow_and_media() {
    let (mut server, mut client) = connected();
    let req = client
        .request_publishing("cam1?k=v".into(), PublishRequestType::Live)
        .unwrap();
    let mut events = to_server(&mut server, vec![req]);
    // rml's client sends createStream first and publish after the result.
    if events.is_empty() {
        let results = client.handle_input(&server.take_outbound().unwrap()).unwrap();
        events = to_server(&mut server, results);
    }
    let SessionEvent::Publish { stream_id, stream } = events[0].clone() else {
        panic!("{events:?}")
    };
    assert_eq!(
        stream,
        StreamName {
            name: "cam1".into(),
            query: "k=v".into()
        }
    );
    server.accept_publish(stream_id, "cam1").unwrap();
    assert!(to_client(&mut server, &mut client).contains(&ClientSessionEvent::PublishRequestAccepted));

    let frame = Bytes::from(vec![0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]);
    let r = client
        .publish_video_data(frame.clone(), RtmpTimestamp::new(40), false)
        .unwrap();
    let events = to_server(&mut server, vec![r]);
    assert_eq!(
        events,
        vec![SessionEvent::Media {
            kind: MediaKind::Video,
            timestamp: 40,
            payload: frame
        }]
    );
}

#[test]
fn play_flow() {
    let (mut server, mut client) = connected();
    let req = client.request_playback("cam1".into()).unwrap();
    let mut events = to_server(&mut server, vec![req]);
    if events.is_empty() {
        let results = client.handle_input(&server.take_outbound().unwrap()).unwrap();
        events = to_server(&mut server, results);
    }
    let SessionEvent::Play { stream_id, stream } = events[0].clone() else {
        panic!("{events:?}")
    };
    assert_eq!(stream.name, "cam1");
    server.accept_play(stream_id, "cam1").unwrap();
    assert!(to_client(&mut server, &mut client).contains(&ClientSessionEvent::PlaybackRequestAccepted));
}

#[test]
fn garbage_amf_is_an_error_not_a_panic() {
    let mut server = ServerSession::new(config());
    for garbage in [
        &[0x02, 0x00, 0x07, b'c', 0x42][..],
        &[0x02, 0, 1, b'x'],
        &[0x42, 1, 2],
        &[],
    ] {
        let mut buf = BytesMut::from(&chunker::chunk_message(3, 20, 0, 0, garbage, 128)[..]);
        let n = buf.len();
        let result = server.handle_input(&mut buf, n);
        assert!(
            matches!(result, Err(SessionError::BadMessage { .. })),
            "{garbage:?}: {result:?}"
        );
    }

    let mut deep = Vec::new();
    for _ in 0..1000 {
        deep.extend_from_slice(&[0x03, 0, 1, b'a']);
    }
    let mut buf = BytesMut::from(&chunker::chunk_message(4, 20, 0, 0, &deep, 128)[..]);
    let n = buf.len();
    assert!(matches!(
        server.handle_input(&mut buf, n),
        Err(SessionError::AmfTooDeep { .. })
    ));
}

#[test]
fn set_data_frame_becomes_on_metadata() {
    let mut server = ServerSession::new(config());
    let meta = Amf0Value::Object([("width".to_string(), Amf0Value::Number(640.0))].into_iter().collect());
    let values = vec![
        Amf0Value::Utf8String("@setDataFrame".into()),
        Amf0Value::Utf8String("onMetaData".into()),
        meta.clone(),
    ];
    let payload = rml_amf0::serialize(&values).unwrap();
    let mut buf = BytesMut::from(&chunker::chunk_message(4, 18, 0, 1, &payload, 128)[..]);
    let n = buf.len();
    let events = server.handle_input(&mut buf, n).unwrap();
    let SessionEvent::Metadata { payload, .. } = &events[0] else {
        panic!("{events:?}")
    };
    let decoded = rml_amf0::deserialize(&mut &payload[..]).unwrap();
    assert_eq!(decoded, vec![Amf0Value::Utf8String("onMetaData".into()), meta]);
}

/// A player on the wire: sends AMF0 commands as raw chunks and reads every byte the server
/// sends since the session began with a chunk reader of its own, so the server's header
/// compression and its Set Chunk Size are followed as a real player follows them.
struct WirePlayer {
    server: ServerSession,
    reader: ChunkReader,
    from_server: BytesMut,
}

impl WirePlayer {
    /// A player that sent `connect` (transaction 1, as ffmpeg does) and was admitted.
    fn connected() -> WirePlayer {
        let mut player = WirePlayer {
            server: ServerSession::new(config()),
            reader: ChunkReader::new(ChunkLimits::default()),
            from_server: BytesMut::new(),
        };
        let app = Amf0Value::Object([("app".to_string(), Amf0Value::Utf8String("live".into()))].into());
        let events = player.send(
            &[Amf0Value::Utf8String("connect".into()), Amf0Value::Number(1.0), app],
            0,
        );
        assert!(matches!(events[..], [SessionEvent::Connect(_)]), "{events:?}");
        player.server.accept_connect().unwrap();
        let replies = player.commands();
        assert_eq!(replies.len(), 2, "connect _result and onBWDone: {replies:?}");
        player
    }

    /// Sends one AMF0 command on message stream `stream_id` (chunk stream 3, ffmpeg's).
    fn send(&mut self, values: &[Amf0Value], stream_id: u32) -> Vec<SessionEvent> {
        let payload = rml_amf0::serialize(&values.to_vec()).unwrap();
        let mut buf = BytesMut::from(&chunker::chunk_message(3, 20, 0, stream_id, &payload, 128)[..]);
        let n = buf.len();
        let events = self.server.handle_input(&mut buf, n).unwrap();
        assert!(buf.is_empty());
        events
    }

    /// The command messages the server sent since the last call, as (message stream id,
    /// AMF0 values); control messages are read (Set Chunk Size applied) and left out.
    fn commands(&mut self) -> Vec<(u32, Vec<Amf0Value>)> {
        if let Some(bytes) = self.server.take_outbound() {
            self.from_server.extend_from_slice(&bytes);
        }
        let mut out = Vec::new();
        while let Some(msg) = self.reader.read(&mut self.from_server).unwrap() {
            if msg.type_id == 20 {
                out.push((msg.stream_id, rml_amf0::deserialize(&mut &msg.payload[..]).unwrap()));
            }
        }
        assert!(self.from_server.is_empty(), "a partial message from the server");
        out
    }

    /// Sends `name, tx, null, arg` on stream 0 and returns the server's command replies.
    fn call(&mut self, name: &str, tx: f64, arg: &str) -> Vec<(u32, Vec<Amf0Value>)> {
        let values = [
            Amf0Value::Utf8String(name.into()),
            Amf0Value::Number(tx),
            Amf0Value::Null,
            Amf0Value::Utf8String(arg.into()),
        ];
        let events = self.send(&values, 0);
        assert!(events.is_empty(), "{name} raised {events:?}");
        self.commands()
    }
}

/// A `_result` on message stream 0: `_result, tx, null, value`.
fn result(tx: f64, value: Amf0Value) -> (u32, Vec<Amf0Value>) {
    let name = Amf0Value::Utf8String("_result".into());
    (0, vec![name, Amf0Value::Number(tx), Amf0Value::Null, value])
}

/// `getStreamLength` as ffmpeg sends it between `createStream` and `play`: the reply is
/// `_result` with its transaction id, a null command object and the number 0 (ffmpeg's
/// `read_number_result` reads exactly these four values; anything else makes it log
/// "Unexpected reply on getStreamLength()").
#[test]
fn get_stream_length_answers_zero_for_a_live_stream() {
    let mut player = WirePlayer::connected();
    let created = player.call("createStream", 2.0, "");
    assert_eq!(created, vec![result(2.0, Amf0Value::Number(1.0))]);
    let length = player.call("getStreamLength", 3.0, "cam1");
    assert_eq!(length, vec![result(3.0, Amf0Value::Number(0.0))]);
    // play still follows as usual.
    let values = [
        Amf0Value::Utf8String("play".into()),
        Amf0Value::Number(4.0),
        Amf0Value::Null,
        Amf0Value::Utf8String("cam1".into()),
        Amf0Value::Number(-2000.0),
    ];
    let events = player.send(&values, 1);
    assert!(
        matches!(&events[..], [SessionEvent::Play { stream_id: 1, stream }] if stream.name == "cam1"),
        "{events:?}"
    );
}

/// Transaction id 0 means the caller wants no reply: none is sent, for `getStreamLength` as
/// for the calls answered with an empty `_result`.
#[test]
fn calls_with_transaction_zero_get_no_reply() {
    let mut player = WirePlayer::connected();
    for name in [
        "getStreamLength",
        "FCSubscribe",
        "_checkbw",
        "checkBandwidth",
        "releaseStream",
    ] {
        assert_eq!(player.call(name, 0.0, "cam1"), vec![], "{name}");
    }
}

/// The other calls players make before `play` (`FCSubscribe`, `_checkbw`, `checkBandwidth`)
/// get the empty `_result` with their transaction id that publishers' `releaseStream` gets,
/// and nothing else (no `onFCSubscribe`: neither nginx-rtmp nor SRS sends one).
#[test]
fn other_pre_play_calls_get_an_empty_result() {
    let mut player = WirePlayer::connected();
    for (tx, name) in [
        (2.0, "FCSubscribe"),
        (3.0, "_checkbw"),
        (4.0, "checkBandwidth"),
        (5.0, "releaseStream"),
    ] {
        let replies = player.call(name, tx, "cam1");
        assert_eq!(replies, vec![result(tx, Amf0Value::Undefined)], "{name}");
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_messages_never_panic(type_id in 0u8..32, data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let mut server = ServerSession::new(config());
        let mut buf = BytesMut::from(&chunker::chunk_message(5, type_id, 0, 1, &data, 128)[..]);
        let n = buf.len();
        let _ = server.handle_input(&mut buf, n);
    }
}

/// The first chunk (of `chunk` bytes) of a `len`-byte video message on chunk stream `csid`
/// (2-byte basic header: 64..=319), leaving the message half read.
fn partial_message(csid: u32, len: u32, chunk: usize) -> Vec<u8> {
    let mut wire = vec![0x00, (csid - 64) as u8, 0, 0, 0];
    wire.extend_from_slice(&len.to_be_bytes()[1..]);
    wire.push(9);
    wire.extend_from_slice(&1u32.to_le_bytes());
    wire.resize(wire.len() + chunk, 0);
    wire
}

#[test]
fn a_peer_that_has_not_connected_is_held_to_the_preconnect_budget() {
    let mut server = ServerSession::new(config());
    let max = ChunkLimits::default().max_preconnect_bytes;
    // Half-sent 1000-byte messages on ever new chunk streams, no `connect`.
    for csid in 64..320 {
        let mut buf = BytesMut::from(&partial_message(csid, 1000, 128)[..]);
        let n = buf.len();
        match server.handle_input(&mut buf, n) {
            Ok(events) => assert!(events.is_empty()),
            Err(e) => {
                assert!(
                    matches!(e, SessionError::PreConnectBudget { max: m, .. } if m == max),
                    "{e}"
                );
                assert_eq!(e.budget(), Some("pre_connect"));
                assert!(server.reader.buffered_bytes() <= max);
                return;
            }
        }
    }
    panic!("256 half-sent messages before connect were all held");
}

#[test]
fn unread_bytes_before_connect_count_against_the_budget() {
    // One chunk announced at 60 000 bytes and never finished: the reader waits for it whole,
    // so it is the read buffer that grows.
    let mut server = ServerSession::new(SessionConfig {
        limits: ChunkLimits {
            max_preconnect_bytes: 16 * 1024,
            ..ChunkLimits::default()
        },
        out_chunk_size: 4096,
    });
    let mut wire = chunker::chunk_message(2, 1, 0, 0, &65_536u32.to_be_bytes(), 128).to_vec();
    wire.extend_from_slice(&[0x03, 0, 0, 0, 0x00, 0xea, 0x60, 20, 0, 0, 0, 0]);
    let mut buf = BytesMut::from(&wire[..]);
    let mut result = Ok(Vec::new());
    for _ in 0..20 {
        buf.extend_from_slice(&[0x02; 1024]);
        result = server.handle_input(&mut buf, 1024);
        if result.is_err() {
            break;
        }
    }
    let e = result.expect_err("20 KiB of one unfinished chunk before connect were held");
    assert_eq!(e.budget(), Some("pre_connect"), "{e}");
}

#[test]
fn once_connected_the_chunk_stream_budget_applies() {
    let (mut server, _client) = connected();
    let pre = ChunkLimits::default().max_preconnect_bytes;
    let chunk = server.reader.chunk_size() as usize;
    // Twice the pre-connect budget in half-sent messages is fine for an admitted peer.
    for csid in 64..64 + 2 * (pre / (2 * chunk)) as u32 {
        let mut buf = BytesMut::from(&partial_message(csid, 2 * chunk as u32, chunk)[..]);
        let n = buf.len();
        server.handle_input(&mut buf, n).unwrap();
    }
    assert!(server.reader.buffered_bytes() > pre);
    // A message over max_message_bytes is the `message` budget.
    let mut buf = BytesMut::from(&partial_message(300, 9 * 1024 * 1024, chunk)[..]);
    let n = buf.len();
    let e = server.handle_input(&mut buf, n).unwrap_err();
    assert_eq!(e.budget(), Some("message"), "{e}");
}

/// `createStream` ids never overflow: past `u32::MAX` they wrap to 1 (never 0, the control
/// stream), and the id the connection publishes or plays on is never handed out again while
/// it is in use; once closed it may be.
#[test]
fn stream_ids_wrap_without_zero_or_the_one_in_use() {
    let mut player = WirePlayer::connected();
    let create = |player: &mut WirePlayer, tx: f64| match &player.call("createStream", tx, "")[..] {
        [(0, values)] => match values.get(3) {
            Some(Amf0Value::Number(id)) => *id as u32,
            other => panic!("createStream result value: {other:?}"),
        },
        other => panic!("createStream answer: {other:?}"),
    };
    assert_eq!(create(&mut player, 2.0), 1);
    player.server.next_stream_id = u32::MAX - 1;
    assert_eq!(create(&mut player, 3.0), u32::MAX - 1);
    player.server.accept_play(u32::MAX, "cam1").unwrap();
    player.commands();
    assert_eq!(create(&mut player, 4.0), 1, "skips the id in use and wraps past 0");
    player.server.accept_publish(2, "cam1").unwrap();
    player.commands();
    assert_eq!(create(&mut player, 5.0), 3, "skips the id in use");
    let closed = player.send(
        &[
            Amf0Value::Utf8String("deleteStream".into()),
            Amf0Value::Number(6.0),
            Amf0Value::Null,
            Amf0Value::Number(2.0),
        ],
        0,
    );
    assert_eq!(closed, vec![SessionEvent::StreamClosed { stream_id: 2 }]);
    player.server.next_stream_id = 2;
    assert_eq!(create(&mut player, 7.0), 2, "a closed id may be reused");
}

#[test]
fn nesting_hidden_behind_an_ended_strict_array_is_refused() {
    // connect(tx 1, {a: [<object-end>]}), and then, where the depth walk once still saw the
    // array (a 65 KB string), 16 000 nested objects: enough to overflow the 2 MiB stack of a
    // tokio worker in `rml_amf0`'s recursive parser, which would abort the whole server.
    let mut payload = vec![0x02, 0, 7];
    payload.extend_from_slice(b"connect");
    payload.extend_from_slice(&[0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
    payload.extend_from_slice(&[0x03, 0, 1, b'a', 0x0a, 0, 0, 0, 2, 0x09, 0x02, 0xff]);
    payload.extend_from_slice(&[b'a'; 767]);
    for _ in 0..16_000 {
        payload.extend_from_slice(&[0x03, 0, 1, b'a']);
    }
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let mut server = ServerSession::new(config());
            let mut buf = BytesMut::from(&chunker::chunk_message(3, 20, 0, 0, &payload, 128)[..]);
            let n = buf.len();
            matches!(server.handle_input(&mut buf, n), Err(SessionError::AmfTooDeep { .. }))
        })
        .unwrap();
    assert!(handle.join().unwrap(), "the hidden nesting is not refused");
}

/// The publisher's style is told by what it sent before `publish`, as SRS tells it: FMLE
/// (OBS, ffmpeg) calls `releaseStream`/`FCPublish` first, Flash only `createStream`, and a
/// Haivision encoder `FCPublish` after `createStream`.
#[test]
fn publish_style_follows_the_commands_before_publish() {
    use super::PublishStyle;
    let create = |p: &mut WirePlayer, tx: f64| {
        let values = [
            Amf0Value::Utf8String("createStream".into()),
            Amf0Value::Number(tx),
            Amf0Value::Null,
        ];
        assert!(p.send(&values, 0).is_empty());
        p.commands();
    };
    let mut fmle = WirePlayer::connected();
    fmle.call("releaseStream", 2.0, "cam");
    fmle.call("FCPublish", 3.0, "cam");
    create(&mut fmle, 4.0);
    assert_eq!(fmle.server.publish_style(), PublishStyle::Fmle);
    assert_eq!(fmle.server.publish_style().srs_type(), "fmle-publish");

    let mut flash = WirePlayer::connected();
    create(&mut flash, 2.0);
    assert_eq!(flash.server.publish_style(), PublishStyle::Flash);
    assert_eq!(flash.server.publish_style().srs_type(), "flash-publish");

    let mut haivision = WirePlayer::connected();
    create(&mut haivision, 2.0);
    haivision.call("FCPublish", 3.0, "cam");
    assert_eq!(haivision.server.publish_style(), PublishStyle::Haivision);
    assert_eq!(haivision.server.publish_style().srs_type(), "haivision-publish");
}
