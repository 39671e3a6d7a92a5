//! The side panels: inspector, most confident failures, clusters, benchmark, box selection.

use failscope_shared::analysis::hotspots;
use failscope_shared::analysis::rc::{RiskCoverageStats, TieOrder};
use failscope_shared::api::{ClusterParams, FailuresQuery, FigureQuery, HotspotsQuery, NeighboursQuery};
use failscope_shared::view::{ColorMode, Panel, ViewState};
use std::sync::Arc;

use leptos::prelude::*;

use crate::api;
use crate::columns::Columns;
use crate::context::{self, StudyCtx};
use crate::curves::RiskCoverageChart;

fn thumb(id: i64, row: u64, state: RwSignal<ViewState>, caption: String) -> impl IntoView {
    view! {
        <figure class="thumb" data-row=row on:click=move |_| state.update(|s| { s.sel = Some(row); s.panel = Panel::Inspector; })>
            <img src=api::image_url(id, row) alt=format!("sample {row}") loading="lazy"/>
            <figcaption>{caption}</figcaption>
        </figure>
    }
}

/// The selected sample: image, label, prediction, softmax bars, every CSF with its percentile,
/// metadata, and its nearest neighbours (clickable).
#[component]
pub fn Inspector() -> impl IntoView {
    let StudyCtx { state, id, .. } = context::study();
    let sel = Memo::new(move |_| state.get().sel);
    let detail = LocalResource::new(move || async move {
        match sel.get() {
            None => Ok(None),
            Some(row) => api::sample(id, row).await.map(Some),
        }
    });
    let neighbours = LocalResource::new(move || async move {
        match sel.get() {
            None => Ok(Vec::new()),
            Some(row) => api::neighbours(id, row, &NeighboursQuery { k: Some(8) }).await,
        }
    });
    view! {
        <div id="inspector">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || detail.get().map(|r| match r {
                    Err(e) => view! { <p class="error">{e}</p> }.into_any(),
                    Ok(None) => view! { <p class="muted">"Click a point to inspect it."</p> }.into_any(),
                    Ok(Some(d)) => {
                        let wrong = d.label != d.predicted;
                        view! {
                            <div class="sample" data-row=d.row>
                                {d.has_image.then(|| view! { <img id="inspector-image" src=api::image_url(id, d.row) alt="the sample as the model saw it"/> })}
                                <dl>
                                    <dt>"sample"</dt><dd id="inspector-row">{format!("#{} {}", d.row, d.sample_id.clone().unwrap_or_default())}</dd>
                                    <dt>"test set"</dt><dd>{d.test_set.clone()}</dd>
                                    <dt>"label"</dt><dd id="inspector-label">{d.label_name.clone()}</dd>
                                    <dt>"prediction"</dt><dd id="inspector-prediction" class:bad=wrong>{format!("{}{}", d.predicted_name, if wrong { " — wrong" } else { "" })}</dd>
                                    {d.domain.clone().map(|dm| view! { <dt>"domain"</dt><dd>{dm}</dd> })}
                                    {d.corruption.clone().map(|c| view! { <dt>"corruption"</dt><dd>{c}</dd> })}
                                    {d.meta.iter().map(|(k, v)| view! { <dt>{k.clone()}</dt><dd>{v.clone()}</dd> }).collect_view()}
                                </dl>
                                <h4>"softmax"</h4>
                                <ul class="bars">{d.probs.iter().enumerate().map(|(k, p)| view! {
                                    <li class:label=k as i64 == d.label><span class="bar" style=format!("width:{:.1}%", p * 100.0)></span>{format!("{}: {p:.3}", d.classes.get(k).cloned().unwrap_or_else(|| format!("class {k}")))}</li>
                                }).collect_view()}</ul>
                                <h4>"confidence scoring functions"</h4>
                                <table class="csfs"><thead><tr><th>"CSF"</th><th>"score"</th><th>"percentile in its test set"</th></tr></thead>
                                <tbody>{d.scores.iter().map(|c| view! {
                                    <tr><td>{c.csf.clone()}</td>
                                    <td class="num">{c.score.map_or("—".into(), |v| format!("{v:.4}"))}</td>
                                    <td class="num">{c.percentile.map_or("—".into(), |v| format!("{v:.0}"))}</td></tr>
                                }).collect_view()}</tbody></table>
                            </div>
                        }.into_any()
                    }
                })}
                <h4>"similar cases (feature space)"</h4>
                <div class="thumbs" id="neighbours">{move || neighbours.get().map(|r| match r {
                    Err(e) => view! { <p class="muted">{e}</p> }.into_any(),
                    Ok(list) => list.into_iter().map(|n| thumb(id, n.row, state, format!("#{} d={:.2}", n.row, n.value))).collect_view().into_any(),
                })}</div>
            </Suspense>
        </div>
    }
}

