//! The study view's data hooks: each loads or derives one thing into the [`StudyCtx`]'s signals
//! — the per-point columns, the embedding (a background job with live progress), the cluster or
//! metadata column a colouring needs, and the paint (colours, shapes, legend).

use failscope_shared::analysis::compare::compare;
use failscope_shared::analysis::rc::coverage_threshold;
use failscope_shared::api::{ClusterParams, StudyLayout};
use failscope_shared::view::{camera, ColorMode, Panel, ViewState};
use failscope_shared::wire::SILENT_FAILURE_COVERAGE;
use leptos::prelude::*;

use crate::api;
use crate::colors::{self, Paint};
use crate::columns::{Columns, CompareKey, Compared};

/// How a comparison's error begins (the compare panel shows those).
pub const COMPARE_ERROR: &str = "cannot compare";

/// Loads the columns, again when the CSF changes (keeping a loaded cluster or metadata column).
pub fn use_columns(
    id: i64,
    state: RwSignal<ViewState>,
    cols: RwSignal<Option<Columns>>,
    error: RwSignal<Option<String>>,
) {
    let csf = Memo::new(move |_| state.get().csf);
    Effect::new(move |_| {
        let csf = csf.get();
        leptos::task::spawn_local(async move {
            match api::columns(id, &csf).await {
                Ok(c) => cols.update(|old| {
                    let keep = old.take();
                    *old = Some(Columns {
                        cluster: keep.as_ref().and_then(|k| k.cluster.clone()),
                        meta: keep.and_then(|k| k.meta),
                        // A comparison depends on this side's CSF: `use_comparison` redoes it.
                        ..c
                    })
                }),
                Err(e) => error.set(Some(format!("cannot load the study's columns: {e}"))),
            }
        });
    });
}

/// What [`use_embedding`] writes.
pub struct EmbeddingSignals {
    /// The normalised coordinates shown.
    pub xy: RwSignal<Option<Vec<f32>>>,
    /// Whether they are an intermediate layout.
    pub live: RwSignal<bool>,
    /// The job computing them.
    pub job: RwSignal<Option<api::JobHandle>>,
}

/// Computes (or reads back) the joint embedding the view asks for (t-SNE or UMAP, 2-D or 3-D) into
/// `xy`, with a live progress bar; while the job optimises, its intermediate layouts animate the
/// points into place (`live` is true until the final layout replaces them). The running job is in
/// `job`, for the progress bar's stop button.
pub fn use_embedding(
    id: i64,
    layout: &StudyLayout,
    state: RwSignal<ViewState>,
    EmbeddingSignals { xy, live, job }: EmbeddingSignals,
    progress: RwSignal<Option<(String, f64)>>,
    error: RwSignal<Option<String>>,
) {
    let params = Memo::new(move |_| state.get().embed_params());
    let has_features = layout.has_features;
    // Bumped by every layout shown, so that a tween still running gives way to the newer one.
    let tweens = StoredValue::new(0u64);
    Effect::new(move |_| {
        let params = params.get();
        if !has_features {
            progress.set(None);
            error.set(Some(
                "this study has no features, so it has no latent view (its benchmark is in the Benchmark panel)".into(),
            ));
            return;
        }
        xy.set(None);
        live.set(false);
        // A new embedding replaces what the last one said (stopped, failed); other errors stay.
        if error.with_untracked(|e| e.as_deref().is_some_and(|e| e.starts_with("embedding "))) {
            error.set(None);
        }
        progress.set(Some(("starting".into(), 0.0)));
        // When the view stops needing this embedding (2-D ↔ 3-D, another layout or study), its
        // job stops.
        let handle = api::JobHandle::default();
        let stop = handle.clone();
        on_cleanup(move || stop.cancel());
        job.set(Some(handle.clone()));
        leptos::task::spawn_local(async move {
            let shown = handle.clone();
            let on_layout = move |coords: Vec<f32>, dims: usize| {
                if !shown.cancelled() {
                    live.set(true);
                    tween(xy, camera::normalise(&coords, dims), tweens);
                }
            };
            let r = api::embedding(id, &params, |s, f| progress.set(Some((s, f))), on_layout, &handle).await;
            if handle.cancelled() {
                return;
            }
            job.set(None);
            progress.set(None);
            tweens.update_value(|g| *g += 1);
            live.set(false);
            match r {
                Ok((coords, dims)) => xy.set(Some(camera::normalise(&coords, dims))),
                Err(e) => error.set(Some(format!("embedding failed: {e}"))),
            }
        });
    });
}

/// Frames of a tween and the time between them: the points reach each intermediate layout within
/// ~150 ms, before the next one comes (250 ms apart).
const TWEEN_STEPS: u32 = 5;
const TWEEN_FRAME_MS: u32 = 30;

/// Moves the points from where they are to `target` over a few frames (smoothstep easing); at once
/// when nothing of the same size is shown yet.
fn tween(xy: RwSignal<Option<Vec<f32>>>, target: Vec<f32>, tweens: StoredValue<u64>) {
    tweens.update_value(|g| *g += 1);
    let mine = tweens.get_value();
    let Some(from) = xy.get_untracked().filter(|f| f.len() == target.len()) else {
        xy.set(Some(target));
        return;
    };
    leptos::task::spawn_local(async move {
        for step in 1..=TWEEN_STEPS {
            gloo_timers::future::TimeoutFuture::new(TWEEN_FRAME_MS).await;
            if tweens.get_value() != mine {
                return;
            }
            let t = step as f32 / TWEEN_STEPS as f32;
            let t = t * t * (3.0 - 2.0 * t);
            xy.set(Some(from.iter().zip(&target).map(|(a, b)| a + (b - a) * t).collect()));
        }
    });
}

