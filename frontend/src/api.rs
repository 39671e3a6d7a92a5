//! The one place the app talks to `/api`: one typed function per endpoint, with the request and
//! response types of `failscope_shared::api` and the binary formats of `failscope_shared::wire`. No
//! URL is written outside this module.

use failscope_shared::api::{
    ApiError, ClusterParams, Clustering, EmbedParams, FailuresQuery, FigureQuery, HotspotRanking, HotspotsQuery,
    Identity, JobStatus, Link, LiveLayout, NeighboursQuery, NewLink, RankedSample, ReportSummary, SampleDetail,
    Started, StudyDetail, StudyLayout, StudySummary,
};
use failscope_shared::wire;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use gloo_net::http::{Request, Response};
use serde::de::DeserializeOwned;

use crate::columns::{Columns, MetaColumn};

/// A failed response as its message. 401 (not signed in, or the token was revoked) sends the
/// page to the sign-in form, which returns to this view afterwards.
async fn check(resp: Response) -> Result<Response, String> {
    if resp.ok() {
        return Ok(resp);
    }
    let status = resp.status();
    if status == 401 {
        let location = web_sys::window().map(|w| w.location());
        if let Some(loc) = location {
            let here = format!(
                "{}{}",
                loc.pathname().unwrap_or_default(),
                loc.search().unwrap_or_default()
            );
            let next = failscope_shared::wire::percent_encode(&here, b"/-_.");
            let _ = loc.set_href(&format!("/signin?next={next}"));
        }
    }
    let body: Result<ApiError, _> = resp.json().await;
    Err(body.map(|b| b.error).unwrap_or_else(|_| format!("HTTP {status}")))
}

async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, String> {
    let resp = Request::get(url).send().await.map_err(|e| e.to_string())?;
    check(resp).await?.json().await.map_err(|e| e.to_string())
}

async fn post_json<B: serde::Serialize, T: DeserializeOwned>(url: &str, body: &B) -> Result<T, String> {
    let resp = Request::post(url)
        .json(body)
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|e| e.to_string())?;
    check(resp).await?.json().await.map_err(|e| e.to_string())
}

/// GET bytes and one response header.
async fn get_bytes(url: &str, header: &str) -> Result<(Vec<u8>, Option<String>), String> {
    let resp = check(Request::get(url).send().await.map_err(|e| e.to_string())?).await?;
    let h = resp.headers().get(header);
    Ok((resp.binary().await.map_err(|e| e.to_string())?, h))
}

/// `GET /api/me`: who this page is signed in as.
pub async fn me() -> Result<Identity, String> {
    get_json("/api/me").await
}

/// `GET /api/studies`.
pub async fn studies() -> Result<Vec<StudySummary>, String> {
    get_json("/api/studies").await
}

/// `GET /api/reports`: the benchmark reports this caller may read.
pub async fn reports() -> Result<Vec<ReportSummary>, String> {
    get_json("/api/reports").await
}

/// Where a report's page is served (`/reports/<name>`, the name URL-encoded).
pub fn report_href(name: &str) -> String {
    format!("/reports/{}", String::from(js_sys::encode_uri_component(name)))
}

/// `GET /api/studies/{id}`: the benchmark.
pub async fn study(id: i64) -> Result<StudyDetail, String> {
    get_json(&format!("/api/studies/{id}")).await
}

/// `GET /api/studies/{id}/features/warm`: a large study's features start loading on the server
/// for its "similar cases" (nothing to answer; a failure only means the first query waits).
pub async fn warm_features(id: i64) {
    let _ = Request::get(&format!("/api/studies/{id}/features/warm")).send().await;
}

/// `GET /api/studies/{id}/layout`.
pub async fn layout(id: i64) -> Result<StudyLayout, String> {
    get_json(&format!("/api/studies/{id}/layout")).await
}

/// `GET /api/studies/{id}/samples/{row}`.
pub async fn sample(id: i64, row: u64) -> Result<SampleDetail, String> {
    get_json(&format!("/api/studies/{id}/samples/{row}")).await
}

/// Where `<img>` finds a sample's image (`GET /api/studies/{id}/samples/{row}/image`).
pub fn image_url(id: i64, row: u64) -> String {
    format!("/api/studies/{id}/samples/{row}/image")
}

/// `GET /api/studies/{id}/samples/{row}/neighbours`.
pub async fn neighbours(id: i64, row: u64, q: &NeighboursQuery) -> Result<Vec<RankedSample>, String> {
    get_json(&format!("/api/studies/{id}/samples/{row}/neighbours{}", q.to_query())).await
}

/// `GET /api/studies/{id}/failures`.
pub async fn failures(id: i64, q: &FailuresQuery) -> Result<Vec<RankedSample>, String> {
    get_json(&format!("/api/studies/{id}/failures{}", q.to_query())).await
}

