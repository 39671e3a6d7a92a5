//! The study store: an embedded SQLite database (WAL). Each study is written in one transaction, so it
//! is either complete or absent.

use std::path::{Path, PathBuf};

use failscope_shared::analysis::experiment::Report;
use failscope_shared::api::{StudyDetail, StudySummary};
use failscope_shared::wire;
use indexmap::IndexMap;
use rusqlite::{params, Connection, OptionalExtension};

use crate::ingest::Evaluated;
pub use crate::ingest::SampleRecord;
use crate::preprocess::Preprocess;

pub mod job_log;
pub mod pool;
mod samples;
pub use samples::StudyScores;
pub mod reports;
mod schema;
pub mod tokens;

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
    /// A stored JSON column (a sample's metadata, the preprocessing, the class names) does not decode.
    #[error("study store: study {id} has an unreadable `{column}` value ({source})")]
    Column {
        /// Study id.
        id: i64,
        /// Which column.
        column: &'static str,
        /// Why.
        source: serde_json::Error,
    },
    /// A stored array does not have the study's recorded shape.
    #[error("study store: study {id} has {what} blobs of the wrong size")]
    Shape {
        /// Study id.
        id: i64,
        /// Which array.
        what: &'static str,
    },
    /// The request conflicts with what is stored (a token name taken, a study that does not exist).
    #[error("{0}")]
    Refused(String),
}

/// An open store.
pub struct Store {
    conn: Connection,
}

/// How a study is named and where it came from; what it holds is an [`Evaluated`].
pub struct NewStudy<'a> {
    /// Display name.
    pub name: &'a str,
    /// Where it came from.
    pub source: &'a str,
    /// The metric definitions it was scored with (`Compat::name`).
    pub compat: &'a str,
}

/// Everything stored about one sample, for the inspector.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleInfo {
    /// Test set, label, prediction.
    pub record: SampleRecord,
    /// Softmax, when stored.
    pub probs: Option<Vec<f32>>,
    /// The dataset's id of the sample.
    pub sample_id: Option<String>,
    /// Image path relative to the study's data root.
    pub image: Option<String>,
    /// Dataset row (seeds the corruption).
    pub source_index: Option<i64>,
    /// `name:severity` of the corruption applied.
    pub corruption: Option<String>,
    /// Acquisition domain.
    pub domain: Option<String>,
    /// Metadata columns.
    pub meta: IndexMap<String, String>,
}

/// A sample's domain and metadata columns.
pub type SampleMeta = (Option<String>, IndexMap<String, String>);

/// How a study's images are found and rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSettings {
    /// Images are read only below this folder.
    pub root: PathBuf,
    /// The model's preprocessing.
    pub preprocess: Preprocess,
    /// Corruption seed.
    pub seed: u64,
}

/// `f32`s as little-endian bytes (the blob format of every stored array, and of the API's columns).
fn to_blob<'a>(values: impl IntoIterator<Item = &'a f32>) -> Vec<u8> {
    wire::f32_bytes(values.into_iter().copied())
}

/// The `f32`s of a blob; one whose length is not a multiple of 4 is an error naming the array.
fn from_blob(id: i64, what: &'static str, bytes: &[u8]) -> Result<Vec<f32>, StoreError> {
    wire::f32s(bytes).ok_or(StoreError::Shape { id, what })
}

/// What the API needs to know about a study before it starts work on it.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyFacts {
    /// Rows.
    pub n_samples: u64,
    /// Whether it has features (a latent space).
    pub has_features: bool,
    /// CSFs with per-sample scores, in report order.
    pub csfs: Vec<String>,
}

