//! A nesting-depth check for AMF0 bytes, run before they reach `rml_amf0`.
//!
//! `rml_amf0` parses nested objects and arrays recursively, so a few kilobytes of
//! `03 00 01 61 03 …` from a hostile peer would overflow the stack. This walk is iterative
//! and only counts how deep containers nest; everything else is left to the real parser.

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0a;

/// Where a container's next value comes from.
enum Frame {
    /// Object or ECMA array: a property name (u16 length + bytes) precedes each value.
    Object,
    /// Strict array with this many values left.
    Array(u32),
}

/// Returns the deepest container nesting in `data`, stopping early (with `limit + 1`) once
/// it exceeds `limit`. Malformed input returns the depth reached so far; the real parser
/// will report the malformation.
pub fn max_depth(data: &[u8], limit: usize) -> usize {
    let mut stack: Vec<Frame> = Vec::new();
    let mut pos = 0usize;
    let mut deepest = 0usize;
    let u16_at = |p: usize| {
        data.get(p..p + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    };
    loop {
        // Inside an object: read a property name, or the end marker.
        match stack.last_mut() {
            Some(Frame::Object) => {
                let Some(len) = u16_at(pos) else { return deepest };
                pos += 2;
                if len == 0 && data.get(pos) == Some(&OBJECT_END) {
                    pos += 1;
                    stack.pop();
                    continue;
                }
                pos += len;
            }
            Some(Frame::Array(0)) => {
                stack.pop();
                continue;
            }
            Some(Frame::Array(n)) => *n -= 1,
            None => {}
        }
        let Some(&marker) = data.get(pos) else { return deepest };
        pos += 1;
        match marker {
            NUMBER => pos += 8,
            BOOLEAN => pos += 1,
            STRING => match u16_at(pos) {
                Some(len) => pos += 2 + len,
                None => return deepest,
            },
            NULL | UNDEFINED => {}
            // Where a value should be, `rml_amf0` takes an object-end marker as the end of the
            // strict array it is in, whatever the array's count said (or, outside any
            // container, as the end of the message; in an object, as an error). The walk must
            // end the array there too: if it read on inside the array, it would take the bytes
            // after it for other things than the parser does, and a peer could hide nesting
            // from it: 65 KB of `connect` overflowed a tokio worker's stack and aborted the
            // server. The `amf0_command` fuzz target checks the walk against the parser.
            OBJECT_END => match stack.last() {
                Some(Frame::Array(_)) => {
                    stack.pop();
                }
                _ => return deepest,
            },
            OBJECT | ECMA_ARRAY | STRICT_ARRAY => {
                let frame = match marker {
                    OBJECT => Frame::Object,
                    ECMA_ARRAY => {
                        pos += 4;
                        Frame::Object
                    }
                    _ => {
                        let Some(b) = data.get(pos..pos + 4) else {
                            return deepest;
                        };
                        pos += 4;
                        Frame::Array(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    }
                };
                stack.push(frame);
                deepest = deepest.max(stack.len());
                if deepest > limit {
                    return deepest;
                }
            }
            _ => return deepest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rml_rtmp::rml_amf0::{deserialize, serialize, Amf0Value};
    use std::collections::HashMap;

    #[test]
    fn measures_real_nesting() {
        let inner = Amf0Value::Object(HashMap::from([("a".to_string(), Amf0Value::Number(1.0))]));
        let outer = Amf0Value::Object(HashMap::from([("o".to_string(), inner)]));
        let arr = Amf0Value::StrictArray(vec![outer, Amf0Value::Null]);
        let bytes = serialize(&vec![Amf0Value::Utf8String("x".into()), arr, Amf0Value::Number(2.0)]).unwrap();
        assert_eq!(max_depth(&bytes, 10), 3);
    }

    /// An object whose property is a strict array that `rml_amf0` ends early at an object-end
    /// marker; after it, a property whose name's length bytes read, to a walk still inside
    /// the array, as a string marker and a 65 KB string, over `levels` nested objects.
    fn nesting_behind_an_ended_array(levels: usize) -> Vec<u8> {
        let mut bytes = vec![OBJECT, 0, 1, b'a', STRICT_ARRAY, 0, 0, 0, 2, OBJECT_END];
        // Name length 0x02ff (767 bytes of 'a'); as a value: a string of 0xff61 bytes.
        bytes.extend_from_slice(&[STRING, 0xff]);
        bytes.extend_from_slice(&[b'a'; 767]);
        for _ in 0..levels {
            bytes.extend_from_slice(&[OBJECT, 0, 1, b'a']);
        }
        bytes.push(NULL);
        for _ in 0..=levels {
            bytes.extend_from_slice(&[0, 0, OBJECT_END]);
        }
        bytes
    }

    fn depth(value: &Amf0Value) -> usize {
        match value {
            Amf0Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
            Amf0Value::StrictArray(values) => 1 + values.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    #[test]
    fn an_array_ended_by_an_object_end_marker_hides_no_nesting() {
        // Small enough for the parser to build: the walk sees at least what it builds.
        let bytes = nesting_behind_an_ended_array(20);
        let values = deserialize(&mut &bytes[..]).unwrap();
        let built = values.iter().map(depth).max().unwrap();
        assert_eq!(built, 21, "{values:?}");
        assert!(max_depth(&bytes, 64) >= built);
        // What a peer would send to overflow the parser's stack is refused before it.
        let hostile = nesting_behind_an_ended_array(16_000);
        assert_eq!(max_depth(&hostile, 32), 33);
    }

    #[test]
    fn hostile_nesting_stops_at_the_limit() {
        let mut bytes = Vec::new();
        for _ in 0..100_000 {
            bytes.extend_from_slice(&[OBJECT, 0, 1, b'a']);
        }
        assert_eq!(max_depth(&bytes, 32), 33);
    }
}
