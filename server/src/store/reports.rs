//! Stored benchmark reports (`reports`): one per recipe, replaced when `failscope bench` writes it
//! again, with the studies it was computed from (so that a token sees a report only when it sees
//! all of them).

use failscope_shared::api::ReportSummary;
use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

/// A report's three renderings.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFiles {
    pub markdown: String,
    pub html: String,
    pub json: String,
}

impl Store {
    /// Stores (or replaces) the report of recipe `name`.
    pub fn save_report(
        &self,
        name: &str,
        seeds: &[u64],
        studies: &[i64],
        files: &ReportFiles,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO reports (name, seeds, studies, markdown, html, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                name,
                serde_json::to_string(seeds).expect("numbers serialise"),
                serde_json::to_string(studies).expect("numbers serialise"),
                files.markdown,
                files.html,
                files.json
            ],
        )?;
        Ok(())
    }

    /// Every stored report, by name.
    pub fn reports(&self) -> Result<Vec<ReportSummary>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, seeds, studies, created_at FROM reports ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (name, seeds, studies, created_at) = row?;
            let undecodable = |what: &'static str| StoreError::Shape { id: 0, what };
            Ok(ReportSummary {
                seeds: serde_json::from_str(&seeds).map_err(|_| undecodable("report seeds"))?,
                studies: serde_json::from_str(&studies).map_err(|_| undecodable("report studies"))?,
                name,
                created_at,
            })
        })
        .collect()
    }

    /// The report of recipe `name`, or `None`.
    pub fn report(&self, name: &str) -> Result<Option<ReportFiles>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT markdown, html, json FROM reports WHERE name = ?1",
                [name],
                |r| {
                    Ok(ReportFiles {
                        markdown: r.get(0)?,
                        html: r.get(1)?,
                        json: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }
}