/// The most confident failures of a test set (or all) for the chosen CSF, paged.
#[component]
pub fn Failures() -> impl IntoView {
    let StudyCtx { state, id, .. } = context::study();
    let page = RwSignal::new(0usize);
    let set = RwSignal::new(None::<i64>);
    let csf = Memo::new(move |_| state.get().csf);
    let list = LocalResource::new(move || async move {
        let q = FailuresQuery {
            test_set: set.get(),
            csf: Some(csf.get()),
            page: Some(page.get()),
            per_page: Some(12),
        };
        api::failures(id, &q).await
    });
    view! {
        <div id="failures">
            <p class="muted">{move || format!("Wrong predictions, most confident first ({})", csf.get())}</p>
            <label>"test set "<input type="number" min="0" placeholder="all" on:change=move |ev| {
                set.set(event_target_value(&ev).parse().ok()); page.set(0);
            }/></label>
            <div class="thumbs">{move || list.get().map(|r| match r {
                Err(e) => view! { <p class="error">{e}</p> }.into_any(),
                Ok(l) if l.is_empty() => view! { <p class="muted">"No failures."</p> }.into_any(),
                Ok(l) => l.into_iter().map(|f| thumb(id, f.row, state, format!("#{} {:.3} (set {})", f.row, f.value, f.dataset_idx))).collect_view().into_any(),
            })}</div>
            <button on:click=move |_| page.update(|p| *p = p.saturating_sub(1))>"◀"</button>
            <span>{move || format!(" page {} ", page.get() + 1)}</span>
            <button on:click=move |_| page.update(|p| *p += 1)>"▶"</button>
        </div>
    }
}

/// Where the hotspots come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Regions {
    /// Silent-failure regions by density on the view's layout (`GET …/hotspots`).
    Density,
    /// k-means within each true class on the features (a clustering job).
    KMeans,
}

/// Hotspots ranked, with the region of every row.
struct Ranked {
    hotspots: Vec<hotspots::Hotspot>,
    assignment: Vec<i32>,
    csf: String,
    threshold: f64,
}

