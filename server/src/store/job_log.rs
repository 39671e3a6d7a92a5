//! The record of every background job (`jobs`): which study, what work, how it ended. Job ids come
//! from this table, so they are never reused across restarts, and a job that was running when the
//! server stopped is marked failed when it starts again, never left "running".

use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

/// A job as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// Study id.
    pub study: i64,
    /// What kind of work (`embedding`, `clustering`).
    pub kind: String,
    /// Its parameters' JSON (the cache key).
    pub params: String,
    /// `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    /// How it failed, as the JSON the API sends (`JobFailure`).
    pub failure: Option<String>,
}

/// How long finished job records are kept.
const KEEP_DAYS: u32 = 30;

impl Store {
    /// Records a job starting on study `study`; answers its new id.
    pub fn begin_job(&self, study: i64, kind: &str, params: &str) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO jobs (study_id, work, state) VALUES (?1, ?2, 'running')",
            params![study, format!("{kind}\n{params}")],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records how job `id` ended: `state` and, when it failed, the failure's JSON.
    pub fn end_job(&self, id: i64, state: &str, failure: Option<&str>) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE jobs SET state = ?2, failure = ?3, finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?1",
            params![id, state, failure],
        )?;
        Ok(())
    }

    /// Job `id` as recorded.
    pub fn job(&self, id: i64) -> Result<Option<JobRecord>, StoreError> {
        let row: Option<(i64, String, String, Option<String>)> = self
            .conn
            .query_row(
                "SELECT study_id, work, state, failure FROM jobs WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        Ok(row.map(|(study, work, state, failure)| {
            let (kind, params) = work.split_once('\n').unwrap_or((work.as_str(), ""));
            JobRecord {
                study,
                kind: kind.to_string(),
                params: params.to_string(),
                state,
                failure,
            }
        }))
    }

    /// At a server's start: every job still `running` was interrupted by its stop, so it is marked
    /// `failed` with `failure`; records older than 30 days are dropped. Answers how many were
    /// interrupted.
    pub fn interrupt_jobs(&self, failure: &str) -> Result<usize, StoreError> {
        let n = self.conn.execute(
            "UPDATE jobs SET state = 'failed', failure = ?1, finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE state = 'running'",
            [failure],
        )?;
        self.conn.execute(
            "DELETE FROM jobs WHERE state != 'running' AND finished_at < strftime('%Y-%m-%dT%H:%M:%SZ', 'now', ?1)",
            [format!("-{KEEP_DAYS} days")],
        )?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_job_is_failed_by_the_next_start_and_ids_are_never_reused() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("s.db")).unwrap();
        let a = s.begin_job(1, "embedding", r#"{"dims":2}"#).unwrap();
        let b = s.begin_job(1, "clustering", "{}").unwrap();
        s.end_job(b, "done", None).unwrap();
        assert_eq!(s.interrupt_jobs("stopped").unwrap(), 1);
        let rec = s.job(a).unwrap().unwrap();
        assert_eq!(
            (
                rec.kind.as_str(),
                rec.params.as_str(),
                rec.state.as_str(),
                rec.failure.as_deref()
            ),
            ("embedding", r#"{"dims":2}"#, "failed", Some("stopped"))
        );
        assert_eq!(s.job(b).unwrap().unwrap().state, "done");
        assert_eq!(s.job(b + 1).unwrap(), None);
        // AUTOINCREMENT: an id is never handed out twice, even after its row is gone.
        s.conn.execute("DELETE FROM jobs", []).unwrap();
        assert!(s.begin_job(1, "embedding", "{}").unwrap() > b);
    }
}
