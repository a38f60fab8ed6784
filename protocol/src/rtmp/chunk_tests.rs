use super::*;
use crate::rtmp::chunker::chunk_message;

fn reader() -> ChunkReader {
    ChunkReader::new(ChunkLimits::default())
}

fn read_all(r: &mut ChunkReader, bytes: &[u8]) -> Vec<RawMessage> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(m) = r.read(&mut buf).unwrap() {
        out.push(m);
    }
    assert!(buf.is_empty(), "{} bytes left unread", buf.len());
    out
}

/// A fmt-0 header with a one-byte basic header.
fn fmt0(csid: u8, ts: u32, len: u32, type_id: u8, msid: u32) -> Vec<u8> {
    let mut v = vec![csid];
    v.extend_from_slice(&ts.min(0xffffff).to_be_bytes()[1..]);
    v.extend_from_slice(&len.to_be_bytes()[1..]);
    v.push(type_id);
    v.extend_from_slice(&msid.to_le_bytes());
    if ts >= 0xffffff {
        v.extend_from_slice(&ts.to_be_bytes());
    }
    v
}

#[test]
fn single_and_multi_chunk_messages() {
    let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    let bytes = chunk_message(6, 9, 40, 1, &payload, 128);
    let msgs = read_all(&mut reader(), &bytes);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].payload, payload);
    assert_eq!((msgs[0].timestamp, msgs[0].type_id, msgs[0].stream_id), (40, 9, 1));
}

#[test]
fn interleaved_chunk_streams_reassemble_separately() {
    // Two 200-byte messages on csid 4 and 5 with their chunks alternating.
    let a: Vec<u8> = vec![0xaa; 200];
    let b: Vec<u8> = vec![0xbb; 200];
    let mut wire = fmt0(4, 10, 200, 9, 1);
    wire.extend_from_slice(&a[..128]);
    wire.extend(fmt0(5, 20, 200, 8, 1));
    wire.extend_from_slice(&b[..128]);
    wire.push(0xc4);
    wire.extend_from_slice(&a[128..]);
    wire.push(0xc5);
    wire.extend_from_slice(&b[128..]);
    let msgs = read_all(&mut reader(), &wire);
    assert_eq!(msgs.len(), 2);
    assert_eq!((msgs[0].csid, msgs[0].payload.as_ref()), (4, &a[..]));
    assert_eq!((msgs[1].csid, msgs[1].payload.as_ref()), (5, &b[..]));
}

#[test]
fn two_and_three_byte_basic_headers() {
    // csid 100 (2-byte form: 0, 100-64) and csid 1000 (3-byte form: 1, lo, hi).
    let mut wire = vec![0x00, 36];
    wire.extend_from_slice(&fmt0(0, 5, 3, 8, 1)[1..]);
    wire.extend_from_slice(b"abc");
    let id = 1000 - 64;
    wire.extend_from_slice(&[0x01, (id & 0xff) as u8, (id >> 8) as u8]);
    wire.extend_from_slice(&fmt0(0, 6, 2, 9, 1)[1..]);
    wire.extend_from_slice(b"de");
    let msgs = read_all(&mut reader(), &wire);
    assert_eq!(msgs[0].csid, 100);
    assert_eq!(msgs[1].csid, 1000);
    assert_eq!(msgs[1].payload.as_ref(), b"de");
}

#[test]
fn extended_timestamp_repeated_on_type3() {
    let payload = vec![7u8; 300];
    let ts = 0x0123_4567;
    let bytes = chunk_message(6, 9, ts, 1, &payload, 128); // our chunker repeats it
    let msgs = read_all(&mut reader(), &bytes);
    assert_eq!((msgs[0].timestamp, msgs[0].payload.len()), (ts, 300));
}

#[test]
fn extended_timestamp_not_repeated_on_type3() {
    let payload = [7u8; 200];
    let ts = 0x0123_4567;
    let mut wire = fmt0(6, ts, 200, 9, 1);
    wire.extend_from_slice(&payload[..128]);
    wire.push(0xc6);
    wire.extend_from_slice(&payload[128..]);
    let msgs = read_all(&mut reader(), &wire);
    assert_eq!((msgs[0].timestamp, msgs[0].payload.as_ref()), (ts, &payload[..]));
}

#[test]
fn deltas_accumulate_across_formats() {
    let mut wire = fmt0(4, 1000, 1, 9, 1);
    wire.push(1);
    wire.extend_from_slice(&[0x44, 0, 0, 33, 0, 0, 2, 9]); // fmt1 delta 33, len 2
    wire.extend_from_slice(&[2, 2]);
    wire.extend_from_slice(&[0x84, 0, 0, 34]); // fmt2 delta 34, len 2
    wire.extend_from_slice(&[3, 3]);
    wire.push(0xc4); // fmt3 new message, same delta
    wire.extend_from_slice(&[4, 4]);
    let ts: Vec<u32> = read_all(&mut reader(), &wire).iter().map(|m| m.timestamp).collect();
    assert_eq!(ts, vec![1000, 1033, 1067, 1101]);
}

