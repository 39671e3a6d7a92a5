//! `GET /api/studies/{id}/matches/{other}`: which row of `other` holds each row of `id`, so that
//! two studies of the same samples (two models, two training runs) can be compared point by point
//! (`failscope_shared::analysis::compare`). Rows pair by test-set name and sample id, in order
//! within a test set where no ids were recorded. The answer is a little-endian `u32` per row of
//! `id` (`u32::MAX`: the sample is not in `other`) with the number matched in
//! `x-failscope-matched`. The access guard checks the caller sees both studies.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use failscope_shared::analysis::compare::{match_rows, RowKey};
use failscope_shared::wire;

use super::{parse_id, with_store, AppError, AppState};

fn key(k: &(String, Option<String>)) -> RowKey<'_> {
    (k.0.as_str(), k.1.as_deref())
}

/// The handler.
pub async fn matches(
    State(state): State<AppState>,
    Path((id, other)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let (id, other) = (parse_id(&id)?, parse_id(&other)?);
    let keys = with_store(&state, move |s| {
        let exists = |k| s.exists(k);
        Ok(match (exists(id)?, exists(other)?) {
            (true, true) => Ok((s.row_keys(id)?, s.row_keys(other)?)),
            (false, _) => Err(id),
            (_, false) => Err(other),
        })
    })
    .await?
    .map_err(|missing| AppError::NotFound(format!("no study with id {missing}")))?;
    let a: Vec<RowKey> = keys.0.iter().map(key).collect();
    let b: Vec<RowKey> = keys.1.iter().map(key).collect();
    let rows = match_rows(&a, &b);
    let matched = rows.iter().filter(|&&r| r != u32::MAX).count();
    let bytes = wire::u32_bytes(rows);
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::HeaderName::from_static(wire::DTYPE_HEADER), "u32".to_string()),
            (
                header::HeaderName::from_static(wire::MATCHED_HEADER),
                matched.to_string(),
            ),
        ],
        bytes,
    )
        .into_response())
}
