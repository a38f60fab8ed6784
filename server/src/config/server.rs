//! `[server]`: who this server is to the backends: the `server_id` of hook bodies and API
//! answers, kept across restarts as SRS keeps it (`server_id.rs` resolves it).

use serde::Deserialize;

/// Longest `server.id`, in bytes.
pub const MAX_SERVER_ID_BYTES: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The `server_id` hooks and the API report. Empty: the environment's
    /// `ESTUARY_SERVER_ID`, else the one kept in `id_file`, else a new random one (which is
    /// then kept there). Set here, it is used as is. Letters, digits and `._:-`, at most
    /// 128 bytes.
    pub id: String,
    /// File the `server_id` is kept in, so a restart reports the same one (SRS keeps it in
    /// `srs.id` beside its pid file). Relative to the working directory; empty: not kept
    /// (a new random id per process unless `id` or the environment sets one).
    pub id_file: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            id: String::new(),
            id_file: "estuary.id".into(),
        }
    }
}

impl ServerConfig {
    /// Every problem, each naming its `server.*` key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.id.is_empty() {
            if let Err(why) = check_server_id(&self.id) {
                problems.push(format!("server.id = {:?} {why}", self.id));
            }
        }
        if self.id_file.chars().any(char::is_control) {
            problems.push("server.id_file must not contain control characters".into());
        }
        problems
    }
}

/// Why `id` cannot be a `server_id`: it goes into JSON bodies, logs and metric labels as is.
pub fn check_server_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_SERVER_ID_BYTES {
        return Err(format!("must be 1..={MAX_SERVER_ID_BYTES} bytes long"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
    {
        return Err("may hold only letters, digits and . _ : -".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(ServerConfig::default().validate().is_empty());
        let ok = ServerConfig {
            id: "edge-1.eu:a_b".into(),
            ..ServerConfig::default()
        };
        assert!(ok.validate().is_empty());
        for bad in ["has space", "quote\"", &"x".repeat(129)] {
            let c = ServerConfig {
                id: bad.into(),
                ..ServerConfig::default()
            };
            let problems = c.validate();
            assert!(
                problems.len() == 1 && problems[0].starts_with("server.id"),
                "{problems:?}"
            );
        }
    }
}
