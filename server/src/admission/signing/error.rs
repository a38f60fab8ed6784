//! Why a signed URL was refused: a bounded label for metrics and a message for the log. No
//! variant can carry the key or the token: reasons are `&'static str`, times are the token's
//! public timestamp.

use crate::admission::action::Action;

use super::config::Scheme;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The query has none of the scheme's parameters.
    #[error("{action} needs a {scheme} signature: no {param} in the query")]
    Missing {
        action: Action,
        scheme: Scheme,
        param: &'static str,
    },
    /// The signature is authentic but its time is up (past the accepted skew).
    #[error("{action} signature ({scheme}) expired at Unix time {expired_at} ({ago_s} s ago)")]
    Expired {
        action: Action,
        scheme: Scheme,
        expired_at: u64,
        ago_s: u64,
    },
    /// Well formed, but made with none of the configured keys for this app, stream and action.
    #[error("{action} signature ({scheme}) does not match this stream with any configured key")]
    Forged { action: Action, scheme: Scheme },
    /// The parameters are there but cannot be read.
    #[error("{action} signature ({scheme}) is malformed: {reason}")]
    Malformed {
        action: Action,
        scheme: Scheme,
        reason: &'static str,
    },
}

impl SignError {
    /// `missing`, `expired`, `forged` or `malformed`: the `reason` label to count refusals by.
    pub fn label(&self) -> &'static str {
        match self {
            SignError::Missing { .. } => "missing",
            SignError::Expired { .. } => "expired",
            SignError::Forged { .. } => "forged",
            SignError::Malformed { .. } => "malformed",
        }
    }
}

/// The errors one scheme raises for one action, so that its checks read as sentences.
#[derive(Clone, Copy)]
pub struct Refuse {
    pub action: Action,
    pub scheme: Scheme,
}

impl Refuse {
    pub fn missing(self, param: &'static str) -> SignError {
        SignError::Missing {
            action: self.action,
            scheme: self.scheme,
            param,
        }
    }

    pub fn malformed(self, reason: &'static str) -> SignError {
        SignError::Malformed {
            action: self.action,
            scheme: self.scheme,
            reason,
        }
    }

    pub fn forged(self) -> SignError {
        SignError::Forged {
            action: self.action,
            scheme: self.scheme,
        }
    }

    pub fn expired(self, expired_at: u64, ago_s: u64) -> SignError {
        SignError::Expired {
            action: self.action,
            scheme: self.scheme,
            expired_at,
            ago_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_and_messages_name_the_action() {
        let refuse = Refuse {
            action: Action::Publish,
            scheme: Scheme::Tencent,
        };
        let all = [
            refuse.missing("txSecret"),
            refuse.expired(1_700_000_000, 42),
            refuse.forged(),
            refuse.malformed("txTime is not hexadecimal"),
        ];
        let labels: Vec<_> = all.iter().map(SignError::label).collect();
        assert_eq!(labels, ["missing", "expired", "forged", "malformed"]);
        assert_eq!(
            all[1].to_string(),
            "publish signature (tencent) expired at Unix time 1700000000 (42 s ago)"
        );
        assert!(all.iter().all(|e| e.to_string().starts_with("publish")));
    }
}
