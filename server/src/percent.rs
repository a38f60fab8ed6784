//! Percent-decoding of URL parts, the one implementation the query readers share (the signed
//! URL checks, the HTTP API's filters).

/// RFC 3986: each `%XX` becomes its byte, a broken escape stays as it is, `+` stays `+`.
/// For values whose `+` is a character (base64, the signatures' hex and base64url).
pub fn decode(text: &str) -> String {
    decode_with(text, false)
}

/// As a form (`application/x-www-form-urlencoded`) has it: [`decode`], and `+` is a space.
pub fn decode_form(text: &str) -> String {
    decode_with(text, true)
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
    fn escapes_plus_and_broken_escapes() {
        assert_eq!(decode_form("cam%201+x%2F%zz%4"), "cam 1 x/%zz%4");
        assert_eq!(decode("a+b%3D%3d%"), "a+b==%");
    }
}
