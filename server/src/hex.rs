//! Hexadecimal, the one implementation the signatures and the HLS session tokens share.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Exactly `2 * N` hex digits, either case (a signature someone else wrote).
pub fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    decode_with(text, |d| char::from(d).to_digit(16))
}

/// Exactly `2 * N` lowercase hex digits (what [`encode`] writes: one spelling per value, so
/// a token cannot be varied by changing case).
pub fn decode_lower<const N: usize>(text: &str) -> Option<[u8; N]> {
    decode_with(text, |d| {
        DIGITS.iter().position(|&c| c == d).and_then(|v| u32::try_from(v).ok())
    })
}

fn decode_with<const N: usize>(text: &str, value: impl Fn(u8) -> Option<u32>) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let nibble = |d| value(d).and_then(|v| u8::try_from(v).ok());
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_case() {
        assert_eq!(encode(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert_eq!(decode::<3>("00AB7f"), Some([0x00, 0xab, 0x7f]));
        assert_eq!(decode_lower::<3>("00ab7f"), Some([0x00, 0xab, 0x7f]));
        assert_eq!(decode_lower::<3>("00AB7f"), None);
        assert_eq!(decode::<3>("00ab7"), None);
        assert_eq!(decode::<2>("zz00"), None);
    }
}
