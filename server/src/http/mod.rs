//! The HTTP API (axum) and the static frontend, behind tower-http layers: request tracing,
//! security headers, compression, a timeout and a body limit; and [`access::guard`]: tokens, roles,
//! study scopes and a rate limit. `app(state)` builds the router without a socket, so tests
//! call it with `oneshot`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::{Json, Router};
use failscope_shared::api::{ApiError, Identity, StudyDetail, StudySummary};
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::latent::jobs::Jobs;
use crate::store::pool::Pool;
use crate::store::Store;

/// Store connections the server holds at most: requests beyond this many wait for one.
const STORE_CONNECTIONS: usize = 8;

pub mod access;
mod cache;
mod compare;
mod figures;
mod hotspots;
mod latent;
mod reports;
pub mod samples;

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    /// Connections to the study store, lent one per request (SQLite connections are not `Sync`).
    pub store: Arc<Pool>,
    /// The built frontend (`index.html`, wasm, js).
    pub dist: PathBuf,
    /// Background latent-space jobs (each opens its own connection to the store's file).
    pub jobs: Jobs,
    /// The feature matrix of the study whose neighbours were asked for last: at a million rows
    /// reading it from SQLite per click would take seconds (studies are immutable once imported,
    /// so it never goes stale).
    pub(crate) neighbours: Arc<Mutex<Option<samples::FeatureCache>>>,
    /// Held while a study's features are read into `neighbours` (see `samples::Features`).
    pub(crate) feature_loads: Arc<Mutex<()>>,
    /// The records and scores of the studies read last (see `cache::StudyCache`).
    pub(crate) studies: Arc<Mutex<cache::StudyCache>>,
    /// Whole responses of study routes and job results (see `cache::ResponseCache`).
    pub(crate) responses: Arc<cache::ResponseCache>,
    /// Tokens on or off, and the rate limit.
    pub access: access::Access,
    /// Rows from which "similar cases" come from a partition index (`latent::ivf::Index`) once it is built
    /// ([`samples::APPROX_FROM`] unless changed).
    pub approx_from: usize,
}

impl AppState {
    /// The state for serving `store`, opened from the file `db` (background jobs open their own
    /// connections to it), with the frontend from `dist`; without tokens, at the default rate
    /// limit. Jobs the last server left running are marked failed.
    pub fn new(store: Store, db: PathBuf, dist: PathBuf) -> Result<Self, crate::store::StoreError> {
        Ok(Self {
            jobs: Jobs::new(&store, db.clone())?,
            store: Arc::new(Pool::new(store, db, STORE_CONNECTIONS)),
            dist,
            neighbours: Arc::default(),
            feature_loads: Arc::default(),
            studies: Arc::default(),
            responses: Arc::default(),
            access: access::Access::default(),
            approx_from: samples::APPROX_FROM,
        })
    }

    /// The same state admitting requests as `access` says.
    pub fn with_access(self, access: access::Access) -> Self {
        Self { access, ..self }
    }

    /// The same state answering "similar cases" from a partition index from `rows` rows (with a
    /// feature cache of its own).
    pub fn with_approx_from(self, rows: usize) -> Self {
        Self {
            approx_from: rows,
            neighbours: Arc::default(),
            feature_loads: Arc::default(),
            ..self
        }
    }
}

/// Every error a handler returns; mapped to a status and a JSON body.
#[derive(Debug)]
pub enum AppError {
    /// 404 with a message.
    NotFound(String),
    /// 400: the request is malformed.
    BadRequest(String),
    /// 409: not possible in the current state (e.g. a job still running).
    Conflict(String),
    /// 422: well-formed but unusable (e.g. a study without features).
    Unprocessable(String),
    /// 403: refused (e.g. a path outside the study's data root, a viewer creating a link).
    Forbidden(String),
    /// 401: the request is not signed in.
    Unauthorised(String),
    /// 500: logged once here; the body stays generic.
    Internal(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            AppError::Conflict(m) => (StatusCode::CONFLICT, m),
            AppError::Unprocessable(m) => (StatusCode::UNPROCESSABLE_ENTITY, m),
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            AppError::Unauthorised(m) => (StatusCode::UNAUTHORIZED, m),
            AppError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_string())
            }
        };
        (status, Json(ApiError { error })).into_response()
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<crate::latent::jobs::JobError> for AppError {
    /// Bad parameters (400) or features (422) are the request's fault; a failing store is ours (500).
    fn from(e: crate::latent::jobs::JobError) -> Self {
        match e {
            crate::latent::jobs::JobError::Params(e) => e.into(),
            crate::latent::jobs::JobError::Input(e) => AppError::Unprocessable(e.to_string()),
            crate::latent::jobs::JobError::Store(e) => e.into(),
            crate::latent::jobs::JobError::Cancelled => AppError::Conflict("the job was cancelled".into()),
        }
    }
}

