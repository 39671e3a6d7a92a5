//! The store's schema and its migrations from older versions (`PRAGMA user_version`).

use indexmap::IndexMap;
use rusqlite::{params, Connection};

use super::StoreError;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    n_classes INTEGER NOT NULL,
    n_samples INTEGER NOT NULL,
    compat TEXT NOT NULL,
    report_json TEXT NOT NULL,
    feature_dim INTEGER NOT NULL DEFAULT 0,
    mc_passes INTEGER NOT NULL DEFAULT 0,
    data_root TEXT,
    preprocess TEXT,
    seed INTEGER NOT NULL DEFAULT 0,
    classes TEXT
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
    features BLOB,
    mc BLOB,
    probs BLOB,
    sample_id TEXT,
    image TEXT,
    source_index INTEGER,
    corruption TEXT,
    domain TEXT,
    meta TEXT,
    PRIMARY KEY (study_id, row)
);
CREATE TABLE IF NOT EXISTS links (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE TABLE IF NOT EXISTS scores (
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    csf TEXT NOT NULL,
    position INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (study_id, csf)
);
CREATE TABLE IF NOT EXISTS latent_results (
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    data BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (study_id, kind, params)
);
CREATE TABLE IF NOT EXISTS test_sets (
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    dataset_idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (study_id, dataset_idx)
);
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    studies TEXT,
    hash BLOB NOT NULL UNIQUE,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study_id INTEGER NOT NULL,
    work TEXT NOT NULL,
    state TEXT NOT NULL,
    failure TEXT,
    started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS reports (
    name TEXT PRIMARY KEY,
    seeds TEXT NOT NULL,
    studies TEXT NOT NULL,
    markdown TEXT NOT NULL,
    html TEXT NOT NULL,
    json TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);";

/// Schema version (`PRAGMA user_version`). Version 1 has no per-sample arrays (features, MC
/// passes); version 2 no sample provenance and softmax; version 3 no test-set names; version 4 no
/// access tokens and job records; version 5 no benchmark reports; version 6 has all of them (new
/// tables need no migration).
pub(super) const VERSION: i64 = 6;

/// Columns added after version 1, for stores written by older versions.
const ADDED_COLUMNS: [(&str, &str, &str); 15] = [
    ("studies", "classes", "TEXT"),
    ("samples", "features", "BLOB"),
    ("samples", "mc", "BLOB"),
    ("samples", "probs", "BLOB"),
    ("samples", "sample_id", "TEXT"),
    ("samples", "image", "TEXT"),
    ("samples", "source_index", "INTEGER"),
    ("samples", "corruption", "TEXT"),
    ("samples", "domain", "TEXT"),
    ("samples", "meta", "TEXT"),
    ("studies", "feature_dim", "INTEGER NOT NULL DEFAULT 0"),
    ("studies", "mc_passes", "INTEGER NOT NULL DEFAULT 0"),
    ("studies", "data_root", "TEXT"),
    ("studies", "preprocess", "TEXT"),
    ("studies", "seed", "INTEGER NOT NULL DEFAULT 0"),
];

/// Brings a store of any older version to [`VERSION`], in one transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version >= VERSION {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for (table, column, decl) in ADDED_COLUMNS {
        let has: bool = tx.query_row(
            &format!("SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"),
            [column],
            |r| r.get(0),
        )?;
        if !has {
            tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
        }
    }
    if version < 4 {
        name_test_sets(&tx)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Version 4 records each test set's name and size at import. Studies imported before are given
/// the names earlier versions showed: `val_tuning`, `iid_study`, then the report's
/// `in_class_study_*` when they account for every other index, else `dataset <k>`.
fn name_test_sets(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    let studies: Vec<(i64, String)> = {
        let mut stmt =
            tx.prepare("SELECT id, report_json FROM studies WHERE id NOT IN (SELECT study_id FROM test_sets)")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut insert = tx.prepare("INSERT INTO test_sets (study_id, dataset_idx, name, size) VALUES (?1, ?2, ?3, ?4)")?;
    for (id, json) in studies {
        let report: IndexMap<String, serde_json::Value> =
            serde_json::from_str(&json).map_err(|source| StoreError::Corrupt { id, source })?;
        let sizes: Vec<(i64, i64)> = {
            let mut stmt = tx.prepare(
                "SELECT dataset_idx, COUNT(*) FROM samples WHERE study_id = ?1 GROUP BY dataset_idx ORDER BY dataset_idx",
            )?;
            let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let Some(max) = sizes.iter().map(|s| s.0).max() else {
            continue;
        };
        let in_class: Vec<&String> = report.keys().filter(|k| k.starts_with("in_class_study_")).collect();
        for k in 0..=max.max(1) {
            let name = match k {
                0 => "val_tuning".to_string(),
                1 => "iid_study".to_string(),
                k if in_class.len() as i64 == max - 1 => in_class[(k - 2) as usize].clone(),
                k => format!("dataset {k}"),
            };
            let size = sizes.iter().find(|s| s.0 == k).map_or(0, |s| s.1);
            insert.execute(params![id, k, name, size])?;
        }
    }
    Ok(())
}
