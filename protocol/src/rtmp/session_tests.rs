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

proptest::proptest! {
    #[test]
    fn arbitrary_messages_never_panic(type_id in 0u8..32, data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let mut server = ServerSession::new(config());
        let mut buf = BytesMut::from(&chunker::chunk_message(5, type_id, 0, 1, &data, 128)[..]);
        let n = buf.len();
        let _ = server.handle_input(&mut buf, n);
    }
}
