//! One study's latent view: the toolbar, the scatter with its job progress, error line and
//! legend, and the side panels. `StudyView` creates the study's signals, starts the data hooks
//! ([`data`]) and shares everything through a [`StudyCtx`] context; the scatter is [`plot`].

mod data;
mod plot;

use failscope_shared::api::StudyLayout;
use failscope_shared::view::Panel;
use leptos::prelude::*;

use crate::colors::Legend as LegendEntry;
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
    let progress = RwSignal::new(Some(("starting".to_string(), 0.0)));
    let error = RwSignal::new(None);
    data::use_columns(id, state, cols, error);
    data::use_embedding(id, &layout, state, xy, progress, error);
    data::use_colouring_columns(id, state, cols, progress, error);
    let painted = data::use_paint(&layout, state, cols);
    provide_context(StudyCtx {
        id,
        state,
        layout: StoredValue::new(layout),
        cols,
        xy,
        progress,
        error,
        selection: RwSignal::new(Selection::default()),
        painted,
        tool: RwSignal::new(Tool::Move),
    });
    view! {
        <section class="study-view" data-study=id>
            <Toolbar/>
            <div class="split">
                <div class="plot">
                    <JobProgress/>
                    {move || error.get().map(|e| view! { <p class="error" id="view-error">{e}</p> })}
                    <plot::Plot/>
                    <Legend/>
                </div>
                <Panels/>
            </div>
            <pre id="view-state" hidden>{move || state.get().to_query()}</pre>
        </section>
    }
}

/// A running job's stage and progress bar.
#[component]
fn JobProgress() -> impl IntoView {
    let progress = context::study().progress;
    move || {
        progress.get().map(|(stage, f)| {
            view! {
                <div id="job-progress"><span>{format!("{stage} {:.0} %", f * 100.0)}</span>
                <progress max="1" value=f></progress></div>
            }
        })
    }
}

/// What the colours (and, with class shapes, the markers) mean.
#[component]
fn Legend() -> impl IntoView {
    let painted = context::study().painted;
    let entries = move || painted.with(|p| p.as_ref().map(|p| p.legend.clone()).unwrap_or_default());
    view! {
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
                {[Panel::Inspector, Panel::Failures, Panel::Clusters, Panel::Benchmark, Panel::Selection].into_iter().map(|p| view! {
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
            }}
        </aside>
    }
}
