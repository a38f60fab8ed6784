//! Times in tokens: Unix seconds written in decimal or hex, and the one freshness rule every
//! scheme applies once it knows when its token expires.

use std::time::{SystemTime, UNIX_EPOCH};

/// The last second of year 9999: a later "Unix time" is a typo or an attack on arithmetic,
/// never a real expiry.
pub const MAX_UNIX_SECS: u64 = 253_402_300_799;

/// Milliseconds since the Unix epoch; 0 before it.
pub fn unix_ms(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Unix seconds in decimal digits only (no sign, no spaces), at most [`MAX_UNIX_SECS`].
pub fn decimal_secs(text: &str) -> Option<u64> {
    parse(text, 10)
}

/// Unix seconds in hex digits of either case, without `0x`, at most [`MAX_UNIX_SECS`].
pub fn hex_secs(text: &str) -> Option<u64> {
    parse(text, 16)
}

fn parse(text: &str, radix: u32) -> Option<u64> {
    // Sixteen digits are more than either radix needs; the bound keeps parsing trivially cheap.
    if text.is_empty() || text.len() > 16 || !text.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(text, radix).ok().filter(|&s| s <= MAX_UNIX_SECS)
}

/// A token that expires at `expires_ms` is accepted until `skew_ms` after that, both ends
/// included. `Err` carries how long ago it expired, in whole seconds.
pub fn fresh(expires_ms: u64, skew_ms: u64, now_ms: u64) -> Result<(), u64> {
    if now_ms <= expires_ms.saturating_add(skew_ms) {
        Ok(())
    } else {
        Err((now_ms - expires_ms) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn reads_unix_seconds_and_refuses_the_rest() {
        assert_eq!(decimal_secs("1622194197"), Some(1_622_194_197));
        assert_eq!(decimal_secs("0"), Some(0));
        assert_eq!(decimal_secs("253402300799"), Some(MAX_UNIX_SECS));
        for bad in [
            "",
            "253402300800",
            "18446744073709551616",
            "99999999999999999",
            "+1",
            "-1",
            "1e9",
            " 1",
            "５",
        ] {
            assert_eq!(decimal_secs(bad), None, "{bad:?}");
        }
        assert_eq!(hex_secs("5C271099"), Some(1_546_064_025));
        assert_eq!(hex_secs("5c271099"), Some(1_546_064_025));
        for bad in ["", "0x5C271099", "5C27109G", "FFFFFFFFFFFFFFFF", "1FFFFFFFFFFFFFFFF"] {
            assert_eq!(hex_secs(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn freshness_includes_both_ends_of_the_skew() {
        assert_eq!(fresh(10_000, 0, 10_000), Ok(()));
        assert_eq!(fresh(10_000, 0, 10_001), Err(0));
        assert_eq!(fresh(10_000, 5_000, 15_000), Ok(()));
        assert_eq!(fresh(10_000, 5_000, 15_001), Err(5));
        assert_eq!(fresh(u64::MAX, u64::MAX, u64::MAX), Ok(()));
    }

    #[test]
    fn now_in_milliseconds() {
        assert_eq!(unix_ms(UNIX_EPOCH + Duration::from_millis(1_500)), 1_500);
        assert_eq!(unix_ms(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