/// Silent-failure hotspots: density regions on the layout (default) or k-means clusters per
/// class, ranked by silent failures; a click frames the region, selects it and colours by it.
#[component]
pub fn Clusters() -> impl IntoView {
    let StudyCtx {
        state,
        id,
        layout,
        xy,
        selection,
        cols,
        ..
    } = context::study();
    let regions = RwSignal::new(Regions::Density);
    let csf = Memo::new(move |_| state.get().csf);
    let embed = Memo::new(move |_| state.get().embed_params());
    let has_layout = Memo::new(move |_| xy.with(Option::is_some));
    let progress = RwSignal::new(None::<(String, f64)>);
    let (classes, sets) = layout.with_value(|l| (l.classes.clone(), l.test_sets.clone()));
    let result = LocalResource::new(move || {
        let (classes, sets) = (classes.clone(), sets.clone());
        async move {
            match regions.get() {
                Regions::Density => {
                    if !has_layout.get() {
                        return Err("waiting for the layout…".to_string());
                    }
                    let q = HotspotsQuery::of(Some(csf.get()), &embed.get());
                    let r = api::hotspots(id, &q).await?;
                    Ok(Arc::new(Ranked {
                        hotspots: r.hotspots,
                        assignment: r.assignment,
                        csf: r.csf,
                        threshold: r.threshold,
                    }))
                }
                Regions::KMeans => {
                    let params = ClusterParams {
                        csf: csf.get(),
                        ..ClusterParams::default()
                    };
                    let c = api::clustering(id, &params, |s, f| progress.set(Some((s, f)))).await;
                    progress.set(None);
                    let c = c?;
                    Ok(Arc::new(Ranked {
                        hotspots: {
                            // The metadata column the view colours by, when loaded, may name a cluster.
                            let meta = cols.with_untracked(|x| x.as_ref().and_then(|x| x.meta.clone()));
                            let meta: Vec<hotspots::Meta> = meta
                                .iter()
                                .map(|m| hotspots::Meta {
                                    key: &m.key,
                                    codes: &m.codes,
                                    categories: &m.categories,
                                })
                                .collect();
                            hotspots::ranked(&c, &classes, &sets, &meta)
                        },
                        assignment: c.assignment,
                        csf: c.csf,
                        threshold: c.threshold,
                    }))
                }
            }
        }
    });
    view! {
        <div id="clusters">
            <label>"regions "
                <select id="regions" on:change=move |ev| regions.set(if event_target_value(&ev) == "kmeans" { Regions::KMeans } else { Regions::Density })>
                    <option value="density" selected=true>"dense silent failures on the layout"</option>
                    <option value="kmeans">"k-means per class (features)"</option>
                </select>
            </label>
            {move || progress.get().map(|(s, f)| view! { <progress max="1" value=f></progress><span>{s}</span> })}
            {move || result.get().map(|r| match r {
                Err(e) => view! { <p class="error">{e}</p> }.into_any(),
                Ok(r) => {
                    let kmeans = regions.get_untracked() == Regions::KMeans;
                    let one = r.hotspots.len() == 1;
                    let what = match (regions.get_untracked(), one) {
                        (Regions::Density, false) => "regions where silent failures are dense",
                        (Regions::Density, true) => "region where silent failures are dense",
                        (Regions::KMeans, false) => "clusters",
                        (Regions::KMeans, true) => "cluster",
                    };
                    view! {
                        <p class="muted">{format!("{} {what}, most silent failures first; silent = wrong with {} ≥ {:.3}. Click one to frame and select it.", r.hotspots.len(), r.csf, r.threshold)}</p>
                        <table><thead><tr><th>"hotspot"</th><th>"size"</th><th>"accuracy"</th><th>"silent"</th><th>"representative"</th></tr></thead>
                        <tbody>{r.hotspots.iter().cloned().map(|h| {
                            let rep = h.representative;
                            let r = r.clone();
                            let frame = move |_| {
                                let rows = hotspots::rows_of(&r.assignment, h.id);
                                let cam = xy.with_untracked(|p| p.as_ref().map(|p| state.get_untracked().cam.framing(p, &rows, 0.8)));
                                selection.set(Selection(rows));
                                state.update(|v| {
                                    // The cluster colouring shows the k-means clusters.
                                    if kmeans {
                                        v.color = ColorMode::Cluster;
                                    }
                                    v.sel = Some(rep);
                                    if let Some(cam) = cam {
                                        v.cam = cam;
                                    }
                                });
                            };
                            view! {
                                <tr class="cluster-row" data-cluster=h.id data-size=h.size on:click=frame>
                                    <td>{h.label}</td><td class="num">{h.size}</td><td class="num">{format!("{:.2}", h.accuracy)}</td>
                                    <td class="num">{h.silent}</td>
                                    <td><img class="mini" src=api::image_url(id, rep) alt="" loading="lazy"/></td>
                                </tr>
                            }
                        }).collect_view()}</tbody></table>
                    }.into_any()
                }
            })}
        </div>
    }
}

/// Metrics shown in the benchmark table, in order.
const HEADLINE: [&str; 5] = ["aurc", "augrc", "failauc", "ece", "accuracy"];

fn fmt(v: Option<f64>) -> String {
    v.map_or_else(
        || "—".to_string(),
        |x| {
            if x.abs() >= 100.0 {
                format!("{x:.1}")
            } else {
                format!("{x:.3}")
            }
        },
    )
}