/// `GET /api/studies/{id}/hotspots`: the silent-failure regions of the view's layout, ranked.
pub async fn hotspots(id: i64, q: &HotspotsQuery) -> Result<HotspotRanking, String> {
    get_json(&format!("/api/studies/{id}/hotspots{}", q.to_query())).await
}

/// Where a figure is (`GET /api/studies/{id}/figures/{name}`), for `<img>` and download links.
pub fn figure_url(id: i64, name: &str, q: &FigureQuery) -> String {
    format!("/api/studies/{id}/figures/{name}{}", q.to_query())
}

/// `POST /api/links`: a short link to the view `state`.
pub async fn create_link(state: String) -> Result<Link, String> {
    post_json("/api/links", &NewLink { state }).await
}

/// Where a short link opens (`/s/{id}`), on `origin`.
pub fn link_url(origin: &str, link: &Link) -> String {
    format!("{origin}/s/{}", link.id)
}

async fn column(study: i64, name: &str, header: &str) -> Result<(Vec<u8>, Option<String>), String> {
    get_bytes(&format!("/api/studies/{study}/columns/{name}"), header).await
}

fn u16s(bytes: &[u8], what: &str) -> Result<Vec<u16>, String> {
    wire::u16s(bytes).ok_or_else(|| format!("the {what} column has an odd number of bytes"))
}

/// The per-point columns of `study` with the scores of `csf` (`GET …/columns/{name}`).
pub async fn columns(study: i64, csf: &str) -> Result<Columns, String> {
    let (d, _) = column(study, "dataset_idx", wire::DTYPE_HEADER).await?;
    let (l, _) = column(study, "label", wire::DTYPE_HEADER).await?;
    let (p, _) = column(study, "predicted", wire::DTYPE_HEADER).await?;
    let (s, _) = column(study, &format!("score:{csf}"), wire::DTYPE_HEADER).await?;
    Ok(Columns {
        dataset_idx: u16s(&d, "dataset_idx")?,
        label: u16s(&l, "label")?,
        predicted: u16s(&p, "predicted")?,
        score: wire::f32s(&s).ok_or("the score column is not a whole number of f32s")?,
        cluster: None,
        meta: None,
        compare: None,
    })
}

/// The row of study `other` holding each row of `study` (`u32::MAX`: none), and how many matched
/// (`GET /api/studies/{study}/matches/{other}`).
pub async fn matches(study: i64, other: i64) -> Result<(Vec<u32>, usize), String> {
    let (b, n) = get_bytes(&format!("/api/studies/{study}/matches/{other}"), wire::MATCHED_HEADER).await?;
    let rows = wire::u32s(&b).ok_or("the matched rows are not a whole number of u32s")?;
    let n = n.and_then(|n| n.parse().ok()).unwrap_or(0);
    Ok((rows, n))
}

/// A metadata column's codes and categories (`GET …/columns/meta:{key}`).
pub async fn meta_column(study: i64, key: &str) -> Result<MetaColumn, String> {
    let (b, cats) = column(study, &format!("meta:{key}"), wire::CATEGORIES_HEADER).await?;
    let categories = cats
        .as_deref()
        .and_then(wire::decode_categories)
        .ok_or_else(|| format!("the {key} column came without readable categories"))?;
    Ok(MetaColumn {
        key: key.to_string(),
        codes: u16s(&b, key)?,
        categories,
    })
}

/// A background job the page may stop needing: [`JobHandle::cancel`] stops it on the server
/// (`DELETE /api/jobs/{id}`) and tells its follower to drop the outcome.
/// (Atomics, not cells: Leptos' cleanup callbacks must be `Send`.)
#[derive(Clone, Default)]
pub struct JobHandle(Arc<JobHandleState>);

#[derive(Default)]
struct JobHandleState {
    /// The running job's id; 0 = none (job ids start at 1).
    job: AtomicU64,
    cancelled: AtomicBool,
}

impl JobHandle {
    /// Cancels the job (once started; a job not yet started is cancelled as soon as it is). Used
    /// when the page stops needing it: a refusal is only logged to the console.
    pub fn cancel(&self) {
        self.stop(|e| leptos::logging::warn!("{e}"));
    }

    /// [`cancel`](Self::cancel) at the user's request: `failed` hears when the server could not
    /// be reached or refused, so that the page does not claim a job stopped that did not.
    pub fn stop(&self, failed: impl FnOnce(String) + 'static) {
        self.0.cancelled.store(true, Ordering::Relaxed);
        let job = self.0.job.swap(0, Ordering::Relaxed);
        if job != 0 {
            leptos::task::spawn_local(async move {
                // A job that finished meanwhile answers its status: nothing is left to do.
                let sent = Request::delete(&format!("/api/jobs/{job}")).send().await;
                let answer = match sent {
                    Ok(resp) => check(resp).await.map(drop),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = answer {
                    failed(format!("could not stop job {job}: {e}"));
                }
            });
        }
    }

    /// The running job's id; `None` before it started and after it ended.
    pub fn id(&self) -> Option<u64> {
        Some(self.0.job.load(Ordering::Relaxed)).filter(|j| *j != 0)
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Relaxed)
    }
}