#[test]
fn set_chunk_size_is_applied_and_checked() {
    let mut r = reader();
    let mut wire = fmt0(2, 0, 4, 1, 0);
    wire.extend_from_slice(&4096u32.to_be_bytes());
    read_all(&mut r, &wire);
    assert_eq!(r.chunk_size(), 4096);

    for (size, err) in [
        (0u32, ChunkError::ChunkSizeZero),
        (
            0x7fff_ffff,
            ChunkError::ChunkSizeTooLarge {
                size: 0x7fff_ffff,
                max: 0xffffff,
            },
        ),
    ] {
        let mut wire = fmt0(2, 0, 4, 1, 0);
        wire.extend_from_slice(&size.to_be_bytes());
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(reader().read(&mut buf), Err(err));
    }
}

#[test]
fn oversized_message_is_refused_before_allocation() {
    let mut r = ChunkReader::new(ChunkLimits {
        max_message_bytes: 1000,
        ..ChunkLimits::default()
    });
    let mut buf = BytesMut::from(&fmt0(4, 0, 0xffffff, 9, 1)[..]);
    assert!(matches!(
        r.read(&mut buf),
        Err(ChunkError::MessageTooLarge { len: 0xffffff, .. })
    ));
}

/// A reader whose chunk streams may hold `budget` bytes together.
fn budgeted(budget: usize) -> ChunkReader {
    ChunkReader::new(ChunkLimits {
        max_buffered_bytes: budget,
        ..ChunkLimits::default()
    })
}

#[test]
fn partial_messages_across_chunk_streams_are_bounded_in_bytes() {
    // Every chunk stream id gets the first chunk of a 1000-byte message: each costs its
    // declared length plus its state, until the budget refuses one.
    let budget = 20_000;
    let mut r = budgeted(budget);
    let mut refused = None;
    for csid in 3..63u8 {
        let mut wire = fmt0(csid, 0, 1000, 9, 1);
        wire.extend_from_slice(&[0u8; 128]);
        let mut buf = BytesMut::from(&wire[..]);
        match r.read(&mut buf) {
            Ok(None) => assert!(r.buffered_bytes() <= budget),
            other => {
                refused = Some((csid, other));
                break;
            }
        }
    }
    let (csid, result) = refused.expect("the budget refused a partial message");
    assert!(
        matches!(result, Err(ChunkError::TooMuchBuffered { max: 20_000, .. })),
        "{result:?}"
    );
    assert_eq!(
        usize::from(csid - 3),
        budget / (1000 + CHUNK_STREAM_COST),
        "partials held before the refusal"
    );
    assert!(r.buffered_bytes() <= budget);
}

#[test]
fn chunk_stream_ids_cost_bytes_even_without_partial_messages() {
    // Whole one-chunk messages on ever new ids (3-byte basic headers reach 65,599 of them):
    // the table of chunk stream states is what grows, and it is counted.
    let mut r = budgeted(64 * 1024);
    let mut result = Ok(None);
    let mut ids = 0usize;
    for id in 0..65_535u32 {
        let mut wire = vec![0x01, (id & 0xff) as u8, (id >> 8) as u8];
        wire.extend_from_slice(&fmt0(0, 0, 1, 9, 1)[1..]);
        wire.push(0x17);
        let mut buf = BytesMut::from(&wire[..]);
        result = r.read(&mut buf);
        if result.is_err() {
            break;
        }
        ids += 1;
    }
    assert!(matches!(result, Err(ChunkError::TooMuchBuffered { .. })), "{result:?}");
    assert_eq!(ids, 64 * 1024 / CHUNK_STREAM_COST);
}

#[test]
fn a_finished_or_aborted_message_gives_its_bytes_back() {
    let mut r = budgeted(CHUNK_STREAM_COST * 2 + 1000);
    for _ in 0..50 {
        // 1000 bytes in 128-byte chunks: held while partial, released when whole.
        let msgs = read_all(&mut r, &chunk_message(4, 9, 0, 1, &[1u8; 1000], 128));
        assert_eq!(msgs.len(), 1);
        // Half a message, then an Abort for it.
        let mut wire = fmt0(5, 0, 1000, 8, 1);
        wire.extend_from_slice(&[0u8; 128]);
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(r.read(&mut buf), Ok(None));
        r.abort(5);
    }
    assert_eq!(r.buffered_bytes(), 2 * CHUNK_STREAM_COST);
}

