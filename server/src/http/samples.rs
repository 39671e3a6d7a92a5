//! Per-sample API for the latent view: the study's layout, columns as compact binary buffers
//! (`u16` codes or `f32` values, little-endian), one sample for the inspector, its image (rendered
//! as the model saw it, never from outside the study's data root), nearest neighbours, the most
//! confident failures and short links.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use failscope_shared::analysis::hotspots;
use failscope_shared::api::{
    FailuresQuery, FeaturesWarmth, Identity, Link, NeighboursQuery, NewLink, RankedSample, SampleDetail, StudyLayout,
};
use failscope_shared::wire::{self, DEFAULT_CSF};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ndarray::Array2;

use super::cache::study_data;
use super::{parse_id, with_store, AppError, AppState};
use crate::error::lock;
use crate::latent::{ivf, knn};
use crate::shift::corrupt::Applied;
use crate::sources::{self, ImageError};
use crate::store::{Store, StoreError};

/// Largest page of failures, neighbours or any list (a huge query is capped, not an error).
const MAX_LIST: usize = 500;

fn meta_keys(meta: &[crate::store::SampleMeta]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    if meta.iter().any(|m| m.0.is_some()) {
        keys.push("domain".into());
    }
    for (_, m) in meta.iter().take(1000) {
        for k in m.keys() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    keys
}

/// Every row's value of the metadata `key` (`domain` is the rows' domain).
fn meta_values<'a>(meta: &'a [crate::store::SampleMeta], key: &str) -> Vec<Option<&'a str>> {
    meta.iter()
        .map(|(domain, m)| {
            if key == "domain" {
                domain.as_deref()
            } else {
                m.get(key).map(String::as_str)
            }
        })
        .collect()
}

/// The study's metadata columns with at most `max` categories each: key, codes and categories
/// (what a hotspot's label may name).
pub(super) fn meta_columns(meta: &[crate::store::SampleMeta], max: usize) -> Vec<(String, Vec<u16>, Vec<String>)> {
    meta_keys(meta)
        .into_iter()
        .filter_map(|k| {
            let (codes, cats) = hotspots::categorise(&meta_values(meta, &k), max)?;
            Some((k, codes, cats))
        })
        .collect()
}

fn study(store: &Store, id: i64) -> Result<Option<StudyLayout>, StoreError> {
    let Some(facts) = store.facts(id)? else {
        return Ok(None);
    };
    let sets = store.test_sets(id)?;
    Ok(Some(StudyLayout {
        n: facts.n_samples,
        test_sets: sets.iter().map(|s| s.name.clone()).collect(),
        test_set_sizes: sets.iter().map(|s| s.size).collect(),
        classes: store.classes(id)?,
        csfs: facts.csfs,
        meta: meta_keys(&store.sample_meta(id)?),
        has_features: facts.has_features,
        has_images: store.image_settings(id)?.is_some(),
    }))
}

fn not_found(id: i64) -> AppError {
    AppError::NotFound(format!("no study with id {id}"))
}

/// `GET /api/studies/{id}/layout` (its response is kept by `cache::immutable`: studies never
/// change once imported, and the metadata keys take a pass over every sample's metadata).
pub async fn layout(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<StudyLayout>, AppError> {
    let id = parse_id(&id)?;
    let layout = with_store(&state, move |s| study(s, id))
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Json(layout))
}

