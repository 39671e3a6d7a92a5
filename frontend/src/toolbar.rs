//! The latent view's toolbar: everything that changes the view state (layout, colour, CSF,
//! filters — the test sets' in [`crate::filters`] — and marker style), the drag tool, and the share
//! buttons (copied link, short link).

use failscope_shared::api::jobs::MAX_NEIGHBOURS;
use failscope_shared::api::Layout;
use failscope_shared::view::{ColorMode, ViewState};
use leptos::prelude::*;

use crate::api;
use crate::context::{self, StudyCtx};

/// What a plain drag on the scatter does (shift-drag always selects a box).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// Pan (2-D) or orbit (3-D).
    Move,
    /// Select the points inside a rectangle.
    Box,
    /// Select the points inside a free-hand outline.
    Lasso,
}

/// The view's controls: colour mode, CSF, 3-D, filters, shapes, marker style, drag tool, links.
#[component]
pub fn Toolbar() -> impl IntoView {
    let StudyCtx {
        state, layout, tool, ..
    } = context::study();
    let layout = layout.get_value();
    let meta = layout.meta.clone();
    let csfs = layout.csfs.clone();
    let classes = layout.classes.clone();
    let share = RwSignal::new(String::new());
    let short = RwSignal::new(String::new());
    let href = move || {
        let origin = window().location().origin().unwrap_or_default();
        format!("{origin}/?{}", state.get().to_query())
    };
    // Out-of-range numbers are clamped to what UMAP takes (the API would refuse them).
    let set_neighbours = move |ev: leptos::ev::Event| {
        if let Ok(v) = event_target_value(&ev).parse::<usize>() {
            state.update(|s| s.neighbours = v.clamp(2, MAX_NEIGHBOURS));
        }
    };
    let set_min_dist = move |ev: leptos::ev::Event| {
        if let Ok(v) = event_target_value(&ev).parse::<f64>() {
            state.update(|s| s.min_dist = v.clamp(0.0, 0.99));
        }
    };
    view! {
        <div class="toolbar">
            <label>"Colour "
                <select id="color-mode" on:change=move |ev| {
                    let v = event_target_value(&ev);
                    if let Some(c) = ColorMode::parse(&v) { state.update(|s| s.color = c); }
                } prop:value=move || state.get().color.name()>
                    <option value="testset">"test set (iid vs shifts)"</option>
                    <option value="confusion">"class confusion"</option>
                    <option value="confidence">"confidence"</option>
                    <option value="cluster">"cluster"</option>
                    <option value="compare">"comparison verdict"</option>
                    {meta.iter().map(|k| view! { <option value=format!("meta:{k}")>{k.clone()}</option> }).collect_view()}
                </select>
            </label>
            <label>" CSF "
                <select id="csf" on:change=move |ev| { let v = event_target_value(&ev); state.update(|s| s.csf = v); }
                    prop:value=move || state.get().csf>
                    {csfs.iter().map(|c| view! { <option value=c.clone()>{c.clone()}</option> }).collect_view()}
                </select>
            </label>
            <label>" layout "
                <select id="layout" prop:value=move || state.get().layout.name() on:change=move |ev| {
                    if let Some(l) = Layout::from_name(&event_target_value(&ev)) {
                        state.update(|s| { s.layout = l; s.cam = Default::default(); });
                    }
                }>
                    <option value="tsne">"t-SNE"</option>
                    <option value="umap">"UMAP"</option>
                </select>
            </label>
            <span class="umap-params" class:hidden=move || state.get().layout != Layout::Umap
                title="UMAP: neighbours per point (itself included) and the minimum distance between points">
                <label>" neighbours "<input id="umap-nn" type="number" min="2" max="200" step="1"
                    prop:value=move || state.get().neighbours.to_string()
                    on:change=set_neighbours/></label>
                <label>" min dist "<input id="umap-mindist" type="number" min="0" max="0.99" step="0.05"
                    prop:value=move || state.get().min_dist.to_string()
                    on:change=set_min_dist/></label>
            </span>
            <label><input type="checkbox" id="three-d" prop:checked=move || state.get().dims == 3
                on:change=move |_| state.update(ViewState::toggle_dims)/>" 3-D (drag to orbit)"</label>
            <label><input type="checkbox" id="failures-only" prop:checked=move || state.get().failures_only
                on:change=move |_| state.update(|s| s.failures_only = !s.failures_only)/>" failures only"</label>
            <label><input type="checkbox" id="silent-only" prop:checked=move || state.get().silent_only
                on:change=move |_| state.update(|s| s.silent_only = !s.silent_only)/>" silent failures only"</label>
            <label title="points the filters leave out stay visible in grey (g)"><input type="checkbox" id="ghost" prop:checked=move || state.get().ghost
                on:change=move |_| state.update(|s| s.ghost = !s.ghost)/>" filtered-out points in grey"</label>
            <label title="contours of the silent failures' density (c; 2-D)"><input type="checkbox" id="contours" prop:checked=move || state.get().contours
                on:change=move |_| state.update(|s| s.contours = !s.contours)/>" silent-failure contours"</label>
            <label><input type="checkbox" id="class-shapes" prop:checked=move || state.get().class_shapes
                on:change=move |_| state.update(|s| s.class_shapes = !s.class_shapes)/>" class as shape"</label>
            <span class="tools" title="what dragging on the plot does (shift-drag always selects a box)">" drag: "
                {[(Tool::Move, "move", "pan / orbit"), (Tool::Box, "box", "box select"), (Tool::Lasso, "lasso", "lasso select")].into_iter().map(|(t, id, label)| view! {
                    <button id=format!("tool-{id}") class:active=move || tool.get() == t on:click=move |_| tool.set(t)>{label}</button>
                }).collect_view()}
            </span>
            <label>" size "<input type="range" min="1" max="16" step="1" prop:value=move || state.get().size.to_string()
                on:input=move |ev| if let Ok(v) = event_target_value(&ev).parse() { state.update(|s| s.size = v) }/></label>
            <label>" opacity "<input type="range" min="0.1" max="1" step="0.05" prop:value=move || state.get().opacity.to_string()
                on:input=move |ev| if let Ok(v) = event_target_value(&ev).parse() { state.update(|s| s.opacity = v) }/></label>
            <crate::filters::ShiftFilters/>
            <span class="sets classes">
                {classes.iter().enumerate().map(|(k, name)| {
                    let k = k as i64;
                    view! {
                        <label class="class">
                            <input type="checkbox" prop:checked=move || !state.get().hide_classes.contains(&k)
                                on:change=move |_| state.update(|s| {
                                    if let Some(p) = s.hide_classes.iter().position(|x| *x == k) { s.hide_classes.remove(p); } else { s.hide_classes.push(k); s.hide_classes.sort(); }
                                })/>
                            {name.clone()}
                        </label>
                    }
                }).collect_view()}
            </span>
            <button id="copy-link" on:click=move |_| {
                let url = href();
                share.set(url.clone());
                let _ = window().navigator().clipboard().write_text(&url);
            }>"Copy link"</button>
            <button id="short-link" class:hidden=move || !context::may_change()
                title="a short link to this view (viewers cannot create them)" on:click=move |_| {
                let q = state.get_untracked().to_query();
                leptos::task::spawn_local(async move {
                    let r = api::create_link(q).await;
                    let origin = window().location().origin().unwrap_or_default();
                    short.set(match r { Ok(l) => api::link_url(&origin, &l), Err(e) => format!("error: {e}") });
                });
            }>"Short link"</button>
            <input id="share-url" readonly prop:value=move || share.get() class:hidden=move || share.get().is_empty()/>
            <input id="short-url" readonly prop:value=move || short.get() class:hidden=move || short.get().is_empty()/>
        </div>
    }
}
