//! The HTTP API (axum) and the static frontend, behind tower-http layers: request tracing,
//! compression, a timeout and a body limit. `app(state)` builds the router without a socket, so tests
//! call it with `oneshot`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use failscope_shared::api::{ApiError, StudyDetail, StudySummary};
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::store::Store;

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    /// The study store (SQLite connections are not `Sync`; queries are short).
    pub store: Arc<Mutex<Store>>,
    /// The built frontend (`index.html`, wasm, js).
    pub dist: PathBuf,
}

/// Every error a handler returns; mapped to a status and a JSON body.
#[derive(Debug)]
pub enum AppError {
    /// 404 with a message.
    NotFound(String),
    /// 500: logged once here; the body stays generic.
    Internal(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            AppError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_string())
            }
        };
        (status, Json(ApiError { error })).into_response()
    }
}

async fn with_store<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, AppError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let guard = store
            .lock()
            .map_err(|_| AppError::Internal("store lock poisoned".into()))?;
        f(&guard).map_err(|e| AppError::Internal(e.to_string()))
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
}

async fn list_studies(State(state): State<AppState>) -> Result<Json<Vec<StudySummary>>, AppError> {
    with_store(&state, Store::list).await.map(Json)
}

async fn get_study(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<StudyDetail>, AppError> {
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::NotFound(format!("no study '{id}': ids are integers")))?;
    with_store(&state, move |s| s.get(id))
        .await?
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("no study with id {id}")))
}

async fn api_not_found() -> AppError {
    AppError::NotFound("no such API endpoint".into())
}

/// The router: `/api/…` JSON endpoints, everything else the frontend (SPA fallback to `index.html`).
pub fn app(state: AppState) -> Router {
    let spa = ServeDir::new(&state.dist).fallback(ServeFile::new(state.dist.join("index.html")));
    let api = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/studies", get(list_studies))
        .route("/studies/{id}", get(get_study))
        .fallback(api_not_found);
    Router::new()
        .nest("/api", api)
        .fallback_service(spa)
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(1 << 20))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
}