fn binary(bytes: Vec<u8>, dtype: &str, categories: Option<Vec<String>>) -> Response {
    let mut headers = vec![
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (header::HeaderName::from_static(wire::DTYPE_HEADER), dtype.to_string()),
    ];
    if let Some(c) = categories {
        headers.push((
            header::HeaderName::from_static(wire::CATEGORIES_HEADER),
            wire::encode_categories(&c),
        ));
    }
    let mut resp = Bytes::from(bytes).into_response();
    for (k, v) in headers {
        if let Ok(v) = v.parse() {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

/// `GET /api/studies/{id}/columns/{name}`: `dataset_idx`, `label`, `predicted` (u16),
/// `score:<csf>` (f32), `meta:<key>` (u16 codes; categories in `X-Failscope-Categories`).
pub async fn column(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let name2 = name.clone();
    let cache = state.studies.clone();
    let out = with_store(&state, move |s| {
        let Some(data) = study_data(&cache, s, id)? else {
            return Ok(None);
        };
        let (samples, scores) = (&data.samples, data.scores.all());
        Ok(Some(match name2.as_str() {
            "dataset_idx" => Some(binary(
                wire::u16_bytes(samples.iter().map(|r| r.dataset_idx)),
                "u16",
                None,
            )),
            "label" => Some(binary(wire::u16_bytes(samples.iter().map(|r| r.label)), "u16", None)),
            "predicted" => Some(binary(
                wire::u16_bytes(samples.iter().map(|r| r.predicted)),
                "u16",
                None,
            )),
            other => {
                if let Some(csf) = other.strip_prefix("score:") {
                    scores
                        .get(csf)
                        .map(|v| binary(wire::f32_bytes(v.iter().copied()), "f32", None))
                } else if let Some(key) = other.strip_prefix("meta:") {
                    let meta = s.sample_meta(id)?;
                    hotspots::categorise(&meta_values(&meta, key), usize::MAX).map(|(codes, cats)| {
                        binary(wire::u16_bytes(codes.into_iter().map(i64::from)), "u16", Some(cats))
                    })
                } else {
                    None
                }
            }
        }))
    })
    .await?;
    match out {
        None => Err(not_found(id)),
        Some(None) => Err(AppError::NotFound(format!(
            "study {id} has no column {name:?} (dataset_idx, label, predicted, score:<csf>, meta:<key>)"
        ))),
        Some(Some(r)) => Ok(r),
    }
}

fn row_of(row: &str) -> Result<i64, AppError> {
    row.parse::<i64>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| AppError::BadRequest(format!("sample {row:?}: rows are non-negative integers")))
}

/// `GET /api/studies/{id}/samples/{row}`.
pub async fn sample(
    State(state): State<AppState>,
    Path((id, row)): Path<(String, String)>,
) -> Result<Json<SampleDetail>, AppError> {
    let (id, row) = (parse_id(&id)?, row_of(&row)?);
    let cache = state.studies.clone();
    with_store(&state, move |s| match study_data(&cache, s, id)? {
        Some(data) => s.sample_detail(id, row, &data.scores),
        None => Ok(None),
    })
    .await?
    .map(Json)
    .ok_or_else(|| AppError::NotFound(format!("study {id} has no sample {row}")))
}

/// `GET /api/studies/{id}/samples/{row}/image`: PNG, cached by the browser for an hour.
pub async fn image(
    State(state): State<AppState>,
    Path((id, row)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let (id, row) = (parse_id(&id)?, row_of(&row)?);
    let found = with_store(&state, move |s| Ok((s.sample(id, row)?, s.image_settings(id)?))).await?;
    let (Some(info), Some(settings)) = found else {
        return Err(AppError::NotFound(format!("study {id} has no image for sample {row}")));
    };
    let rel = info
        .image
        .ok_or_else(|| AppError::NotFound(format!("sample {row} has no image file")))?;
    // A stored corruption that does not parse was not written by this program: the image cannot be
    // shown as the model saw it, and showing it uncorrupted would mislead.
    let corruption = info
        .corruption
        .as_deref()
        .map(|c| c.parse::<Applied>())
        .transpose()
        .map_err(|e| AppError::Internal(format!("study {id}, sample {row}: stored corruption {e}")))?;
    let index = info.source_index.unwrap_or(0) as usize;
    let png = tokio::task::spawn_blocking(move || {
        let img = sources::render(
            &settings.root,
            &rel,
            &settings.preprocess,
            corruption,
            settings.seed,
            index,
        )?;
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, image::ImageFormat::Png)
            .map_err(|e| ImageError::Unreadable(e.to_string()))?;
        Ok::<_, ImageError>(buf.into_inner())
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
    .map_err(|e| match e {
        ImageError::Outside(_) => AppError::Forbidden(e.to_string()),
        ImageError::NoImage => AppError::NotFound(e.to_string()),
        ImageError::Unreadable(_) => AppError::NotFound(e.to_string()),
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        png,
    )
        .into_response())
}

/// Rows from which "similar cases" are answered from a partition index ([`ivf::Index`]) once it
/// is built: an exact scan costs time linear in the rows (`benches/neighbours.rs`, 512 features).
pub const APPROX_FROM: usize = 50_000;

/// A study's feature matrix, kept for neighbour queries (its records are in `cache::StudyCache`),
/// and for a large study the partition index over it, built in the background on the first query
/// (exact scans answer until it is ready).
pub(crate) struct FeatureCache {
    study: i64,
    features: Arc<Array2<f32>>,
    index: Arc<OnceLock<ivf::Index>>,
    /// Set when this entry is replaced: an index build still running stops at its next chunk.
    replaced: Arc<AtomicBool>,
}

impl Drop for FeatureCache {
    fn drop(&mut self) {
        self.replaced.store(true, Ordering::Relaxed);
    }
}

impl FeatureCache {
    fn new(study: i64, features: Arc<Array2<f32>>, approx_from: usize) -> FeatureCache {
        let (index, replaced) = (Arc::new(OnceLock::new()), Arc::new(AtomicBool::new(false)));
        if features.nrows() >= approx_from {
            let (x, index, replaced) = (features.clone(), index.clone(), replaced.clone());
            std::thread::spawn(move || {
                let stop = |_| match replaced.load(Ordering::Relaxed) {
                    true => std::ops::ControlFlow::Break(()),
                    false => std::ops::ControlFlow::Continue(()),
                };
                // On idle-priority threads: the exact scans answering meanwhile, on the request
                // side, keep the CPU they need.
                let build = || ivf::Index::build(x.view(), &stop);
                let built = match crate::latent::jobs::idle_pool() {
                    Some(pool) => pool.install(build),
                    None => build(),
                };
                if let Some(built) = built {
                    let _ = index.set(built);
                }
            });
        }
        FeatureCache {
            study,
            features,
            index,
            replaced,
        }
    }
}

/// A study's features and its partition index (set once built).
type Searchable = (Arc<Array2<f32>>, Arc<OnceLock<ivf::Index>>);

/// The parts of [`AppState`] that hold a study's features for "similar cases".
pub(crate) struct Features {
    cache: Arc<Mutex<Option<FeatureCache>>>,
    /// Held while a study's features are read from the store: a warm-up and a click (or two
    /// clicks) on a study not cached yet read them once, not once each (2 GiB at a million rows).
    /// A query arriving during a warm-up's read waits for it, which runs at idle priority: on a
    /// machine busy with other work that wait can be longer than the read alone.
    loading: Arc<Mutex<()>>,
    approx_from: usize,
}

impl Features {
    pub(crate) fn of(state: &AppState) -> Self {
        Self {
            cache: state.neighbours.clone(),
            loading: state.feature_loads.clone(),
            approx_from: state.approx_from,
        }
    }

    /// Whether study `id`'s features are cached, and its index built.
    fn warmth(&self, id: i64) -> FeaturesWarmth {
        lock(&self.cache).as_ref().filter(|c| c.study == id).map_or(
            FeaturesWarmth {
                loaded: false,
                indexed: false,
            },
            |c| FeaturesWarmth {
                loaded: true,
                indexed: c.index.get().is_some(),
            },
        )
    }

    /// Study `id`'s features and partition index (being built for a large study), read from the
    /// store unless cached; `None` when the study has no features.
    fn get(&self, s: &Store, id: i64) -> Result<Option<Searchable>, StoreError> {
        let hit = || {
            lock(&self.cache)
                .as_ref()
                .filter(|c| c.study == id)
                .map(|c| (c.features.clone(), c.index.clone()))
        };
        if let Some(h) = hit() {
            return Ok(Some(h));
        }
        let _one_read_at_a_time = lock(&self.loading);
        if let Some(h) = hit() {
            return Ok(Some(h));
        }
        // A study without features (or none at all) leaves the cached one where it is.
        if !s.facts(id)?.is_some_and(|f| f.has_features) {
            return Ok(None);
        }
        // The previous study's matrix goes first: the two need not both be in memory.
        *lock(&self.cache) = None;
        let Some(x) = s.features(id)? else { return Ok(None) };
        let entry = FeatureCache::new(id, Arc::new(x), self.approx_from);
        let h = (entry.features.clone(), entry.index.clone());
        *lock(&self.cache) = Some(entry);
        Ok(Some(h))
    }
}

/// `GET /api/studies/{id}/features/warm` (the web app asks when it opens a study): 202 with
/// [`FeaturesWarmth`]; a study large enough for a partition index has its features read and the
/// index built in the background unless they are already, so that its first "similar cases" need
/// not wait seconds for a million rows to be read. A read (viewers may ask); smaller studies are
/// read on their first query, in well under a second.
pub async fn warm_features(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<FeaturesWarmth>), AppError> {
    let id = parse_id(&id)?;
    let facts = with_store(&state, move |s| s.facts(id))
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no study with id {id}")))?;
    let features = Features::of(&state);
    let warmth = features.warmth(id);
    if !warmth.loaded && facts.has_features && facts.n_samples as usize >= state.approx_from {
        warm(features, state.store.clone(), id);
    }
    Ok((StatusCode::ACCEPTED, Json(warmth)))
}

/// Reads study `id`'s features into the cache (see [`warm_features`]) on idle-priority threads:
/// on 2 cores a million rows take seconds of CPU, which the page being drawn (software rendering,
/// without a GPU) and the requests should not have to share.
fn warm(features: Features, pool: Arc<super::Pool>, id: i64) {
    tokio::task::spawn_blocking(move || {
        let read = || pool.get().and_then(|s| features.get(&s, id));
        let read = match crate::latent::jobs::idle_pool() {
            Some(jobs) => jobs.install(read),
            None => read(),
        };
        if let Err(e) = read {
            tracing::warn!("reading the features of study {id} ahead of a query: {e}");
        }
    });
}

/// The response header that says how the neighbours were found: `exact` or `approximate`.
pub const SEARCH_HEADER: &str = "x-failscope-search";

/// `GET /api/studies/{id}/samples/{row}/neighbours?k=8`: nearest samples in feature space, with
/// Euclidean distances (exact; approximate from [`APPROX_FROM`] rows once the index is built,
/// as the [`SEARCH_HEADER`] says).
pub async fn neighbours(
    State(state): State<AppState>,
    Path((id, row)): Path<(String, String)>,
    Query(q): Query<NeighboursQuery>,
) -> Result<Response, AppError> {
    let (id, row) = (parse_id(&id)?, row_of(&row)?);
    let k = q.k.unwrap_or(8).min(MAX_LIST);
    let (features, studies) = (Features::of(&state), state.studies.clone());
    let out = with_store(&state, move |s| {
        let Some((x, index)) = features.get(s, id)? else {
            return Ok(None);
        };
        if row as usize >= x.nrows() {
            return Ok(None);
        }
        // The records only once the study is known to have features and this row.
        let Some(data) = study_data(&studies, s, id)? else {
            return Ok(None);
        };
        let samples = &data.samples;
        let (near, how) = match index.get() {
            Some(ix) => (
                ix.near(x.view(), row as usize, k)
                    .into_iter()
                    .map(|(j, d2)| (j, d2.sqrt()))
                    .collect(),
                "approximate",
            ),
            None => (knn::neighbours_of(x.view(), row as usize, k), "exact"),
        };
        Ok(Some((
            how,
            near.into_iter()
                .map(|(j, d)| RankedSample {
                    row: j as u64,
                    value: d,
                    label: samples[j].label,
                    predicted: samples[j].predicted,
                    dataset_idx: samples[j].dataset_idx,
                })
                .collect::<Vec<_>>(),
        )))
    })
    .await?;
    let (how, near) =
        out.ok_or_else(|| AppError::NotFound(format!("study {id} has no features or no sample {row}")))?;
    Ok(([(SEARCH_HEADER, how)], Json(near)).into_response())
}

/// `GET /api/studies/{id}/failures`: wrong predictions, most confident first (one test set, or all).
pub async fn failures(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<FailuresQuery>,
) -> Result<Json<Vec<RankedSample>>, AppError> {
    let id = parse_id(&id)?;
    let per_page = q.per_page.unwrap_or(20).clamp(1, MAX_LIST);
    let page = q.page.unwrap_or(0).min(1 << 20);
    let csf = q.csf.unwrap_or_else(|| DEFAULT_CSF.into());
    let csf2 = csf.clone();
    let cache = state.studies.clone();
    let out = with_store(&state, move |s| {
        let Some(data) = study_data(&cache, s, id)? else {
            return Ok(None);
        };
        let (samples, scores) = (&data.samples, data.scores.all());
        let Some(v) = scores.get(&csf2) else { return Ok(None) };
        let mut fails: Vec<RankedSample> = samples
            .iter()
            .enumerate()
            .filter(|(_, r)| r.label != r.predicted && q.test_set.is_none_or(|t| r.dataset_idx == t))
            .filter(|(i, _)| !v[*i].is_nan())
            .map(|(i, r)| RankedSample {
                row: i as u64,
                value: f64::from(v[i]),
                label: r.label,
                predicted: r.predicted,
                dataset_idx: r.dataset_idx,
            })
            .collect();
        fails.sort_by(|a, b| b.value.total_cmp(&a.value).then(a.row.cmp(&b.row)));
        Ok(Some(
            fails
                .into_iter()
                .skip(page * per_page)
                .take(per_page)
                .collect::<Vec<_>>(),
        ))
    })
    .await?;
    out.map(Json)
        .ok_or_else(|| AppError::NotFound(format!("study {id} has no CSF {csf:?}")))
}

/// `POST /api/links`: stores a view state (at most 8 KiB) under a short id.
pub async fn create_link(
    State(state): State<AppState>,
    Extension(me): Extension<Identity>,
    body: Result<Json<NewLink>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Link>, AppError> {
    let Json(NewLink { state: view }) =
        body.map_err(|e| AppError::BadRequest(format!("expected {{\"state\": \"…\"}} ({})", e.body_text())))?;
    // Only valid views are stored: printable ASCII (what `ViewState::to_query` writes, and what a
    // redirect header can carry) that parses as a view.
    if !view.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::BadRequest(
            "a view state is a URL query string: printable ASCII, no spaces or control characters".into(),
        ));
    }
    let parsed = failscope_shared::view::ViewState::from_query(&view)
        .map_err(|e| AppError::BadRequest(format!("invalid view state: {e}")))?;
    // A link opens one study's view: that study must exist for the caller.
    if let Some(study) = parsed.study {
        let exists = me.sees(study) && with_store(&state, move |s| s.exists(study)).await?;
        if !exists {
            return Err(AppError::NotFound(format!("no study with id {study}")));
        }
    }
    let v2 = view.clone();
    let id = with_store(&state, move |s| s.create_link(&v2)).await?;
    Ok(Json(Link { id, state: view }))
}

/// `GET /s/{id}`: redirects to the stored view (`/?<state>`), read-only. A link to a study outside
/// the caller's scope does not exist for it.
pub async fn open_link(
    State(state): State<AppState>,
    Extension(me): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Redirect, AppError> {
    if id.len() > 64 {
        return Err(AppError::NotFound("no such link".into()));
    }
    let id2 = id.clone();
    let view = with_store(&state, move |s| s.link(&id2))
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no link {id:?}")))?;
    let study = failscope_shared::view::ViewState::from_query(&view)
        .ok()
        .and_then(|v| v.study);
    if study.is_some_and(|s| !me.sees(s)) {
        return Err(AppError::NotFound(format!("no link {id:?}")));
    }
    let target = format!("/?{view}");
    // Redirect::to panics on a value that is not a valid header; stored states are checked at
    // creation, but a store written by anything else must not bring a handler down.
    if axum::http::HeaderValue::from_str(&target).is_err() {
        return Err(AppError::NotFound(format!("link {id:?} holds an invalid view")));
    }
    Ok(Redirect::to(&target))
}