/// Computes (or reads from the cache) the study's embedding, reporting progress and handing each
/// intermediate layout (row-major coordinates, dimensions) to `layouts`; answers the final
/// coordinates and their dimensions. `handle` can cancel it.
pub async fn embedding(
    study: i64,
    params: &EmbedParams,
    progress: impl Fn(String, f64),
    layouts: impl Fn(Vec<f32>, usize),
    handle: &JobHandle,
) -> Result<(Vec<f32>, usize), String> {
    let url = format!("/api/studies/{study}/embeddings");
    let job = run_job(&url, params, progress, layouts, handle).await?;
    let (bytes, shape) = get_bytes(&format!("/api/jobs/{job}/result"), wire::SHAPE_HEADER).await?;
    let (_, dims) = shape
        .as_deref()
        .and_then(wire::parse_shape)
        .ok_or("the embedding came without its shape")?;
    let coords = wire::f32s(&bytes).ok_or("the embedding is not a whole number of f32s")?;
    Ok((coords, dims))
}

/// Computes (or reads from the cache) the study's clustering, reporting progress.
pub async fn clustering(
    study: i64,
    params: &ClusterParams,
    progress: impl Fn(String, f64),
) -> Result<Clustering, String> {
    let job = run_job(
        &format!("/api/studies/{study}/clusterings"),
        params,
        progress,
        |_, _| {},
        &JobHandle::default(),
    )
    .await?;
    get_json(&format!("/api/jobs/{job}/result")).await
}

/// Starts a latent job at `url` and follows its progress to the end: over Server-Sent Events
/// (`/api/jobs/{id}/events`), or by polling `/api/jobs/{id}` when the browser cannot keep the event
/// stream open. Intermediate layouts (`layout` events) go to `layouts`. Answers the job id. The
/// job is `handle`'s until it ends.
async fn run_job<P: serde::Serialize>(
    url: &str,
    params: &P,
    progress: impl Fn(String, f64),
    layouts: impl Fn(Vec<f32>, usize),
    handle: &JobHandle,
) -> Result<u64, String> {
    let Started { job } = post_json(url, params).await?;
    handle.0.job.store(job, Ordering::Relaxed);
    if handle.cancelled() {
        handle.cancel();
    }
    let outcome = match follow_events(job, &progress, &layouts).await {
        Some(outcome) => outcome,
        None => poll(job, &progress).await,
    };
    handle.0.job.store(0, Ordering::Relaxed);
    outcome.map(|()| job)
}

/// Reports a job status to `progress`; `Some` outcome once it finished.
fn report(s: &JobStatus, progress: &impl Fn(String, f64)) -> Option<Result<(), String>> {
    progress(s.stage.clone(), s.fraction);
    s.finished.then(|| match &s.error {
        Some(e) => Err(e.message.clone()),
        None => Ok(()),
    })
}

/// Follows job `id` over its event stream; `None` when the stream broke before the end.
async fn follow_events(
    id: u64,
    progress: &impl Fn(String, f64),
    layouts: &impl Fn(Vec<f32>, usize),
) -> Option<Result<(), String>> {
    use futures::StreamExt;
    let mut source = gloo_net::eventsource::futures::EventSource::new(&format!("/api/jobs/{id}/events")).ok()?;
    let streams: Vec<_> = ["progress", "done", "failed", "layout"]
        .into_iter()
        .filter_map(|name| source.subscribe(name).ok())
        .collect();
    let mut events = futures::stream::select_all(streams);
    let outcome = loop {
        match events.next().await {
            Some(Ok((name, message))) => {
                let data = message.data().as_string().unwrap_or_default();
                if name == "layout" {
                    // A layout that does not decode is skipped: the next one replaces it anyway.
                    let live = serde_json::from_str::<LiveLayout>(&data).ok();
                    if let Some((coords, live)) = live.and_then(|l| Some((l.decode()?, l))) {
                        layouts(coords, live.dims);
                    }
                    continue;
                }
                // An event that does not parse is skipped; the next one (or polling) brings the state.
                let Ok(status) = serde_json::from_str::<JobStatus>(&data) else {
                    continue;
                };
                if let Some(outcome) = report(&status, progress) {
                    break Some(outcome);
                }
            }
            // A broken connection (the browser would reconnect forever): poll instead.
            Some(Err(_)) | None => break None,
        }
    };
    source.close();
    outcome
}

/// Follows job `id` by polling its status.
async fn poll(id: u64, progress: &impl Fn(String, f64)) -> Result<(), String> {
    loop {
        let s: JobStatus = get_json(&format!("/api/jobs/{id}")).await?;
        if let Some(outcome) = report(&s, progress) {
            return outcome;
        }
        gloo_timers::future::TimeoutFuture::new(150).await;
    }
}
