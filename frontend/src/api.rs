//! Talking to `/api`: JSON, binary columns, and latent jobs followed to their result.

use failscope_shared::api::ApiError;
use gloo_net::http::{Request, Response};

use crate::colors::Columns;

async fn check(resp: Response) -> Result<Response, String> {
    if resp.ok() {
        return Ok(resp);
    }
    let status = resp.status();
    let body: Result<ApiError, _> = resp.json().await;
    Err(body.map(|b| b.error).unwrap_or_else(|_| format!("HTTP {status}")))
}

/// GET JSON.
pub async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, String> {
    let resp = Request::get(url).send().await.map_err(|e| e.to_string())?;
    check(resp).await?.json().await.map_err(|e| e.to_string())
}

/// POST JSON, answer JSON.
pub async fn post_json<T: serde::de::DeserializeOwned>(url: &str, body: &serde_json::Value) -> Result<T, String> {
    let resp = Request::post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|e| e.to_string())?;
    check(resp).await?.json().await.map_err(|e| e.to_string())
}

/// GET bytes and one response header.
pub async fn get_bytes(url: &str, header: &str) -> Result<(Vec<u8>, Option<String>), String> {
    let resp = check(Request::get(url).send().await.map_err(|e| e.to_string())?).await?;
    let h = resp.headers().get(header);
    Ok((resp.binary().await.map_err(|e| e.to_string())?, h))
}

/// Little-endian `u16`s.
pub fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect()
}

/// Little-endian `f32`s.
pub fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Starts a latent job (`kind` = `embeddings` or `clusterings`) and follows its progress to the
/// end: over Server-Sent Events (`/api/jobs/{id}/events`), or by polling `/api/jobs/{id}` when the
/// browser cannot keep the event stream open. Answers the job id (its result is at
/// `/api/jobs/{id}/result`).
pub async fn run_job(
    study: i64,
    kind: &str,
    params: serde_json::Value,
    progress: impl Fn(String, f64),
) -> Result<u64, String> {
    let started: serde_json::Value = post_json(&format!("/api/studies/{study}/{kind}"), &params).await?;
    let job = started["job"].as_u64().ok_or("no job id")?;
    match follow_events(job, &progress).await {
        Some(outcome) => outcome.map(|()| job),
        None => poll(job, &progress).await.map(|()| job),
    }
}

/// Reports a job status (`/api/jobs/{id}` JSON) to `progress`; `Some` outcome once it finished.
fn report(s: &serde_json::Value, progress: &impl Fn(String, f64)) -> Option<Result<(), String>> {
    progress(
        s["stage"].as_str().unwrap_or("").to_string(),
        s["fraction"].as_f64().unwrap_or(0.0),
    );
    (s["finished"] == true).then(|| match s["error"].as_str() {
        Some(e) => Err(e.to_string()),
        None => Ok(()),
    })
}

/// Follows job `id` over its event stream; `None` when the stream broke before the end.
async fn follow_events(id: u64, progress: &impl Fn(String, f64)) -> Option<Result<(), String>> {
    use futures::StreamExt;
    let mut source = gloo_net::eventsource::futures::EventSource::new(&format!("/api/jobs/{id}/events")).ok()?;
    let streams: Vec<_> = ["progress", "done", "failed"]
        .into_iter()
        .filter_map(|name| source.subscribe(name).ok())
        .collect();
    let mut events = futures::stream::select_all(streams);
    let outcome = loop {
        match events.next().await {
            Some(Ok((_, message))) => {
                let data = message.data().as_string().unwrap_or_default();
                let status: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
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
        let s: serde_json::Value = get_json(&format!("/api/jobs/{id}")).await?;
        if let Some(outcome) = report(&s, progress) {
            return outcome;
        }
        gloo_timers::future::TimeoutFuture::new(150).await;
    }
}

/// Percent-decodes a header value.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The per-point columns of `study` with the scores of `csf`.
pub async fn load_columns(study: i64, csf: &str) -> Result<Columns, String> {
    let col = |name: String| async move { get_bytes(&format!("/api/studies/{study}/columns/{name}"), "x").await };
    let (d, _) = col("dataset_idx".into()).await?;
    let (l, _) = col("label".into()).await?;
    let (p, _) = col("predicted".into()).await?;
    let (s, _) = col(format!("score:{csf}")).await?;
    Ok(Columns {
        dataset_idx: u16s(&d),
        label: u16s(&l),
        predicted: u16s(&p),
        score: f32s(&s),
        cluster: None,
        meta: None,
    })
}
