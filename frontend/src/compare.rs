//! The compare panel: this study's CSF against a second CSF, or against another study of the same
//! samples (another model; rows matched by sample on the server), at one working point. Each side
//! is cut at its own CSF's value at the chosen coverage of its i.i.d. set; the panel shows each
//! side's failures, silent and caught, and how many points fall under each verdict ("silent for
//! A, caught by B", …). A verdict's row frames and selects its points; the scatter colours by
//! verdict. Everything it sets lives in the view state (`vs`, `csf2`, `cov`), so a link — short
//! or long — reopens the same comparison.

use failscope_shared::analysis::compare::{Tally, Verdict};
use failscope_shared::view::camera::shown_alpha;
use failscope_shared::view::ColorMode;
use leptos::prelude::*;

use crate::api;
use crate::colors::{Paint, VERDICT};
use crate::columns::CompareKey;
use crate::context::{self, StudyCtx};
use crate::panels::Selection;
use crate::study::COMPARE_ERROR;

/// What the panel shows of a computed comparison: its counts over the points the filters leave.
#[derive(Clone, PartialEq)]
struct Shown {
    key: CompareKey,
    counts: [usize; 8],
    a: Tally,
    b: Tally,
    matched: usize,
    rows: usize,
    shown: usize,
}

fn side_row(id: &'static str, who: String, t: Tally) -> impl IntoView {
    view! {
        <tr id=id data-silent=t.silent data-caught=t.caught data-failures=t.failures>
            <td>{who}</td><td class="num">{format!("{:.4}", t.threshold)}</td>
            <td class="num">{t.failures}</td><td class="num">{t.silent}</td><td class="num">{t.caught}</td>
        </tr>
    }
}

/// Whether point `r` is shown as painted (before the colours arrive, every point is).
fn shown(paint: Option<&Paint>, r: usize) -> bool {
    paint
        .and_then(|p| p.rgba.get(4 * r + 3))
        .copied()
        .is_none_or(shown_alpha)
}