#[test]
fn continuation_without_header_is_an_error() {
    let mut buf = BytesMut::from(&[0xc4u8, 1, 2, 3][..]);
    assert_eq!(
        reader().read(&mut buf),
        Err(ChunkError::NoPreviousHeader { csid: 4, fmt: 3 })
    );
}

#[test]
fn byte_at_a_time_input_gives_the_same_messages() {
    let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    let mut wire = chunk_message(4, 9, 0x0100_0000, 1, &payload, 128).to_vec();
    wire.extend_from_slice(&chunk_message(5, 8, 20, 1, b"audio", 128));
    let mut r = reader();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in wire {
        buf.put_u8(b);
        while let Some(m) = r.read(&mut buf).unwrap() {
            got.push(m);
        }
    }
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].payload, payload);
    assert_eq!(got[1].payload.as_ref(), b"audio");
}

#[test]
fn rml_serializer_output_reads_back() {
    use rml_rtmp::chunk_io::ChunkSerializer;
    use rml_rtmp::messages::MessagePayload;
    use rml_rtmp::time::RtmpTimestamp;
    let mut ser = ChunkSerializer::new();
    let mut wire = ser.set_max_chunk_size(100, RtmpTimestamp::new(0)).unwrap().bytes;
    let mut expected = Vec::new();
    for i in 0..20u32 {
        let data = Bytes::from(vec![i as u8; 50 + 37 * i as usize]);
        let p = MessagePayload {
            timestamp: RtmpTimestamp::new(i * 33),
            type_id: 9,
            message_stream_id: 1,
            data: data.clone(),
        };
        wire.extend(ser.serialize(&p, false, false).unwrap().bytes);
        expected.push((i * 33, data));
    }
    let msgs = read_all(&mut reader(), &wire);
    let got: Vec<(u32, Bytes)> = msgs
        .into_iter()
        .filter(|m| m.type_id == 9)
        .map(|m| (m.timestamp, m.payload))
        .collect();
    assert_eq!(got, expected);
}

/// A publisher whose 32-bit clock wraps mid-stream (one live for 49.7 days, or one that
/// starts near the wrap) as `rml_rtmp` writes it: fmt-1/2 deltas and extended timestamps
/// across the wrap read back as the wrapped timestamps, one per message.
#[test]
fn rml_serializer_deltas_across_the_32_bit_wrap_read_back() {
    use rml_rtmp::chunk_io::ChunkSerializer;
    use rml_rtmp::messages::MessagePayload;
    use rml_rtmp::time::RtmpTimestamp;
    let mut ser = ChunkSerializer::new();
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    let first = u32::MAX - 300;
    for i in 0..20u32 {
        let ts = first.wrapping_add(i * 33);
        let data = Bytes::from(vec![i as u8; 60 + 50 * i as usize]);
        let p = MessagePayload {
            timestamp: RtmpTimestamp::new(ts),
            type_id: 9,
            message_stream_id: 1,
            data: data.clone(),
        };
        wire.extend(ser.serialize(&p, false, false).unwrap().bytes);
        expected.push((ts, data));
    }
    assert!(expected.windows(2).any(|w| w[1].0 < w[0].0), "the run crosses the wrap");
    let got: Vec<(u32, Bytes)> = read_all(&mut reader(), &wire)
        .into_iter()
        .map(|m| (m.timestamp, m.payload))
        .collect();
    assert_eq!(got, expected);
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)) {
        let mut r = ChunkReader::new(ChunkLimits { max_chunk_size: 65536, max_message_bytes: 1 << 20, ..ChunkLimits::default() });
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(_)) = r.read(&mut buf) {}
    }

    #[test]
    fn chunker_roundtrip(sizes in proptest::collection::vec(0usize..5000, 1..20), chunk in 1u32..5000, ts0 in proptest::prelude::any::<u32>()) {
        let mut wire = Vec::new();
        let mut want = Vec::new();
        for (i, len) in sizes.iter().enumerate() {
            let payload: Vec<u8> = (0..*len).map(|j| (i + j) as u8).collect();
            let ts = ts0.wrapping_add(i as u32 * 40);
            wire.extend_from_slice(&chunk_message(8, 9, ts, 1, &payload, chunk));
            want.push((ts, payload));
        }
        let mut r = reader();
        r.set_chunk_size(chunk).unwrap();
        let got: Vec<(u32, Vec<u8>)> = read_all(&mut r, &wire).into_iter().map(|m| (m.timestamp, m.payload.to_vec())).collect();
        proptest::prop_assert_eq!(got, want);
    }
}
