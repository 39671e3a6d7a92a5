//! Benchmark reports (`failscope bench`) from the store: `GET /api/reports` lists those whose
//! studies the caller may all see; `GET /reports/{name}` is the report's self-contained HTML page
//! (`GET /reports/{name}.md` its Markdown). A report outside the caller's scope does not exist for it.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use failscope_shared::api::{Identity, ReportSummary};

use super::{with_store, AppError, AppState};

fn visible(me: &Identity, r: &ReportSummary) -> bool {
    r.studies.iter().all(|&id| me.sees(id))
}

/// `GET /api/reports`.
pub async fn list(
    State(state): State<AppState>,
    Extension(me): Extension<Identity>,
) -> Result<Json<Vec<ReportSummary>>, AppError> {
    let all = with_store(&state, |s| s.reports()).await?;
    Ok(Json(all.into_iter().filter(|r| visible(&me, r)).collect()))
}

/// `GET /reports/{name}` (HTML) and `GET /reports/{name}.md` (Markdown).
pub async fn page(
    State(state): State<AppState>,
    Extension(me): Extension<Identity>,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let (recipe, markdown) = match name.strip_suffix(".md") {
        Some(recipe) => (recipe.to_string(), true),
        None => (name.clone(), false),
    };
    let wanted = recipe.clone();
    let found = with_store(&state, move |s| {
        let summary = s.reports()?.into_iter().find(|r| r.name == wanted);
        match summary.filter(|r| visible(&me, r)) {
            Some(_) => s.report(&wanted),
            None => Ok(None),
        }
    })
    .await?;
    let files = found.ok_or_else(|| AppError::NotFound(format!("no report {recipe:?}")))?;
    Ok(if markdown {
        ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], files.markdown).into_response()
    } else {
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], files.html).into_response()
    })
}