/// Fetches what a cluster or metadata colouring needs, once per clustering or key.
pub fn use_colouring_columns(
    id: i64,
    state: RwSignal<ViewState>,
    cols: RwSignal<Option<Columns>>,
    progress: RwSignal<Option<(String, f64)>>,
    error: RwSignal<Option<String>>,
) {
    Effect::new(move |_| {
        let color = state.get().color;
        let have = cols.with(|c| {
            c.as_ref()
                .map(|c| (c.cluster.is_some(), c.meta.as_ref().map(|m| m.key.clone())))
        });
        let Some((has_cluster, meta_key)) = have else { return };
        match color {
            ColorMode::Cluster if !has_cluster => leptos::task::spawn_local(async move {
                let r = api::clustering(id, &ClusterParams::default(), |s, f| progress.set(Some((s, f)))).await;
                progress.set(None);
                match r {
                    Ok(c) => cols.update(|x| {
                        if let Some(x) = x {
                            x.cluster = Some(c.assignment)
                        }
                    }),
                    Err(e) => error.set(Some(format!("clustering failed: {e}"))),
                }
            }),
            ColorMode::Meta(key) if meta_key.as_deref() != Some(key.as_str()) => {
                leptos::task::spawn_local(async move {
                    match api::meta_column(id, &key).await {
                        Ok(m) => cols.update(|x| {
                            if let Some(x) = x {
                                x.meta = Some(m)
                            }
                        }),
                        Err(e) => error.set(Some(e)),
                    }
                });
            }
            _ => {}
        }
    });
}

/// Computes the comparison the view sets (`vs`, `csf2`, `cov`) into `cols.compare`: side B's
/// columns (the other study's, or this one's under the second CSF), the rows matched by sample
/// for another study, then the verdict per point. Again whenever any of them or side A's CSF
/// changes; an outcome the view no longer asks for is dropped.
pub fn use_comparison(
    id: i64,
    state: RwSignal<ViewState>,
    cols: RwSignal<Option<Columns>>,
    error: RwSignal<Option<String>>,
) {
    let want = Memo::new(move |_| CompareKey::of(&state.get()));
    // The comparison being fetched: a column arriving meanwhile does not start it again.
    let pending = StoredValue::new(None::<CompareKey>);
    Effect::new(move |_| {
        let key = want.get();
        // `None`: no columns yet; `Some(None)`: nothing compared.
        let have = cols.with(|c| c.as_ref().map(|c| c.compare.as_ref().map(|x| x.key.clone())));
        let Some(have) = have else { return };
        let Some(key) = key else {
            if have.is_some() {
                cols.update(|c| {
                    if let Some(c) = c {
                        c.compare = None;
                    }
                });
            }
            return;
        };
        if have.as_ref() == Some(&key) || pending.with_value(|p| p.as_ref() == Some(&key)) {
            return;
        }
        pending.set_value(Some(key.clone()));
        leptos::task::spawn_local(async move {
            let other = key.vs.unwrap_or(id);
            let b = api::columns(other, &key.csf_b).await;
            let matched = match key.vs.filter(|&v| v != id) {
                Some(v) => api::matches(id, v).await.map(Some),
                None => Ok(None),
            };
            pending.update_value(|p| {
                if p.as_ref() == Some(&key) {
                    *p = None;
                }
            });
            let (b, matched) = match (b, matched) {
                (Ok(b), Ok(m)) => (b, m),
                (Err(e), _) | (_, Err(e)) => {
                    error.set(Some(format!(
                        "{COMPARE_ERROR} with study {other} under {}: {e}",
                        key.csf_b
                    )));
                    return;
                }
            };
            if want.get_untracked().as_ref() != Some(&key) {
                return;
            }
            // An earlier comparison's error no longer holds.
            if error.with_untracked(|e| e.as_deref().is_some_and(|e| e.starts_with(COMPARE_ERROR))) {
                error.set(None);
            }
            cols.update(|c| {
                let Some(c) = c else { return };
                let rows = matched.as_ref().map(|(rows, _)| rows.as_slice());
                let result = compare(&c.side(), &b.side(), rows, key.coverage);
                let matched = matched.as_ref().map_or(c.label.len(), |(_, n)| *n);
                c.compare = Some(Compared { key, result, matched });
            });
        });
    });
}

/// Colours, shapes and legend of every point: recomputed only when a colour-relevant field of the
/// view changes (panning or selecting must not recolour a million points). Also answers the
/// silent-failure threshold (the CSF's value at 95 % coverage of the i.i.d. set).
pub fn use_paint(
    layout: &StudyLayout,
    state: RwSignal<ViewState>,
    cols: RwSignal<Option<Columns>>,
) -> (Memo<Option<Paint>>, Memo<f64>) {
    let threshold = Memo::new(move |_| {
        cols.with(|c| {
            c.as_ref().map_or(f64::INFINITY, |c| {
                let idx: Vec<i64> = c.dataset_idx.iter().map(|v| i64::from(*v)).collect();
                coverage_threshold(&c.score, &idx, SILENT_FAILURE_COVERAGE)
            })
        })
    });
    let paint_key = Memo::new(move |_| {
        let s = state.get();
        ViewState {
            cam: Default::default(),
            sel: None,
            panel: Panel::Inspector,
            size: 0.0,
            ..s
        }
    });
    let sets = layout.test_sets.clone();
    let classes = layout.classes.clone();
    let paint = Memo::new(move |_| {
        let s = paint_key.get();
        let t = threshold.get();
        cols.with(|c| c.as_ref().map(|c| colors::colors(c, &s, t, &sets, &classes)))
    });
    (paint, threshold)
}
