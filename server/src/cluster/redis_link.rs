//! The node's one connection to Redis: made on first use (a Redis that is down when the
//! server starts is reached later), re-made by `redis`'s connection manager after a failure,
//! and every command bounded by `cluster.redis_timeout_ms`.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, Script, ScriptInvocation};

/// Counter `{op}`: Redis commands of the cluster directory that failed or timed out; op is
/// `claim`, `renew`, `release`, `lookup` or `heartbeat`.
pub const REDIS_ERRORS_TOTAL: &str = "estuary_cluster_redis_errors_total";

/// Counts a failed command of operation `op`.
pub fn failed(op: &'static str, e: &RedisError) {
    metrics::counter!(REDIS_ERRORS_TOTAL, "op" => op).increment(1);
    tracing::debug!(op, cause = %e, "cluster directory command failed");
}

/// Why a Redis command did not answer.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis did not answer within {0} ms")]
    Timeout(u128),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

pub struct RedisLink {
    client: redis::Client,
    timeout: Duration,
    connection: tokio::sync::Mutex<Option<ConnectionManager>>,
}

impl RedisLink {
    pub fn new(url: &str, timeout: Duration) -> Result<RedisLink, RedisError> {
        Ok(RedisLink {
            client: redis::Client::open(url)?,
            timeout,
            connection: tokio::sync::Mutex::new(None),
        })
    }

    /// A handle on the connection, connecting first if there is none yet. The manager is
    /// cheap to clone; commands on clones share one socket.
    async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        let mut held = self.connection.lock().await;
        if let Some(c) = held.as_ref() {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            // One reconnect try per command: the caller's own retry (the next renewal, the
            // next publish) is the backoff.
            .set_number_of_retries(1);
        let made = tokio::time::timeout(
            self.timeout,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|_| RedisError::Timeout(self.timeout.as_millis()))??;
        *held = Some(made.clone());
        Ok(made)
    }

    /// Runs one command.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, RedisError> {
        let mut c = self.connection().await?;
        tokio::time::timeout(self.timeout, cmd.query_async(&mut c))
            .await
            .map_err(|_| RedisError::Timeout(self.timeout.as_millis()))?
            .map_err(RedisError::from)
    }

    /// Runs a Lua script (EVALSHA, loading it on first use).
    pub async fn eval<T: FromRedisValue>(&self, script: &ScriptInvocation<'_>) -> Result<T, RedisError> {
        let mut c = self.connection().await?;
        tokio::time::timeout(self.timeout, script.invoke_async(&mut c))
            .await
            .map_err(|_| RedisError::Timeout(self.timeout.as_millis()))?
            .map_err(RedisError::from)
    }
}

/// Extends a key's expiry only if it still holds our value: a node never renews a claim that
/// expired and was taken by another. 1 if renewed, 0 if the key is gone or not ours.
pub fn renew_script() -> Script {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then \
           return redis.call('PEXPIRE', KEYS[1], ARGV[2]) \
         else return 0 end",
    )
}

/// Deletes a key only if it still holds our value (compare-and-delete). 1 if deleted.
pub fn release_script() -> Script {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then \
           return redis.call('DEL', KEYS[1]) \
         else return 0 end",
    )
}
