//! One study's latent view: the toolbar in a foldable rail, the scatter with its job progress,
//! error line and legend, and the side panels ([`workspace`]: the frame, shortcuts, overlay). `StudyView` creates the study's signals, starts the data hooks
//! ([`data`]) and shares everything through a [`StudyCtx`] context; the scatter is [`plot`].

mod contours;
mod data;
mod plot;
mod workspace;

pub use data::COMPARE_ERROR;

use failscope_shared::api::StudyLayout;
use failscope_shared::view::camera::shown_alpha;
use failscope_shared::view::Panel;
use leptos::prelude::*;

use crate::colors::Legend as LegendEntry;
use crate::compare::ComparePanel;
use crate::context::{self, StudyCtx};
use crate::panels::{Benchmark, Clusters, Failures, Inspector, Selection, SelectionPanel};
use crate::toolbar::{Tool, Toolbar};

/// The latent view of the study in the view state.
#[component]
pub fn StudyView(layout: StudyLayout) -> impl IntoView {
    let state = context::view_state();
    let id = state.get_untracked().study.unwrap_or(0);
    let cols = RwSignal::new(None);
    let xy = RwSignal::new(None);
    let live = RwSignal::new(false);
    let embedding_job = RwSignal::new(None);
    let progress = RwSignal::new(Some(("starting".to_string(), 0.0)));
    let error = RwSignal::new(None);
    data::use_columns(id, state, cols, error);
    let signals = data::EmbeddingSignals {
        xy,
        live,
        job: embedding_job,
    };
    data::use_embedding(id, &layout, state, signals, progress, error);
    data::use_colouring_columns(id, state, cols, progress, error);
    data::use_comparison(id, state, cols, error);
    let (painted, threshold) = data::use_paint(&layout, state, cols);
    let resized = RwSignal::new(0u32);
    provide_context(StudyCtx {
        id,
        state,
        layout: StoredValue::new(layout),
        cols,
        xy,
        live,
        embedding_job,
        progress,
        error,
        selection: RwSignal::new(Selection::default()),
        painted,
        threshold,
        tool: RwSignal::new(Tool::Move),
        resized,
        moving: RwSignal::new(false),
    });
    let frame = workspace::Frame::new(resized);
    workspace::use_shortcuts(frame);
    view! {
        <section class="study-view" data-study=id class:rail-closed=move || !frame.rail.get()
            style=move || format!("--panel-w: {}px", frame.panel_width.get())>
            <div class="rail" id="rail"><Toolbar/></div>
            <button class="rail-toggle" id="rail-toggle" title="fold or unfold the rail ([)"
                on:click=move |_| frame.rail.update(|r| *r = !*r)>{move || if frame.rail.get() { "‹" } else { "›" }}</button>
            <div class="plot">
                <JobProgress/>
                {move || error.get().map(|e| view! { <p class="error" id="view-error">{e}</p> })}
                <plot::Plot/>
                <contours::Contours/>
                <div class="plot-foot"><Legend/></div>
            </div>
            <workspace::Splitter frame=frame/>
            <Panels/>
            <workspace::ShortcutsOverlay frame=frame/>
            <pre id="view-state" hidden>{move || state.get().to_query()}</pre>
        </section>
    }
}

/// A running job's stage and progress bar; an embedding's has a button that stops it (the points
/// stay where its last intermediate layout put them).
#[component]
fn JobProgress() -> impl IntoView {
    let StudyCtx {
        progress,
        embedding_job,
        live,
        error,
        ..
    } = context::study();
    let stop = move |_| {
        if let Some(job) = embedding_job.get_untracked() {
            job.stop(move |e| error.set(Some(e)));
            embedding_job.set(None);
            let stage = progress.get_untracked().map(|(s, _)| s).unwrap_or_default();
            progress.set(None);
            live.set(false);
            error.set(Some(format!(
                "embedding stopped during {stage}: the points are where it left them; change a setting or reload to start again"
            )));
        }
    };
    move || {
        progress.get().map(|(stage, f)| {
            view! {
                <div id="job-progress"><span>{format!("{stage} {:.0} %", f * 100.0)}</span>
                <progress max="1" value=f></progress>
                <button id="job-cancel" class:hidden=move || embedding_job.with(Option::is_none)
                    data-job=move || embedding_job.with(|j| j.as_ref().and_then(|j| j.id()).map(|id| id.to_string()))
                    on:click=stop>"stop"</button></div>
            }
        })
    }
}

/// What the colours (and, with class shapes, the markers) mean.
#[component]
fn Legend() -> impl IntoView {
    let painted = context::study().painted;
    let entries = move || painted.with(|p| p.as_ref().map(|p| p.legend.clone()).unwrap_or_default());
    // Points the filters leave (alpha > 0) of all points.
    let counts = Memo::new(move |_| {
        painted.with(|p| {
            p.as_ref().map(|p| {
                (
                    p.rgba.chunks_exact(4).filter(|c| shown_alpha(c[3])).count(),
                    p.rgba.len() / 4,
                )
            })
        })
    });
    view! {
        <p class="shown" id="shown-count" data-shown=move || counts.get().map(|c| c.0.to_string())
            class:hidden=move || counts.get().is_none()>
            {move || counts.get().map(|(shown, all)| format!("{shown} of {all} points shown"))}
        </p>
        <ul class="legend">{move || entries().into_iter().map(|LegendEntry { css, label, glyph }| view! {
            <li>{match glyph {
                Some(g) => view! { <b class="glyph" style=format!("color:{css}")>{g}</b> }.into_any(),
                None => view! { <i style=format!("background:{css}")></i> }.into_any(),
            }}{label}</li>
        }).collect_view()}</ul>
    }
}

/// The side panels behind their tabs.
#[component]
fn Panels() -> impl IntoView {
    let state = context::view_state();
    let panel = move || state.get().panel;
    view! {
        <aside class="panel">
            <nav class="tabs">
                {Panel::TABS.into_iter().map(|p| view! {
                    <button class:active=move || panel() == p id=format!("tab-{}", p.name())
                        on:click=move |_| state.update(|s| s.panel = p)>{p.name()}</button>
                }).collect_view()}
            </nav>
            {move || match panel() {
                Panel::Inspector => view! { <Inspector/> }.into_any(),
                Panel::Failures => view! { <Failures/> }.into_any(),
                Panel::Clusters => view! { <Clusters/> }.into_any(),
                Panel::Benchmark => view! { <Benchmark/> }.into_any(),
                Panel::Selection => view! { <SelectionPanel/> }.into_any(),
                Panel::Compare => view! { <ComparePanel/> }.into_any(),
            }}
        </aside>
    }
}
