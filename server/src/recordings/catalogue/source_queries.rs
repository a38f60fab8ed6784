//! Live sources created through the API (`crate::sources`), kept so they survive a restart.
//! The spec is stored as the JSON the API took; `[[sources]]` from the config file is never
//! stored here.

use rusqlite::{params, OptionalExtension};

use super::db::Catalogue;
use super::error::CatalogueError;
use crate::config::SourceSpec;

impl Catalogue {
    /// Stores a new source and returns its id (above 1000).
    pub fn insert_source(&self, spec: &SourceSpec, created_at: i64) -> Result<i64, CatalogueError> {
        let json = self.source_json(spec)?;
        let conn = self.lock();
        conn.query_row(
            "INSERT INTO sources (spec, created_at) VALUES (?1, ?2) RETURNING id",
            params![json, created_at],
            |row| row.get(0),
        )
        .map_err(self.fail("insert a source"))
    }

    pub fn update_source(&self, id: i64, spec: &SourceSpec) -> Result<(), CatalogueError> {
        let json = self.source_json(spec)?;
        let changed = self
            .lock()
            .execute("UPDATE sources SET spec = ?2 WHERE id = ?1", params![id, json])
            .map_err(self.fail(format_args!("update source {id}")))?;
        if changed == 0 {
            return Err(CatalogueError::SourceNotFound(id));
        }
        Ok(())
    }

    pub fn delete_source(&self, id: i64) -> Result<(), CatalogueError> {
        let gone: Option<i64> = self
            .lock()
            .query_row("DELETE FROM sources WHERE id = ?1 RETURNING id", [id], |row| row.get(0))
            .optional()
            .map_err(self.fail(format_args!("delete source {id}")))?;
        gone.map(|_| ()).ok_or(CatalogueError::SourceNotFound(id))
    }

    /// Every stored source, by id. A row whose JSON this build cannot read is an error
    /// naming it (rather than a source silently dropped).
    pub fn list_sources(&self) -> Result<Vec<(i64, SourceSpec)>, CatalogueError> {
        let rows: Vec<(i64, String)> = {
            let conn = self.lock();
            let mut stmt = conn
                .prepare("SELECT id, spec FROM sources ORDER BY id")
                .map_err(self.fail("list sources"))?;
            let rows = stmt
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(self.fail("list sources"))?;
            rows.collect::<Result<_, _>>().map_err(self.fail("list sources"))?
        };
        rows.into_iter()
            .map(|(id, json)| {
                serde_json::from_str(&json)
                    .map(|spec| (id, spec))
                    .map_err(|e| CatalogueError::BadSource {
                        db: self.db_name().to_owned(),
                        id,
                        why: e.to_string(),
                    })
            })
            .collect()
    }

    fn source_json(&self, spec: &SourceSpec) -> Result<String, CatalogueError> {
        serde_json::to_string(spec).map_err(|e| CatalogueError::BadSource {
            db: self.db_name().to_owned(),
            id: 0,
            why: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceProtocol;

    fn spec(stream: &str) -> SourceSpec {
        SourceSpec {
            name: "cam".into(),
            protocol: SourceProtocol::Hls,
            url: "http://127.0.0.1:9/cam.m3u8".into(),
            stream: stream.into(),
            active: true,
            on_demand: false,
            close_after_ms: 10_000,
            max_bandwidth: 0,
        }
    }

    #[test]
    fn sources_are_stored_with_ids_above_the_config_range_and_read_back() {
        let catalogue = Catalogue::open_in_memory().unwrap();
        let a = catalogue.insert_source(&spec("live/a"), 1).unwrap();
        let b = catalogue.insert_source(&spec("live/b"), 2).unwrap();
        assert!(a > 1000 && b > a, "ids {a}, {b}");
        let mut changed = spec("live/c");
        changed.on_demand = true;
        catalogue.update_source(b, &changed).unwrap();
        catalogue.delete_source(a).unwrap();
        assert_eq!(catalogue.list_sources().unwrap(), vec![(b, changed)]);
        assert!(matches!(
            catalogue.delete_source(a),
            Err(CatalogueError::SourceNotFound(_))
        ));
        assert!(matches!(
            catalogue.update_source(a, &spec("live/x")),
            Err(CatalogueError::SourceNotFound(_))
        ));
    }
}
