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

/// One sample of a study: its row in the source, test set (FD-Shifts dataset_idx), label and
/// prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRecord {
    /// Row in the source arrays.
    pub row: i64,
    /// FD-Shifts dataset index (0 = val_tuning, 1 = iid, …).
    pub dataset_idx: i64,
    /// Class label.
    pub label: i64,
    /// Arg-max prediction.
    pub predicted: i64,
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
    /// The source's files (relative path, bytes): the FD-Shifts folder's config and arrays, or the CSV.
    /// Stored as blobs, so a study can be exported and re-scored without its source.
    pub files: &'a [(String, Vec<u8>)],
    /// Per-sample records.
    pub samples: &'a [SampleRecord],
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
);
CREATE TABLE IF NOT EXISTS study_files (
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (study_id, path)
);
CREATE TABLE IF NOT EXISTS samples (
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    row INTEGER NOT NULL,
    dataset_idx INTEGER NOT NULL,
    label INTEGER NOT NULL,
    predicted INTEGER NOT NULL,
    PRIMARY KEY (study_id, row)
);";

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        conn.pragma_update(None, "foreign_keys", true)?;
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
        {
            let mut file = tx.prepare("INSERT INTO study_files (study_id, path, data) VALUES (?1, ?2, ?3)")?;
            for (path, data) in s.files {
                file.execute(params![id, path, data])?;
            }
            let mut sample = tx.prepare(
                "INSERT INTO samples (study_id, row, dataset_idx, label, predicted) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for r in s.samples {
                sample.execute(params![id, r.row, r.dataset_idx, r.label, r.predicted])?;
            }
        }
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

    /// The stored source files of a study (relative path, bytes).
    pub fn files(&self, id: i64) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, data FROM study_files WHERE study_id = ?1 ORDER BY path")?;
        let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The per-sample records of a study, by row.
    pub fn samples(&self, id: i64) -> Result<Vec<SampleRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT row, dataset_idx, label, predicted FROM samples WHERE study_id = ?1 ORDER BY row")?;
        let rows = stmt.query_map([id], |r| {
            Ok(SampleRecord {
                row: r.get(0)?,
                dataset_idx: r.get(1)?,
                label: r.get(2)?,
                predicted: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
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
                files: &[("hydra/config.yaml".to_string(), b"data: {}".to_vec())],
                samples: &[SampleRecord {
                    row: 0,
                    dataset_idx: 1,
                    label: 1,
                    predicted: 0,
                }],
            })
            .unwrap();
        let list = store.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].test_sets, vec!["iid_study"]);
        assert_eq!(list[0].csfs, vec!["det_mcp"]);
        let detail = store.get(id).unwrap().unwrap();
        assert_eq!(detail.report, report);
        assert!(store.get(id + 1).unwrap().is_none());
        assert_eq!(store.files(id).unwrap()[0].1, b"data: {}");
        assert_eq!(store.samples(id).unwrap()[0].dataset_idx, 1);
    }
}
