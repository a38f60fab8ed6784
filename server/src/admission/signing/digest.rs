//! Digests as the schemes write them: MD5 and HMAC-SHA256 (RustCrypto), lowercase hex out,
//! hex of either case or unpadded base64url in, and a comparison whose time does not depend
//! on where two digests differ.

use ::hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// MD5 of the concatenation of `parts`.
pub fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length (RFC 2104 §2: longer ones are hashed first).
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of every length")
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Whether two digests are equal, in time that depends only on their length.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

pub use crate::hex::{decode as from_hex, encode as to_hex};

/// Exactly `N` bytes written in base64url, unpadded or with its `=` padding; the unused low
/// bits of the last digit must be zero, so each value has one spelling.
pub fn from_base64url<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.trim_end_matches('=').as_bytes();
    let padding = text.len() - digits.len();
    if digits.len() != (N * 4).div_ceil(3) || (padding != 0 && text.len() != N.div_ceil(3) * 4) {
        return None;
    }
    let mut out = [0u8; N];
    let (mut acc, mut bits, mut at) = (0u32, 0u32, 0usize);
    for &d in digits {
        acc = ((acc << 6) | base64url_value(d)?) & 0x3fff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(at)? = u8::try_from((acc >> bits) & 0xff).ok()?;
            at += 1;
        }
    }
    (at == N && acc & ((1 << bits) - 1) == 0).then_some(out)
}

fn base64url_value(digit: u8) -> Option<u32> {
    let value = match digit {
        b'A'..=b'Z' => digit - b'A',
        b'a'..=b'z' => digit - b'a' + 26,
        b'0'..=b'9' => digit - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unpadded base64url (RFC 4648 §5) of `bytes`.
    fn to_base64url(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    }

    #[test]
    fn md5_and_hmac_match_their_rfc_vectors() {
        // RFC 1321 §A.5.
        assert_eq!(to_hex(&md5(&[b"abc"])), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(to_hex(&md5(&[b"a", b"", b"bc"])), "900150983cd24fb0d6963f7d28e17f72");
        // RFC 4231 test case 2.
        assert_eq!(
            to_hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hex_round_trips_either_case_and_refuses_the_rest() {
        let bytes = [0x00, 0x9f, 0xa0, 0xff];
        assert_eq!(to_hex(&bytes), "009fa0ff");
        assert_eq!(from_hex::<4>("009FA0ff"), Some(bytes));
        assert_eq!(from_hex::<4>("009fa0f"), None);
        assert_eq!(from_hex::<4>("009fa0fg"), None);
        assert_eq!(from_hex::<4>("+09fa0ff"), None);
        assert_eq!(from_hex::<2>("éé"), None);
    }

    #[test]
    fn base64url_round_trips_and_has_one_spelling() {
        // RFC 4648 §10 vectors ("foobar" prefixes), in the URL alphabet.
        for (plain, coded) in [("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg")] {
            assert_eq!(to_base64url(plain.as_bytes()), coded);
        }
        let bytes: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(251));
        let coded = to_base64url(&bytes);
        assert_eq!(coded.len(), 43);
        assert_eq!(from_base64url::<32>(&coded), Some(bytes));
        assert_eq!(from_base64url::<32>(&format!("{coded}=")), Some(bytes));
        assert_eq!(from_base64url::<32>(&format!("{coded}==")), None);
        assert_eq!(from_base64url::<32>(&coded[1..]), None);
        assert_eq!(from_base64url::<32>(&format!("+{}", &coded[1..])), None);
        // The last digit carries 2 unused bits: a non-zero one would be a second spelling.
        const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = ALPHABET.find(char::from(coded.as_bytes()[42])).unwrap();
        let respelled = format!("{}{}", &coded[..42], &ALPHABET[(last ^ 1)..=(last ^ 1)]);
        assert_eq!(from_base64url::<32>(&respelled), None);
    }

    #[test]
    fn comparison_needs_equal_bytes() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}