/// The panel.
#[component]
pub fn ComparePanel() -> impl IntoView {
    let StudyCtx {
        id,
        state,
        layout,
        cols,
        xy,
        selection,
        error,
        painted,
        ..
    } = context::study();
    let studies = LocalResource::new(api::studies);
    let vs = Memo::new(move |_| state.get().vs.filter(|&v| v != id));
    let own_csfs = layout.with_value(|l| l.csfs.clone());
    let own = own_csfs.clone();
    // Side B's CSFs: the other study's, or this one's.
    let csfs_b = LocalResource::new(move || {
        let own = own.clone();
        async move {
            match vs.get() {
                Some(v) => api::layout(v).await.map(|l| l.csfs),
                None => Ok(own),
            }
        }
    });
    let csf_b = Memo::new(move |_| state.get().csf_of_b().to_string());
    let summary = Memo::new(move |_| {
        cols.with(|c| {
            let c = c.as_ref()?;
            let x = c.compare.as_ref()?;
            painted.with(|p| {
                let s = x.result.summary(|r| shown(p.as_ref(), r));
                Some(Shown {
                    key: x.key.clone(),
                    counts: s.counts,
                    a: s.a,
                    b: s.b,
                    matched: x.matched,
                    rows: c.label.len(),
                    // Every row kept has one verdict.
                    shown: s.counts.iter().sum(),
                })
            })
        })
    });
    let with_value = move || {
        let s = state.get();
        match (s.vs, &s.csf_b) {
            (Some(v), _) => v.to_string(),
            (None, Some(_)) => "self".into(),
            (None, None) => String::new(),
        }
    };
    let choose = move |ev: leptos::ev::Event| {
        let v = event_target_value(&ev);
        let second = own_csfs.clone();
        state.update(|s| match v.as_str() {
            "" => {
                s.vs = None;
                s.csf_b = None;
                if s.color == ColorMode::Compare {
                    s.color = ColorMode::TestSet;
                }
            }
            "self" => {
                s.vs = None;
                let other = second.iter().find(|c| **c != s.csf).or(second.first());
                s.csf_b = other.cloned();
                s.color = ColorMode::Compare;
            }
            other => {
                if let Ok(v) = other.parse() {
                    s.vs = Some(v);
                    s.csf_b = None;
                    s.color = ColorMode::Compare;
                }
            }
        })
    };
    let name_of = move |study: i64| {
        studies
            .get()
            .and_then(|r| r.ok())
            .and_then(|l| l.into_iter().find(|s| s.id == study).map(|s| s.name))
            .unwrap_or_else(|| format!("study {study}"))
    };
    view! {
        <div id="compare">
            <p class="muted">"Which failures each side lets through at one working point: this study's CSF against a second CSF, or against another study of the same samples (matched by test set and sample id). Each side keeps the given coverage of its own i.i.d. test set."</p>
            <label>"compare with "
                <select id="compare-with" prop:value=with_value on:change=choose>
                    <option value="">"nothing"</option>
                    <option value="self">"this study, a second CSF"</option>
                    {move || studies.get().and_then(|r| r.ok()).map(|list| list.into_iter().filter(|s| s.id != id).map(|s| {
                        // The list arrives after the select's value is set: each option selects itself.
                        let value = s.id.to_string();
                        let me = value.clone();
                        view! { <option value=value prop:selected=move || with_value() == me>{format!("study {}: {}", s.id, s.name)}</option> }
                    }).collect_view())}
                </select>
            </label>
            <label>" B's CSF "
                <select id="compare-csf" prop:value=move || csf_b.get()
                    on:change=move |ev| { let v = event_target_value(&ev); state.update(|s| s.csf_b = Some(v)); }>
                    {move || csfs_b.get().map(|r| match r {
                        Ok(list) => {
                            // A CSF side B lacks (A's own, after picking another study) shows as
                            // such, so that choosing one of B's is a change.
                            let wanted = csf_b.get();
                            let missing = (!list.contains(&wanted)).then(|| view! {
                                <option value=wanted.clone() disabled=true selected=true>{format!("{wanted}: not in B")}</option>
                            });
                            let options = list.into_iter().map(|c| {
                                let me = c.clone();
                                view! { <option value=c.clone() prop:selected=move || csf_b.get() == me>{c.clone()}</option> }
                            }).collect_view();
                            view! { {missing}{options} }.into_any()
                        }
                        Err(e) => view! { <option value="">{e}</option> }.into_any(),
                    })}
                </select>
            </label>
            <label>" coverage "
                <input id="compare-coverage" type="number" min="0.05" max="1" step="0.01"
                    prop:value=move || state.get().coverage.to_string()
                    on:change=move |ev| {
                        if let Ok(c) = event_target_value(&ev).parse::<f64>() {
                            state.update(|s| s.coverage = c.clamp(0.05, 1.0));
                        }
                    }/>
            </label>
            {move || (state.with(|s| s.comparing()) && summary.with(Option::is_none)).then(|| {
                match error.get().filter(|e| e.starts_with(COMPARE_ERROR)) {
                    Some(e) => view! { <p class="error" id="compare-error">{e}</p> }.into_any(),
                    None => view! { <p class="muted" id="compare-loading">"Loading side B…"</p> }.into_any(),
                }
            })}
            {move || summary.get().map(|x| {
                let (a, b) = x.key.names();
                let here = name_of(id);
                let there = x.key.vs.map_or_else(|| here.clone(), name_of);
                let counts = x.counts;
                view! {
                    <p class="muted" id="compare-sides-note">{format!(
                        "A = {here} · {}; B = {there} · {}; at {:.0} % coverage. {} of {} points matched; counted over the {} the filters show.",
                        x.key.csf_a, x.key.csf_b, x.key.coverage * 100.0, x.matched, x.rows, x.shown
                    )}</p>
                    <table id="compare-sides"><thead><tr><th></th><th>"threshold"</th><th>"failures"</th><th>"silent"</th><th>"caught"</th></tr></thead>
                    <tbody>{side_row("compare-a", format!("A · {}", x.key.csf_a), x.a)}{side_row("compare-b", format!("B · {}", x.key.csf_b), x.b)}</tbody></table>
                    <table id="compare-verdicts"><thead><tr><th>"verdict"</th><th>"points"</th></tr></thead>
                    <tbody>{Verdict::ALL.into_iter().filter(|v| counts[*v as usize] > 0).map(|v| {
                        let [r, g, bl] = VERDICT[v as usize];
                        let pick = move |_| {
                            // Its points the filters show.
                            let rows = cols.with_untracked(|c| {
                                c.as_ref().and_then(|c| c.compare.as_ref()).map(|x| x.result.rows_of(v)).unwrap_or_default()
                            });
                            let rows: Vec<usize> = painted.with_untracked(|p| rows.into_iter().filter(|&r| shown(p.as_ref(), r)).collect());
                            let cam = xy.with_untracked(|p| p.as_ref().map(|p| state.get_untracked().cam.framing(p, &rows, 0.8)));
                            selection.set(Selection(rows));
                            state.update(|s| {
                                s.color = ColorMode::Compare;
                                if let Some(cam) = cam {
                                    s.cam = cam;
                                }
                            });
                        };
                        view! {
                            <tr class="verdict" data-verdict=v.name() data-count=counts[v as usize] on:click=pick>
                                <td><i class="swatch" style=format!("background:rgb({r},{g},{bl})")></i>{v.label(&a, &b)}</td>
                                <td class="num">{counts[v as usize]}</td>
                            </tr>
                        }
                    }).collect_view()}</tbody></table>
                    <p class="muted">"Click a verdict to frame and select its points; the scatter is coloured by verdict."</p>
                }
            })}
        </div>
    }
}