/// Runs `f` on a pooled store connection on a blocking thread.
async fn on_store<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Store) -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    let pool = state.store.clone();
    tokio::task::spawn_blocking(move || f(&*pool.get()?))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
}

/// [`on_store`] for plain store queries: a store error is a 500.
async fn with_store<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, AppError> {
    on_store(state, move |s| f(s).map_err(AppError::from)).await
}

/// A summary as clients see it: the source by its name only, never the server's path to it.
fn public(mut s: StudySummary) -> StudySummary {
    if let Some(name) = std::path::Path::new(&s.source).file_name() {
        s.source = name.to_string_lossy().into_owned();
    }
    s
}

/// `GET /api/studies`: the studies the caller may see.
async fn list_studies(
    State(state): State<AppState>,
    Extension(me): Extension<Identity>,
) -> Result<Json<Vec<StudySummary>>, AppError> {
    let list = with_store(&state, Store::list).await?;
    Ok(Json(list.into_iter().filter(|s| me.sees(s.id)).map(public).collect()))
}

/// A study id from the path; anything but an integer is a 404 naming it.
fn parse_id(id: &str) -> Result<i64, AppError> {
    id.parse()
        .map_err(|_| AppError::NotFound(format!("no study '{id}': ids are integers")))
}

async fn get_study(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<StudyDetail>, AppError> {
    let id = parse_id(&id)?;
    with_store(&state, move |s| s.get(id))
        .await?
        .map(|d| {
            Json(StudyDetail {
                summary: public(d.summary),
                ..d
            })
        })
        .ok_or_else(|| AppError::NotFound(format!("no study with id {id}")))
}

async fn api_not_found() -> AppError {
    AppError::NotFound("no such API endpoint".into())
}

/// The router: `/api/…` JSON endpoints, everything else the frontend (SPA fallback to `index.html`).
pub fn app(state: AppState) -> Router {
    let spa = ServeDir::new(&state.dist).fallback(ServeFile::new(state.dist.join("index.html")));
    // Answers that depend on the URI only: a study's data never changes once imported.
    let immutable = Router::new()
        .route("/studies/{id}/layout", get(samples::layout))
        .route("/studies/{id}/columns/{name}", get(samples::column))
        .route("/studies/{id}/matches/{other}", get(compare::matches))
        .route("/studies/{id}/failures", get(samples::failures))
        .route("/studies/{id}/figures/{name}", get(figures::figure))
        .route_layer(axum::middleware::from_fn_with_state(
            state.responses.clone(),
            cache::immutable,
        ));
    let api = Router::new()
        .merge(immutable)
        .route("/health", get(|| async { "ok" }))
        .route("/studies", get(list_studies))
        .route("/studies/{id}", get(get_study))
        .route("/studies/{id}/embeddings", post(latent::start_embedding))
        .route("/studies/{id}/clusterings", post(latent::start_clustering))
        .route("/studies/{id}/hotspots", get(hotspots::hotspots))
        .route("/jobs/{job}", get(latent::job_status).delete(latent::cancel_job))
        .route("/jobs/{job}/events", get(latent::job_events))
        .route("/jobs/{job}/result", get(latent::job_result))
        .route("/studies/{id}/samples/{row}", get(samples::sample))
        .route("/studies/{id}/samples/{row}/image", get(samples::image))
        .route("/studies/{id}/samples/{row}/neighbours", get(samples::neighbours))
        .route("/studies/{id}/features/warm", get(samples::warm_features))
        .route("/links", post(samples::create_link))
        .route("/me", get(access::me))
        .route("/reports", get(reports::list))
        .fallback(api_not_found);
    Router::new()
        .nest("/api", api)
        .route("/s/{id}", get(samples::open_link))
        .route("/reports/{name}", get(reports::page))
        .route("/signin", get(access::signin_form).post(access::signin))
        .route("/signout", post(access::signout))
        .fallback_service(spa)
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(state, access::guard))
        .layer(RequestBodyLimitLayer::new(1 << 20))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(CompressionLayer::new())
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(TraceLayer::new_for_http())
}

/// What the browser may load: the app's own scripts, styles, images and API (WebAssembly compiled
/// from the same origin; inline style attributes, which the scatter's overlays use), nothing
/// framed, no plugins.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