/// The study's benchmark: CSF × headline metrics per test set (with bootstrap CIs when stored),
/// the interactive risk–coverage chart, the reliability diagram from the server, and downloads
/// (CSV; both figures as SVG or PNG rendered by the server).
#[component]
pub fn Benchmark() -> impl IntoView {
    let StudyCtx {
        state,
        id,
        cols,
        layout,
        ..
    } = context::study();
    let test_sets = layout.with_value(|l| l.test_sets.clone());
    let detail = LocalResource::new(move || api::study(id));
    let csf = Memo::new(move |_| state.get().csf);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading benchmark…"</p> }>
            {move || detail.get().map(|r| match r {
                Err(e) => view! { <p class="error">{e}</p> }.into_any(),
                Ok(d) => {
                    let mut csv = String::from("test_set,csf");
                    for m in HEADLINE { csv.push(','); csv.push_str(m); }
                    csv.push('\n');
                    for (t, csfs) in &d.report {
                        for (c, row) in csfs {
                            csv.push_str(&format!("{t},{c}"));
                            for m in HEADLINE { csv.push(','); csv.push_str(&row.get(m).copied().flatten().map_or(String::new(), |v| v.to_string())); }
                            csv.push('\n');
                        }
                    }
                    let csv_href = format!("data:text/csv;charset=utf-8,{}", js_sys::encode_uri_component(&csv));
                    view! {
                        <section class="benchmark" data-study=d.summary.id>
                            <h2>{d.summary.name.clone()}</h2>
                            <p class="muted">{format!("{} · {} samples · metrics: {}", d.summary.kind, d.summary.n_samples, d.compat)}</p>
                            <p class="downloads"><a id="download-csv" href=csv_href download="benchmark.csv">"table CSV"</a>
                               {["risk-coverage.svg", "risk-coverage.png", "reliability.svg", "reliability.png"].into_iter().map(|f| view! {
                                   " · "<a class="figure-download" href=move || api::figure_url(id, f, &FigureQuery { test_set: None, csf: Some(csf.get()) }) download=f>{f}</a>
                               }).collect_view()}</p>
                            <RiskCoverageChart cols=cols names=test_sets.clone() csf=csf/>
                            <img class="figure" id="figure-reliability" alt="reliability diagram" src=move || api::figure_url(id, "reliability.svg", &FigureQuery { test_set: None, csf: Some(csf.get()) })/>
                            {d.report.iter().map(|(test_set, csfs)| view! {
                                <h3>{test_set.clone()}</h3>
                                <table>
                                    <thead><tr><th>"CSF"</th>{HEADLINE.iter().map(|m| view! { <th>{*m}</th> }).collect_view()}</tr></thead>
                                    <tbody>{csfs.iter().map(|(csf, row)| view! {
                                        <tr><td>{csf.clone()}</td>
                                        {HEADLINE.iter().map(|m| {
                                            let ci = row.get(&format!("{m}_ci95_low")).copied().flatten().zip(row.get(&format!("{m}_ci95_high")).copied().flatten());
                                            view! { <td class="num">{fmt(row.get(*m).copied().flatten())}
                                                {ci.map(|(lo, hi)| view! { <small class="muted">{format!(" [{}, {}]", fmt(Some(lo)), fmt(Some(hi)))}</small> })}</td> }
                                        }).collect_view()}
                                        </tr>
                                    }).collect_view()}</tbody>
                                </table>
                            }).collect_view()}
                        </section>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

/// The box or lasso selection: size, accuracy, AURC, class and test-set mix; CSV / JSON export.
#[component]
pub fn SelectionPanel() -> impl IntoView {
    let StudyCtx {
        selection: rows, cols, ..
    } = context::study();
    view! {
        <div id="selection">
            {move || {
                let sel = rows.get();
                if sel.0.is_empty() {
                    return view! { <p class="muted">"Shift-drag on the plot (or pick the box or lasso tool) to select points."</p> }.into_any();
                }
                cols.with(|c| c.as_ref().map(|c| {
                    let (n, acc, aurc, classes, sets) = selection_stats(c, &sel.0);
                    let csv: String = std::iter::once("row,dataset_idx,label,predicted,score\n".to_string())
                        .chain(sel.0.iter().map(|&r| format!("{r},{},{},{},{}\n", c.dataset_idx[r], c.label[r], c.predicted[r], c.score[r])))
                        .collect();
                    let json = serde_json::to_string(&sel.0).unwrap_or_default();
                    view! {
                        <dl id="selection-stats">
                            <dt>"points"</dt><dd>{n}</dd>
                            <dt>"accuracy"</dt><dd>{format!("{acc:.3}")}</dd>
                            <dt>"failure rate"</dt><dd>{format!("{:.3}", 1.0 - acc)}</dd>
                            <dt>"AURC"</dt><dd>{aurc.map_or("—".into(), |a| format!("{a:.1}"))}</dd>
                            <dt>"classes"</dt><dd>{format!("{classes:?}")}</dd>
                            <dt>"test sets"</dt><dd>{format!("{sets:?}")}</dd>
                        </dl>
                        <a href=format!("data:text/csv;charset=utf-8,{}", js_sys::encode_uri_component(&csv)) download="selection.csv">"CSV"</a>" · "
                        <a href=format!("data:application/json;charset=utf-8,{}", js_sys::encode_uri_component(&json)) download="selection.json">"JSON"</a>
                        <SelectionGrid/>
                    }.into_any()
                })).unwrap_or_else(|| view! { <p class="muted">"Loading…"</p> }.into_any())
            }}
        </div>
    }
}

/// Thumbnails per page of the selection grid.
const GRID_PAGE: usize = 24;

/// Rows with their confidence and whether the prediction is wrong, most confident first (rows
/// without a score last, ties by row).
pub fn by_confidence(c: &Columns, rows: &[usize]) -> Vec<(usize, f32, bool)> {
    let mut out: Vec<(usize, f32, bool)> = rows
        .iter()
        .map(|&r| (r, c.score[r], c.label[r] != c.predicted[r]))
        .collect();
    let key = |s: f32| if s.is_nan() { f32::NEG_INFINITY } else { s };
    out.sort_by(|a, b| key(b.1).total_cmp(&key(a.1)).then(a.0.cmp(&b.0)));
    out
}

/// The selection as images, most confident first, each marked correct (✓) or wrong (✗); a click
/// opens the inspector. Paged.
#[component]
fn SelectionGrid() -> impl IntoView {
    let StudyCtx {
        id,
        state,
        selection,
        cols,
        layout,
        ..
    } = context::study();
    let page = RwSignal::new(0usize);
    let has_images = layout.with_value(|l| l.has_images);
    let ordered = Memo::new(move |_| {
        let sel = selection.get();
        cols.with(|c| c.as_ref().map(|c| by_confidence(c, &sel.0)).unwrap_or_default())
    });
    // A new selection opens at its first page.
    Effect::new(move |_| {
        ordered.track();
        page.set(0);
    });
    let pages = move || ordered.with(|o| o.len().div_ceil(GRID_PAGE).max(1));
    view! {
        <div id="selection-grid" class="thumbs">
            {move || {
                let p = page.get();
                ordered.with(|o| o.iter().skip(p * GRID_PAGE).take(GRID_PAGE).map(|&(row, score, wrong)| {
                    let row = row as u64;
                    let caption = format!("{} #{row} {score:.3}", if wrong { "✗" } else { "✓" });
                    view! {
                        <figure class="thumb" class:wrong=wrong data-row=row
                            on:click=move |_| state.update(|s| { s.sel = Some(row); s.panel = Panel::Inspector; })>
                            {has_images.then(|| view! { <img src=api::image_url(id, row) alt=format!("sample {row}") loading="lazy"/> })}
                            <figcaption>{caption}</figcaption>
                        </figure>
                    }
                }).collect_view())
            }}
        </div>
        <p class="pager">
            <button on:click=move |_| page.update(|p| *p = p.saturating_sub(1))>"◀"</button>
            <span id="selection-page">{move || format!(" page {} of {} ", page.get() + 1, pages())}</span>
            <button on:click=move |_| page.update(|p| *p = (*p + 1).min(pages() - 1))>"▶"</button>
        </p>
    }
}

/// A box or lasso selection's rows.
#[derive(Clone, PartialEq, Default)]
pub struct Selection(pub Vec<usize>);

/// Statistics of selected rows: size, accuracy, AURC of the CSF, class and test-set mix.
pub fn selection_stats(c: &Columns, rows: &[usize]) -> (usize, f64, Option<f64>, Vec<usize>, Vec<usize>) {
    let correct: Vec<bool> = rows.iter().map(|&r| c.label[r] == c.predicted[r]).collect();
    let acc = correct.iter().filter(|x| **x).count() as f64 / rows.len().max(1) as f64;
    let conf: Vec<f64> = rows.iter().map(|&r| f64::from(c.score[r])).collect();
    let aurc = (!rows.is_empty() && conf.iter().all(|v| v.is_finite()))
        .then(|| RiskCoverageStats::new(&conf, &correct, None, TieOrder::Input).aurc());
    let mut classes = Vec::new();
    let mut sets = Vec::new();
    for &r in rows {
        let (k, t) = (usize::from(c.label[r]), usize::from(c.dataset_idx[r]));
        if classes.len() <= k {
            classes.resize(k + 1, 0);
        }
        if sets.len() <= t {
            sets.resize(t + 1, 0);
        }
        classes[k] += 1;
        sets[t] += 1;
    }
    (rows.len(), acc, aurc, classes, sets)
}
