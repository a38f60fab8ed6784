//! The server's `server_id`, as SRS finds its own (`SrsConfig::get_server_id`,
//! `srs_app_config.cpp`): the environment (`ESTUARY_SERVER_ID`; SRS reads `SRS_SERVER_ID`),
//! else the config (`server.id`), else the id kept in the id file by an earlier run, else a
//! new random `vid-…` one (SRS's form). Whatever it is, it is written to the id file, so the
//! next start reports the same one: a backend keyed by server keeps recognising this one.
//!
//! The file is best effort, as in SRS: one that cannot be read or written is logged and the
//! server runs on.

use std::path::Path;

use crate::config::server::{check_server_id, ServerConfig};

/// The environment variable that sets the `server_id` (before `server.id`).
pub const ENV: &str = "ESTUARY_SERVER_ID";

/// Why no `server_id` could be settled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServerIdError {
    #[error("{ENV} = {value:?} {why}")]
    BadEnv { value: String, why: String },
}

/// The `server_id` for this process (see the module doc); `env` is the value of
/// [`ENV`], if set.
pub fn resolve(config: &ServerConfig, env: Option<String>) -> Result<String, ServerIdError> {
    let file = Path::new(&config.id_file);
    let keeps = !config.id_file.is_empty();
    let chosen = match env.filter(|v| !v.is_empty()) {
        Some(value) => {
            check_server_id(&value).map_err(|why| ServerIdError::BadEnv {
                value: value.clone(),
                why,
            })?;
            value
        }
        None if !config.id.is_empty() => config.id.clone(),
        None => keeps.then(|| kept(file)).flatten().unwrap_or_else(generate),
    };
    if keeps {
        if let Err(e) = std::fs::write(file, &chosen) {
            tracing::warn!(file = %file.display(), cause = %e, "cannot keep the server_id; the next start may report another one");
        }
    }
    Ok(chosen)
}

/// The id an earlier run kept in `file`, if there is a valid one.
fn kept(file: &Path) -> Option<String> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(file = %file.display(), cause = %e, "cannot read the kept server_id; making a new one");
            return None;
        }
    };
    let id = text.trim();
    match check_server_id(id) {
        Ok(()) => Some(id.to_string()),
        Err(why) => {
            tracing::warn!(file = %file.display(), %why, "the kept server_id is unusable; making a new one");
            None
        }
    }
}

/// A new id in SRS's form (`srs_generate_stat_vid`): `vid-` and 7 random letters and digits.
fn generate() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = getrandom::u64().unwrap_or_else(|_| {
        // No OS randomness: the time still makes two servers differ.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id())
    });
    let mut id = String::from("vid-");
    for _ in 0..7 {
        id.push(char::from(ALPHABET[(n % 36) as usize]));
        n /= 36;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory of the test's own.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("estuary-server-id-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    fn config(dir: &Path, id: &str) -> ServerConfig {
        ServerConfig {
            id: id.into(),
            id_file: dir.join("estuary.id").to_string_lossy().into_owned(),
        }
    }

    #[test]
    fn a_generated_id_is_kept_for_the_next_start() {
        let dir = scratch("kept");
        let first = resolve(&config(&dir, ""), None).expect("resolved");
        assert!(first.starts_with("vid-") && first.len() == 11, "{first}");
        assert_eq!(resolve(&config(&dir, ""), None).expect("resolved"), first);
    }

    #[test]
    fn the_environment_then_the_config_win_and_are_kept() {
        let dir = scratch("env");
        let c = config(&dir, "from-config");
        assert_eq!(resolve(&c, Some("from-env".into())).expect("resolved"), "from-env");
        assert_eq!(resolve(&c, None).expect("resolved"), "from-config");
        // Kept: without either, the next start reports the last one.
        assert_eq!(resolve(&config(&dir, ""), None).expect("resolved"), "from-config");
        let bad = resolve(&c, Some("not valid".into())).expect_err("refused");
        assert!(bad.to_string().contains(ENV), "{bad}");
    }

    #[test]
    fn an_unusable_kept_id_is_replaced() {
        let dir = scratch("unusable");
        let c = config(&dir, "");
        std::fs::write(&c.id_file, "bad id\n").expect("write");
        let id = resolve(&c, None).expect("resolved");
        assert!(id.starts_with("vid-"), "{id}");
    }
}
