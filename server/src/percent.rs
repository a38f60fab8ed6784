//! Percent-encoding and -decoding of URL parts, the one implementation the query readers
//! (the signed URL checks, the HTTP API's filters) and the HLS paths share.

/// RFC 3986: each `%XX` becomes its byte, a broken escape stays as it is, `+` stays `+`.
/// For values whose `+` is a character (base64, the signatures' hex and base64url).
pub fn decode(text: &str) -> String {
    decode_with(text, false)
}

/// As a form (`application/x-www-form-urlencoded`) has it: [`decode`], and `+` is a space.
pub fn decode_form(text: &str) -> String {
    decode_with(text, true)
}

/// `text` as one path segment of a URI (RFC 3986 §2.3): unreserved characters (letters,
/// digits, `-._~`) stay, every other byte becomes `%XX`. A relative reference made of it can
/// never read as a scheme (`a:b`), a query, a fragment or another path segment.
pub fn encode_path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn decode_with(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (None, b'+') if plus_is_space => out.push(b' '),
            (None, byte) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_keep_only_unreserved_characters() {
        assert_eq!(encode_path_segment("cam-1_a.b~c"), "cam-1_a.b~c");
        assert_eq!(encode_path_segment("a@b+c:d e/é"), "a%40b%2Bc%3Ad%20e%2F%C3%A9");
        for name in ["cam@1+x", "a:b", "x y", "日本"] {
            assert_eq!(decode(&encode_path_segment(name)), name);
        }
    }

    #[test]
    fn escapes_plus_and_broken_escapes() {
        assert_eq!(decode_form("cam%201+x%2F%zz%4"), "cam 1 x/%zz%4");
        assert_eq!(decode("a+b%3D%3d%"), "a+b==%");
    }
}