/// One test set of a study: its name and rows, by dataset index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSet {
    /// FD-Shifts' study name (`val_tuning`, `iid_study`, `in_class_study_<set>`, …).
    pub name: String,
    /// Rows.
    pub size: u64,
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        conn.pragma_update(None, "foreign_keys", true)?;
        schema::migrate(&mut conn)?;
        Ok(Self { conn })
    }

    /// Inserts a study in one transaction; returns its id.
    pub fn insert(&mut self, study: &NewStudy<'_>, s: &Evaluated) -> Result<i64, StoreError> {
        let json = serde_json::to_string(&s.report).map_err(|source| StoreError::Corrupt { id: -1, source })?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO studies (name, kind, source, n_classes, n_samples, compat, report_json, feature_dim, mc_passes, data_root, preprocess, seed, classes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                study.name,
                s.kind,
                study.source,
                s.n_classes,
                s.n_samples as i64,
                study.compat,
                json,
                s.features.as_ref().map_or(0, |f| f.ncols() as i64),
                s.mc.as_ref().map_or(0, |m| m.shape()[2] as i64),
                s.sources.as_ref().and_then(|x| x.root.as_ref()).map(|r| r.display().to_string()),
                s.sources
                    .as_ref()
                    .map(|x| serde_json::to_string(&x.preprocess).expect("plain fields serialise")),
                s.sources.as_ref().map_or(0, |x| x.seed as i64),
                s.sources
                    .as_ref()
                    .filter(|x| !x.classes.is_empty())
                    .map(|x| serde_json::to_string(&x.classes).expect("strings serialise"))
            ],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut file = tx.prepare("INSERT INTO study_files (study_id, path, data) VALUES (?1, ?2, ?3)")?;
            for (path, data) in &s.files {
                file.execute(params![id, path, data])?;
            }
            let mut sample = tx.prepare(
                "INSERT INTO samples (study_id, row, dataset_idx, label, predicted, features, mc, probs, sample_id, image, source_index, corruption, domain, meta) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?;
            for (i, r) in s.samples.iter().enumerate() {
                let features = s.features.as_ref().map(|f| to_blob(f.row(i)));
                let mc = s.mc.as_ref().map(|m| to_blob(m.index_axis(ndarray::Axis(0), i)));
                let probs = s.probs.as_ref().map(|p| to_blob(p.row(i)));
                let src = s.sources.as_ref().and_then(|x| x.rows.get(i));
                sample.execute(params![
                    id,
                    r.row,
                    r.dataset_idx,
                    r.label,
                    r.predicted,
                    features,
                    mc,
                    probs,
                    src.map(|x| x.id.as_str()),
                    src.and_then(|x| x.image.as_deref()),
                    src.map(|x| x.index as i64),
                    src.and_then(|x| x.corruption).map(|c| c.to_string()),
                    src.and_then(|x| x.domain.as_deref()),
                    src.map(|x| serde_json::to_string(&x.meta).expect("strings serialise")),
                ])?;
            }
            let mut score = tx.prepare("INSERT INTO scores (study_id, csf, position, data) VALUES (?1, ?2, ?3, ?4)")?;
            for (pos, (csf, values)) in s.scores.iter().enumerate() {
                let blob = wire::f32_bytes(values.iter().map(|v| *v as f32));
                score.execute(params![id, csf, pos as i64, blob])?;
            }
            let mut set =
                tx.prepare("INSERT INTO test_sets (study_id, dataset_idx, name, size) VALUES (?1, ?2, ?3, ?4)")?;
            let sets = s.samples.iter().map(|r| r.dataset_idx + 1).max().unwrap_or(0).max(0) as usize;
            let mut sizes = vec![0i64; sets.max(s.test_sets.len())];
            for r in &s.samples {
                if let Ok(k) = usize::try_from(r.dataset_idx) {
                    sizes[k] += 1;
                }
            }
            for (k, size) in sizes.iter().enumerate() {
                let name = s.test_sets.get(k).cloned().unwrap_or_else(|| format!("dataset {k}"));
                set.execute(params![id, k as i64, name, size])?;
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

    /// A JSON column's value decoded; one that does not decode is an error naming study and column.
    fn json_column<T: serde::de::DeserializeOwned>(
        id: i64,
        column: &'static str,
        text: Option<&str>,
    ) -> Result<Option<T>, StoreError> {
        text.map(|t| serde_json::from_str(t).map_err(|source| StoreError::Column { id, column, source }))
            .transpose()
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

    /// Width of a study's stored features (0 = none).
    pub fn feature_dim(&self, id: i64) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT feature_dim FROM studies WHERE id = ?1", [id], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    /// How the study's images are rendered; `None` when it has no image sources.
    pub fn image_settings(&self, id: i64) -> Result<Option<ImageSettings>, StoreError> {
        let found = self
            .conn
            .query_row(
                "SELECT data_root, preprocess, seed FROM studies WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )
            .optional()?;
        Ok(match found {
            Some((Some(root), Some(pre), seed)) => {
                Self::json_column(id, "preprocess", Some(&pre))?.map(|preprocess| ImageSettings {
                    root: PathBuf::from(root),
                    preprocess,
                    seed: seed as u64,
                })
            }
            _ => None,
        })
    }

    /// Class names: stored ones, else `class 0`, `class 1`, ….
    pub fn classes(&self, id: i64) -> Result<Vec<String>, StoreError> {
        let (json, n): (Option<String>, i64) = self
            .conn
            .query_row("SELECT classes, n_classes FROM studies WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?
            .unwrap_or((None, 0));
        Ok(Self::json_column(id, "classes", json.as_deref())?
            .unwrap_or_else(|| (0..n).map(|k| format!("class {k}")).collect()))
    }

    /// Stores a view state under a new short id; returns the id: 16 random characters (96 bits),
    /// so links cannot be guessed.
    pub fn create_link(&self, state: &str) -> Result<String, StoreError> {
        use rand::Rng;
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
        loop {
            // ThreadRng is a CSPRNG (ChaCha) seeded from the operating system.
            let mut rng = rand::rng();
            let id: String = (0..16)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect();
            let inserted = self.conn.execute(
                "INSERT OR IGNORE INTO links (id, state) VALUES (?1, ?2)",
                params![id, state],
            )?;
            if inserted == 1 {
                return Ok(id);
            }
        }
    }

    /// The view state of a short link.
    pub fn link(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT state FROM links WHERE id = ?1", [id], |r| r.get(0))
            .optional()?)
    }

    /// Every CSF's per-sample scores, in the order the study reports them.
    pub fn scores(&self, id: i64) -> Result<IndexMap<String, Vec<f32>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT csf, data FROM scores WHERE study_id = ?1 ORDER BY position")?;
        let rows = stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
        rows.map(|row| {
            let (csf, blob) = row?;
            Ok((csf, from_blob(id, "scores", &blob)?))
        })
        .collect()
    }

    /// A cached latent-space result (`kind` = embedding, clustering, …) keyed by its parameters.
    pub fn cached(&self, id: i64, kind: &str, params: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT data FROM latent_results WHERE study_id = ?1 AND kind = ?2 AND params = ?3",
                params![id, kind, params],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Whether a latent-space result is cached (without reading it).
    pub fn is_cached(&self, id: i64, kind: &str, params: &str) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM latent_results WHERE study_id = ?1 AND kind = ?2 AND params = ?3)",
            params![id, kind, params],
            |r| r.get(0),
        )?)
    }

    /// Stores (or replaces) a latent-space result.
    pub fn cache(&self, id: i64, kind: &str, params: &str, data: &[u8]) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO latent_results (study_id, kind, params, data) VALUES (?1, ?2, ?3, ?4)",
            params![id, kind, params, data],
        )?;
        Ok(())
    }

    /// SQLite's `PRAGMA integrity_check`: `ok`, or what is wrong.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        Ok(self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }

    /// Whether study `id` exists (one query).
    pub fn exists(&self, id: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM studies WHERE id = ?1)", [id], |r| {
                r.get(0)
            })?)
    }

    /// The newest study named `name`, if any (one query).
    pub fn study_named(&self, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT MAX(id) FROM studies WHERE name = ?1", [name], |r| r.get(0))?)
    }

    /// What the API checks before starting work on study `id` (two queries); `None` when it
    /// does not exist.
    pub fn facts(&self, id: i64) -> Result<Option<StudyFacts>, StoreError> {
        let found = self
            .conn
            .query_row("SELECT n_samples, feature_dim FROM studies WHERE id = ?1", [id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()?;
        let Some((n, d)) = found else { return Ok(None) };
        let mut stmt = self
            .conn
            .prepare("SELECT csf FROM scores WHERE study_id = ?1 ORDER BY position")?;
        let csfs = stmt.query_map([id], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(Some(StudyFacts {
            n_samples: n as u64,
            has_features: d > 0,
            csfs,
        }))
    }

    /// The study's test sets by dataset index (one query; empty for an unknown study).
    pub fn test_sets(&self, id: i64) -> Result<Vec<TestSet>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, size FROM test_sets WHERE study_id = ?1 ORDER BY dataset_idx")?;
        let rows = stmt.query_map([id], |r| {
            Ok(TestSet {
                name: r.get(0)?,
                size: r.get::<_, i64>(1)? as u64,
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
mod tests;
