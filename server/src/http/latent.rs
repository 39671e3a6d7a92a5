//! Latent-space jobs over HTTP: start an embedding or clustering (`POST`), follow its progress
//! (`GET /api/jobs/{id}` or as Server-Sent Events), fetch the result — coordinates as a compact
//! binary buffer (little-endian f32, `X-Failscope-Shape: n,dims`), clusterings as JSON.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use failscope_shared::api::{ClusterParams, EmbedParams, FailureKind, Identity, JobStatus, ParamError, Role, Started};
use failscope_shared::wire;
use futures_util::stream::{self, Stream};

use super::{on_store, parse_id, AppError, AppState};
use crate::latent::jobs::{self, Found, Work};

impl From<ParamError> for AppError {
    fn from(e: ParamError) -> Self {
        AppError::BadRequest(format!("invalid parameters: {e}"))
    }
}

/// Starts `work` on study `id` once its parameters suit the study: 404 for an unknown study, 400
/// naming the field for a bad parameter, 422 for a study without features, 403 for a viewer
/// asking for a result that is not stored yet; else 202 and the job.
async fn start(state: &AppState, me: &Identity, id: &str, work: Work) -> Result<(StatusCode, Json<Started>), AppError> {
    let id = parse_id(id)?;
    match &work {
        Work::Embed(p) => p.check()?,
        Work::Cluster(p) => p.check()?,
    }
    let jobs = state.jobs.clone();
    let viewer = !me.role.allows(Role::Analyst);
    let name = me.name.clone();
    let job = on_store(state, move |s| {
        let facts = s.facts(id)?.ok_or_else(|| AppError::NotFound(format!("no study with id {id}")))?;
        if !facts.has_features {
            return Err(AppError::Unprocessable(format!(
                "study {id} has no features, so it has no latent space: import an FD-Shifts folder with encoded_output.npz, or run `failscope infer` with a model that returns (logits, features)"
            )));
        }
        let n = facts.n_samples as usize;
        match &work {
            Work::Embed(p) => p.check_for(n)?,
            Work::Cluster(p) => p.check_for(n, &facts.csfs)?,
        }
        if viewer && !work.is_cached(s, id)? {
            return Err(AppError::Forbidden(format!(
                "{name} is a viewer: this result is not computed yet, and computing it needs an analyst token"
            )));
        }
        Ok(jobs.start(s, id, work)?)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(Started { job })))
}

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, AppError> {
    body.map(|Json(b)| b)
        .map_err(|e| AppError::BadRequest(format!("invalid parameters: {}", e.body_text())))
}

/// `POST /api/studies/{id}/embeddings` with [`EmbedParams`] (missing fields default).
pub async fn start_embedding(
    State(state): State<AppState>,
    Extension(me): Extension<Identity>,
    Path(id): Path<String>,
    params: Result<Json<EmbedParams>, JsonRejection>,
) -> Result<impl IntoResponse, AppError> {
    start(&state, &me, &id, Work::Embed(body(params)?)).await
}

/// `POST /api/studies/{id}/clusterings` with [`ClusterParams`] (missing fields default).
pub async fn start_clustering(
    State(state): State<AppState>,
    Extension(me): Extension<Identity>,
    Path(id): Path<String>,
    params: Result<Json<ClusterParams>, JsonRejection>,
) -> Result<impl IntoResponse, AppError> {
    start(&state, &me, &id, Work::Cluster(body(params)?)).await
}

/// Job `job` (running, or recorded in the store), if the caller may see its study: a job on a
/// study outside the caller's scope does not exist for it.
async fn find(state: &AppState, me: &Identity, job: &str) -> Result<(u64, Found), AppError> {
    let id: u64 = job
        .parse()
        .map_err(|_| AppError::NotFound(format!("no job '{job}': ids are integers")))?;
    let jobs = state.jobs.clone();
    let found = on_store(state, move |s| Ok(jobs.find(s, id)?)).await?;
    match found {
        Some(f) if me.sees(f.study) => Ok((id, f)),
        _ => Err(AppError::NotFound(format!("no job with id {id}"))),
    }
}

/// `GET /api/jobs/{id}`.
pub async fn job_status(
    State(state): State<AppState>,
    Extension(me): Extension<Identity>,
    Path(job): Path<String>,
) -> Result<Json<JobStatus>, AppError> {
    Ok(Json(find(&state, &me, &job).await?.1.status))
}

