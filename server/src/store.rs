//! The study store: an embedded SQLite database (WAL). Each study is written in one transaction, so it
//! is either complete or absent.

use std::path::Path;

use failscope_shared::analysis::experiment::Report;
use failscope_shared::api::{StudyDetail, StudySummary};
use rusqlite::{params, Connection, OptionalExtension};

/// A store error: the database file and what failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("study store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored report could not be decoded (written by an incompatible version).
    #[error("study store: study {id} has an unreadable report ({source})")]
    Corrupt {
        /// Study id.
        id: i64,
        /// Why.
        source: serde_json::Error,
    },
}

/// An open store.
pub struct Store {
    conn: Connection,
}

/// A study to insert.
pub struct NewStudy<'a> {
    /// Display name.
    pub name: &'a str,
    /// Source kind (`fd-shifts`, `csv`).
    pub kind: &'a str,
    /// Where it came from.
    pub source: &'a str,
    /// Number of classes.
    pub n_classes: u32,
    /// Rows over all test sets.
    pub n_samples: u64,
    /// `current` or `fd-shifts-0.1.1`.
    pub compat: &'a str,
    /// The metrics.
    pub report: &'a Report,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    n_classes INTEGER NOT NULL,
    n_samples INTEGER NOT NULL,
    compat TEXT NOT NULL,
    report_json TEXT NOT NULL
);";

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn })
    }

    /// Inserts a study in one transaction; returns its id.
    pub fn insert(&mut self, s: &NewStudy<'_>) -> Result<i64, StoreError> {
        let json = serde_json::to_string(s.report).map_err(|source| StoreError::Corrupt { id: -1, source })?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO studies (name, kind, source, n_classes, n_samples, compat, report_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![s.name, s.kind, s.source, s.n_classes, s.n_samples as i64, s.compat, json],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    fn summary(id: i64, row: &rusqlite::Row<'_>, report: &Report) -> rusqlite::Result<StudySummary> {
        Ok(StudySummary {
            id,
            name: row.get("name")?,
            source: row.get("source")?,
            kind: row.get("kind")?,
            created_at: row.get("created_at")?,
            n_samples: row.get::<_, i64>("n_samples")? as u64,
            n_classes: row.get("n_classes")?,
            test_sets: report.keys().cloned().collect(),
            csfs: report
                .values()
                .next()
                .map(|c| c.keys().cloned().collect())
                .unwrap_or_default(),
        })
    }

    fn decode(id: i64, json: &str) -> Result<Report, StoreError> {
        serde_json::from_str(json).map_err(|source| StoreError::Corrupt { id, source })
    }

    /// All studies, oldest first.
    pub fn list(&self) -> Result<Vec<StudySummary>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT * FROM studies ORDER BY id")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let id: i64 = row.get("id")?;
            let report = Self::decode(id, &row.get::<_, String>("report_json")?)?;
            out.push(Self::summary(id, row, &report)?);
        }
        Ok(out)
    }

    /// One study with its report, or `None`.
    pub fn get(&self, id: i64) -> Result<Option<StudyDetail>, StoreError> {
        let found = self
            .conn
            .query_row("SELECT * FROM studies WHERE id = ?1", [id], |row| {
                Ok((row.get::<_, String>("report_json")?, row.get::<_, String>("compat")?))
            })
            .optional()?;
        let Some((json, compat)) = found else { return Ok(None) };
        let report = Self::decode(id, &json)?;
        let summary = self
            .conn
            .query_row("SELECT * FROM studies WHERE id = ?1", [id], |row| {
                Self::summary(id, row, &report)
            })?;
        Ok(Some(StudyDetail {
            summary,
            compat,
            report,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use failscope_shared::analysis::metrics::MetricRow;
    use indexmap::IndexMap;

    #[test]
    fn insert_list_get_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let mut report = Report::new();
        let row = MetricRow::from([("aurc".to_string(), Some(12.5)), ("ece".to_string(), None)]);
        report.insert("iid_study".into(), IndexMap::from([("det_mcp".to_string(), row)]));
        let id = store
            .insert(&NewStudy {
                name: "demo",
                kind: "fd-shifts",
                source: "/x",
                n_classes: 2,
                n_samples: 10,
                compat: "current",
                report: &report,
            })
            .unwrap();
        let list = store.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].test_sets, vec!["iid_study"]);
        assert_eq!(list[0].csfs, vec!["det_mcp"]);
        let detail = store.get(id).unwrap().unwrap();
        assert_eq!(detail.report, report);
        assert!(store.get(id + 1).unwrap().is_none());
    }
}
