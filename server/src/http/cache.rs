//! What the server keeps in memory between requests. Studies never change once imported, and a
//! finished job's result never changes either, so every answer derived from them can be kept:
//! - [`StudyCache`]: the records and scores of the studies read last, for columns, failures,
//!   figures and the inspector (reading every row from SQLite took 25 ms at 100,000 rows);
//! - [`ResponseCache`]: whole responses of the study routes, by URI, within a byte budget
//!   (`immutable`, a middleware), and of finished jobs' results (`respond`).
//!
//! Both sit behind the access guard: a request reaches them only for a study or job it may see.

use std::sync::{Arc, Mutex};

use axum::body::HttpBody as _;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::lock;
use crate::store::{SampleRecord, Store, StoreError, StudyScores};

/// One study's records and scores, shared by the requests that read them.
pub(crate) struct StudyData {
    pub samples: Vec<SampleRecord>,
    pub scores: StudyScores,
}

/// The studies read last, most recent first.
#[derive(Default)]
pub(crate) struct StudyCache(Vec<(i64, Arc<StudyData>)>);

/// Studies [`StudyCache`] keeps.
const CACHED_STUDIES: usize = 4;

/// Study `id`'s records and scores from `cache`, read from `s` on a miss; `None` for no study.
pub(crate) fn study_data(cache: &Mutex<StudyCache>, s: &Store, id: i64) -> Result<Option<Arc<StudyData>>, StoreError> {
    let hit = {
        let mut c = lock(cache);
        let found = c.0.iter().position(|(k, _)| *k == id);
        found.map(|i| {
            let entry = c.0.remove(i);
            let data = entry.1.clone();
            c.0.insert(0, entry);
            data
        })
    };
    if let Some(data) = hit {
        return Ok(Some(data));
    }
    if !s.exists(id)? {
        return Ok(None);
    }
    // Read outside the lock: another request may read the same study meanwhile, which is harmless.
    let samples = s.samples(id)?;
    let scores = StudyScores::new(&samples, s.scores(id)?);
    let data = Arc::new(StudyData { samples, scores });
    let mut c = lock(cache);
    c.0.retain(|(k, _)| *k != id);
    c.0.insert(0, (id, data.clone()));
    c.0.truncate(CACHED_STUDIES);
    Ok(Some(data))
}

/// A kept response: its headers and body (always a 200).
struct Kept {
    headers: HeaderMap,
    body: Bytes,
}

impl Kept {
    fn response(&self) -> Response {
        let mut r = Response::new(Body::from(self.body.clone()));
        *r.headers_mut() = self.headers.clone();
        r
    }
}

/// Whole responses by key, least recently used evicted first once their bodies pass a byte budget.
pub(crate) struct ResponseCache {
    inner: Mutex<(lru::LruCache<String, Arc<Kept>>, usize)>,
    budget: usize,
}

/// What the kept responses' bodies may add up to.
const RESPONSE_BUDGET: usize = 256 << 20;
/// The largest body kept: a column of 1,000,000 `f32` values is 4 MB, a layout 8 MB.
const LARGEST_KEPT: usize = 16 << 20;

impl Default for ResponseCache {
    fn default() -> Self {
        Self::with_budget(RESPONSE_BUDGET)
    }
}

impl ResponseCache {
    pub(crate) fn with_budget(budget: usize) -> Self {
        Self {
            inner: Mutex::new((lru::LruCache::unbounded(), 0)),
            budget,
        }
    }

    fn get(&self, key: &str) -> Option<Arc<Kept>> {
        lock(&self.inner).0.get(key).cloned()
    }

    fn put(&self, key: String, kept: Kept) {
        let size = kept.body.len() + key.len();
        if size > self.budget.min(LARGEST_KEPT) {
            return;
        }
        let mut inner = lock(&self.inner);
        let (map, bytes) = &mut *inner;
        if let Some(old) = map.put(key.clone(), Arc::new(kept)) {
            *bytes -= old.body.len() + key.len();
        }
        *bytes += size;
        while *bytes > self.budget {
            let Some((k, v)) = map.pop_lru() else { break };
            *bytes -= v.body.len() + k.len();
        }
    }

    /// The response kept under `key`, else `make`'s, kept when it is a 200 whose body's size is
    /// known and small enough.
    pub(crate) async fn respond<F>(&self, key: String, make: F) -> Response
    where
        F: std::future::Future<Output = Response>,
    {
        if let Some(hit) = self.get(&key) {
            return hit.response();
        }
        let response = make.await;
        let size = response.body().size_hint().exact();
        if response.status() != StatusCode::OK || size.is_none_or(|n| n as usize > LARGEST_KEPT) {
            return response;
        }
        let (parts, body) = response.into_parts();
        match axum::body::to_bytes(body, LARGEST_KEPT).await {
            Ok(bytes) => {
                self.put(
                    key,
                    Kept {
                        headers: parts.headers.clone(),
                        body: bytes.clone(),
                    },
                );
                Response::from_parts(parts, Body::from(bytes))
            }
            Err(e) => super::AppError::Internal(format!("reading a response body: {e}")).into_response(),
        }
    }

    /// How many responses are kept (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.inner).0.len()
    }
}

/// Middleware for routes whose answer depends only on the URI (a study's data): a GET is answered
/// from the cache when it can be.
pub(crate) async fn immutable(State(cache): State<Arc<ResponseCache>>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let key = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    cache.respond(key, next.run(req)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: usize) -> Response {
        Response::new(Body::from(vec![7u8; n]))
    }

    #[tokio::test]
    async fn keeps_only_known_200s_within_the_budget() {
        let cache = ResponseCache::with_budget(1000);
        let r = cache.respond("/a".into(), async { body(400) }).await;
        assert_eq!(axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap().len(), 400);
        // A hit never runs `make`.
        let r = cache.respond("/a".into(), async { panic!("not asked") }).await;
        assert_eq!(axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap().len(), 400);
        let not_found = cache
            .respond("/b".into(), async { (StatusCode::NOT_FOUND, "no").into_response() })
            .await;
        assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
        assert_eq!(cache.len(), 1, "only 200s are kept");
        // Past the budget the least recently used goes: 3 × 400 bytes do not fit in 1000, so /a goes.
        cache.respond("/c".into(), async { body(400) }).await;
        cache.respond("/d".into(), async { body(400) }).await;
        assert_eq!(cache.len(), 2);
        assert!(cache.get("/a").is_none() && cache.get("/d").is_some());
        // A body bigger than the budget is served, not kept.
        let big = cache.respond("/e".into(), async { body(5000) }).await;
        assert_eq!(
            axum::body::to_bytes(big.into_body(), 1 << 20).await.unwrap().len(),
            5000
        );
        assert!(cache.get("/e").is_none());
    }
}
