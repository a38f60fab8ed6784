//! The directory's Redis commands: claim, renew and release a stream's key, read its owner,
//! and write and read node records.

use std::time::Duration;

use redis::Script;

use super::redis_link::{release_script, renew_script, RedisError, RedisLink};
use crate::stream::StreamKey;

pub struct Directory {
    pub node_id: String,
    prefix: String,
    pub ttl: Duration,
    link: RedisLink,
    renew: Script,
    release: Script,
}

impl Directory {
    pub fn new(node_id: String, prefix: String, ttl: Duration, link: RedisLink) -> Directory {
        Directory {
            node_id,
            prefix,
            ttl,
            link,
            renew: renew_script(),
            release: release_script(),
        }
    }

    pub fn stream_key(&self, key: &StreamKey) -> String {
        format!("{}stream:{}/{}", self.prefix, key.app, key.name)
    }

    pub fn node_key(&self, node_id: &str) -> String {
        format!("{}node:{}", self.prefix, node_id)
    }

    fn ttl_ms(&self) -> u64 {
        self.ttl.as_millis() as u64
    }

    async fn set_nx(&self, redis_key: &str) -> Result<bool, RedisError> {
        let set: Option<String> = self
            .link
            .query(
                redis::cmd("SET")
                    .arg(redis_key)
                    .arg(&self.node_id)
                    .arg("NX")
                    .arg("PX")
                    .arg(self.ttl_ms()),
            )
            .await?;
        Ok(set.is_some())
    }

    /// `SET NX PX`; when the key is held already and by this node (its own claim from before
    /// a restart, or a publisher's reconnect), renews it. `Some(owner)` when another holds it.
    pub async fn try_claim(&self, redis_key: &str) -> Result<Option<String>, RedisError> {
        if self.set_nx(redis_key).await? || self.renew(redis_key).await? {
            return Ok(None);
        }
        match self.owner(redis_key).await? {
            Some(owner) => Ok(Some(owner)),
            // Released between our SET and GET: one more try.
            None if self.set_nx(redis_key).await? => Ok(None),
            None => Ok(Some("another node".into())),
        }
    }

    /// Extends our claim; false if the key is gone or another's.
    pub async fn renew(&self, redis_key: &str) -> Result<bool, RedisError> {
        let mut call = self.renew.key(redis_key);
        call.arg(&self.node_id).arg(self.ttl_ms());
        let n: i64 = self.link.eval(&call).await?;
        Ok(n == 1)
    }

    /// Deletes our claim if it is still ours.
    pub async fn release(&self, redis_key: &str) -> Result<bool, RedisError> {
        let mut call = self.release.key(redis_key);
        call.arg(&self.node_id);
        let n: i64 = self.link.eval(&call).await?;
        Ok(n == 1)
    }

    /// Who holds a stream's key.
    pub async fn owner(&self, redis_key: &str) -> Result<Option<String>, RedisError> {
        self.link.query(redis::cmd("GET").arg(redis_key)).await
    }

    /// Writes this node's record, expiring with the claims.
    pub async fn write_node(&self, record: &str) -> Result<(), RedisError> {
        self.link
            .query(
                redis::cmd("SET")
                    .arg(self.node_key(&self.node_id))
                    .arg(record)
                    .arg("PX")
                    .arg(self.ttl_ms()),
            )
            .await
    }

    pub async fn delete_node(&self) -> Result<i64, RedisError> {
        self.link
            .query(redis::cmd("DEL").arg(self.node_key(&self.node_id)))
            .await
    }

    /// A node's record, raw.
    pub async fn read_node(&self, node_id: &str) -> Result<Option<String>, RedisError> {
        self.link.query(redis::cmd("GET").arg(self.node_key(node_id))).await
    }
}