/// `DELETE /api/jobs/{id}`: cancels the job (it stops at its next progress step; a queued job
/// never starts) and answers its status.
pub async fn cancel_job(
    State(state): State<AppState>,
    Extension(me): Extension<Identity>,
    Path(job): Path<String>,
) -> Result<Json<JobStatus>, AppError> {
    let (id, found) = find(&state, &me, &job).await?;
    // A job from before a restart, or forgotten, is finished: it stays as it finished.
    Ok(Json(state.jobs.cancel(id).unwrap_or(found.status)))
}

/// `GET /api/jobs/{id}/events`: the status as Server-Sent Events (`progress`, then one `done` or
/// `failed`), polled every 200 ms; while an embedding optimises, a `layout` event
/// ([`LiveLayout`](failscope_shared::api::LiveLayout)) whenever a newer intermediate layout is
/// there (one per 250 ms at most), before the status it came with.
pub async fn job_events(
    State(state): State<AppState>,
    Extension(me): Extension<Identity>,
    Path(job): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let (id, found) = find(&state, &me, &job).await?;
    /// What the stream still has to send: events queued, the last layout version sent, and
    /// whether the job's end was queued.
    struct Follow {
        queued: std::collections::VecDeque<Event>,
        sent: u64,
        over: bool,
    }
    let first = Follow {
        queued: [status_event(&found.status)].into(),
        sent: 0,
        over: found.status.finished,
    };
    let events = stream::unfold(first, move |mut f| {
        let state = state.clone();
        async move {
            if f.queued.is_empty() {
                if f.over {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                let s = state.jobs.status(id)?;
                if let Some(live) = state.jobs.live(id).filter(|l| l.version > f.sent && !s.finished) {
                    f.sent = live.version;
                    let event = Event::default().event("layout").json_data(&*live);
                    f.queued.extend(event.ok());
                }
                f.queued.push_back(status_event(&s));
                f.over = s.finished;
            }
            let event = f.queued.pop_front()?;
            Some((Ok(event), f))
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// A job status as an event named `progress`, `done` or `failed`.
fn status_event(s: &JobStatus) -> Event {
    let name = match (s.finished, s.error.is_some()) {
        (false, _) => "progress",
        (true, false) => "done",
        (true, true) => "failed",
    };
    Event::default()
        .event(name)
        .json_data(s)
        .unwrap_or_else(|_| Event::default().event(name))
}

/// `GET /api/jobs/{id}/result`: 409 while running; a failed job's error as 422 (bad data or
/// parameters) or 500; else the result.
pub async fn job_result(
    State(state): State<AppState>,
    Extension(me): Extension<Identity>,
    Path(job): Path<String>,
) -> Result<Response, AppError> {
    let (id, Found { study, work, status: s }) = find(&state, &me, &job).await?;
    let responses = state.responses.clone();
    if !s.finished {
        return Err(AppError::Conflict(format!(
            "job {id} is still running ({} {:.0} %)",
            s.stage,
            s.fraction * 100.0
        )));
    }
    if let Some(e) = s.error {
        return Err(match e.kind {
            FailureKind::Unprocessable => AppError::Unprocessable(e.message),
            FailureKind::Internal => AppError::Internal(format!("job {id} failed")),
            FailureKind::Cancelled => AppError::Conflict(format!("job {id} was cancelled")),
            FailureKind::Interrupted => AppError::Conflict(format!("job {id}: {}", e.message)),
        });
    }
    // Finished jobs have cached their result in the store: these calls read it back, once; the
    // response is kept after that (a finished job's result never changes).
    let none = |_: &str, _: f64| std::ops::ControlFlow::Continue(());
    let read = async move {
        match work {
            Work::Embed(p) => {
                let y = on_store(
                    &state,
                    move |store| Ok(jobs::embedding(store, study, &p, &none, &())?.0),
                )
                .await?;
                Ok::<_, AppError>(
                    (
                        [
                            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                            (
                                header::HeaderName::from_static(wire::SHAPE_HEADER),
                                wire::shape(y.nrows(), y.ncols()),
                            ),
                        ],
                        Bytes::from(wire::f32_bytes(y.iter().copied())),
                    )
                        .into_response(),
                )
            }
            Work::Cluster(p) => {
                let c = on_store(&state, move |store| Ok(jobs::clustering(store, study, &p, &none)?.0)).await?;
                Ok(Json(c).into_response())
            }
        }
    };
    Ok(responses
        .respond(format!("job {id} result"), async { read.await.into_response() })
        .await)
}
