//! Talking to `/api`: JSON, binary columns, and latent jobs followed to their result.

use failscope_shared::api::ApiError;
use gloo_net::http::{Request, Response};

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

/// Starts a latent job (`kind` = `embeddings` or `clusterings`) and follows it, reporting
/// `(stage, fraction)` until it is done; returns the job id.
pub async fn run_job(
    study: i64,
    kind: &str,
    params: serde_json::Value,
    progress: impl Fn(String, f64),
) -> Result<u64, String> {
    let started: serde_json::Value = post_json(&format!("/api/studies/{study}/{kind}"), &params).await?;
    let job = started["job"].as_u64().ok_or("no job id")?;
    loop {
        let s: serde_json::Value = get_json(&format!("/api/jobs/{job}")).await?;
        progress(
            s["stage"].as_str().unwrap_or("").to_string(),
            s["fraction"].as_f64().unwrap_or(0.0),
        );
        if s["finished"] == true {
            return match s["error"].as_str() {
                Some(e) => Err(e.to_string()),
                None => Ok(job),
            };
        }
        gloo_timers::future::TimeoutFuture::new(150).await;
    }
}
