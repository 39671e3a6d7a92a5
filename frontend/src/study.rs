//! One study's latent view: the WebGL2 scatter with its toolbar, legend, hover thumbnails, click
//! to inspect, box and lasso selection, and the side panels.

use std::cell::RefCell;
use std::rc::Rc;

use failscope_shared::analysis::rc::coverage_threshold;
use failscope_shared::api::StudyLayout;
use failscope_shared::view::{inside_polygon, ColorMode, Panel, ViewState};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::api;
use crate::api::{load_columns, percent_decode};
use crate::colors::{self, Columns, Legend, Paint};
use crate::panels::{Benchmark, Clusters, Failures, Inspector, Selection, SelectionPanel};
use crate::scatter::{self, Detail, Scatter};
use crate::toolbar::{Tool, Toolbar};

/// A drag in progress: where it started, the last pointer position, what it does, and whether it
/// ever went further than a click's jitter (a closed lasso ends where it started).
struct Drag {
    start: (f64, f64),
    last: (f64, f64),
    kind: Tool,
    far: bool,
}

/// Milliseconds after the last wheel step before the full redraw.
const SETTLE_MS: i32 = 200;

/// The latent view of study `id`.
#[component]
pub fn StudyView(state: RwSignal<ViewState>, layout: StudyLayout) -> impl IntoView {
    let id = state.get_untracked().study.unwrap_or(0);
    let canvas_ref = NodeRef::<leptos::html::Canvas>::new();
    let cols = RwSignal::new(None::<Columns>);
    let xy = RwSignal::new(None::<Vec<f32>>);
    let progress = RwSignal::new(Some(("starting".to_string(), 0.0)));
    let error = RwSignal::new(None::<String>);
    let hover = RwSignal::new(None::<(usize, f64, f64)>);
    let selection = RwSignal::new(Selection::default());
    let drawn = RwSignal::new(0usize);
    let frame_ms = RwSignal::new(0.0f64);
    // Milliseconds from navigation start to the first drawn frame (the load benchmark reads it).
    let first_draw_ms = RwSignal::new(0.0f64);
    let gl: Rc<RefCell<Option<Scatter>>> = Rc::new(RefCell::new(None));

    // Columns (again when the CSF changes).
    let csf = Memo::new(move |_| state.get().csf);
    Effect::new(move |_| {
        let csf = csf.get();
        leptos::task::spawn_local(async move {
            match load_columns(id, &csf).await {
                Ok(c) => cols.update(|old| {
                    let keep = old.take();
                    *old = Some(Columns {
                        cluster: keep.as_ref().and_then(|k| k.cluster.clone()),
                        meta: keep.and_then(|k| k.meta),
                        ..c
                    })
                }),
                Err(e) => error.set(Some(format!("cannot load the study's columns: {e}"))),
            }
        });
    });
    // The joint embedding (2-D or 3-D): a background job with a live progress bar, then binary
    // coordinates.
    let dims = Memo::new(move |_| state.get().dims);
    let has_features = layout.has_features;
    Effect::new(move |_| {
        let dims = dims.get();
        if !has_features {
            progress.set(None);
            error.set(Some(
                "this study has no features, so it has no latent view (its benchmark is in the Benchmark panel)".into(),
            ));
            return;
        }
        xy.set(None);
        progress.set(Some(("starting".into(), 0.0)));
        leptos::task::spawn_local(async move {
            let r = async {
                let params = serde_json::json!({ "dims": dims });
                let job = api::run_job(id, "embeddings", params, |s, f| progress.set(Some((s, f)))).await?;
                let (bytes, shape) = api::get_bytes(&format!("/api/jobs/{job}/result"), "x-failscope-shape").await?;
                let dims = shape
                    .and_then(|s| s.split(',').nth(1).and_then(|d| d.parse().ok()))
                    .unwrap_or(2usize);
                Ok::<_, String>(scatter::normalise(&api::f32s(&bytes), dims))
            }
            .await;
            progress.set(None);
            match r {
                Ok(p) => xy.set(Some(p)),
                Err(e) => error.set(Some(format!("embedding failed: {e}"))),
            }
        });
    });
    // Cluster or metadata colourings fetch what they need once.
    Effect::new(move |_| {
        let color = state.get().color;
        let have = cols.with(|c| c.as_ref().map(|c| (c.cluster.is_some(), c.meta.clone())));
        let Some((has_cluster, meta)) = have else { return };
        match color {
            ColorMode::Cluster if !has_cluster => leptos::task::spawn_local(async move {
                let r = async {
                    let job = api::run_job(id, "clusterings", serde_json::json!({}), |s, f| {
                        progress.set(Some((s, f)))
                    })
                    .await?;
                    api::get_json::<failscope_shared::api::Clustering>(&format!("/api/jobs/{job}/result")).await
                }
                .await;
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
            ColorMode::Meta(key)
                if meta
                    .as_ref()
                    .is_none_or(|m| m.1.first().map(String::as_str) != Some(key.as_str())) =>
            {
                leptos::task::spawn_local(async move {
                    match api::get_bytes(
                        &format!("/api/studies/{id}/columns/meta:{key}"),
                        "x-failscope-categories",
                    )
                    .await
                    {
                        Ok((b, cats)) => {
                            let mut cats: Vec<String> = cats
                                .and_then(|c| serde_json::from_str(&percent_decode(&c)).ok())
                                .unwrap_or_default();
                            // Remember which key these codes are for (first entry), after "(none)".
                            cats[0] = key.clone();
                            cols.update(|x| {
                                if let Some(x) = x {
                                    x.meta = Some((api::u16s(&b), cats))
                                }
                            });
                        }
                        Err(e) => error.set(Some(e)),
                    }
                });
            }
            _ => {}
        }
    });

    let threshold = Memo::new(move |_| {
        cols.with(|c| {
            c.as_ref().map_or(f64::INFINITY, |c| {
                let idx: Vec<i64> = c.dataset_idx.iter().map(|v| i64::from(*v)).collect();
                coverage_threshold(&c.score, &idx, 0.95)
            })
        })
    });
    let sets = layout.test_sets.clone();
    let classes = layout.classes.clone();
    // Only the fields that change colours: panning or selecting must not recolour a million points.
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
    let painted = Memo::new(move |_| {
        let s = paint_key.get();
        let t = threshold.get();
        cols.with(|c| c.as_ref().map(|c| colors::colors(c, &s, t, &sets, &classes)))
    });

    // Upload positions and colours when they change; draw when they or the camera change. At 1M
    // points an upload is 12 MB, so panning only redraws.
    let uploaded = RwSignal::new(0u64);
    let moving = RwSignal::new(false);
    let gl_up = gl.clone();
    // Counts the embeddings loaded, so a recolour re-uploads colours only, not 12 MB of positions.
    let xy_generation = Memo::new(move |prev: Option<&u64>| {
        xy.track();
        prev.map_or(0, |g| g + 1)
    });
    // Answers the generation of the positions on the GPU.
    Effect::new(move |on_gpu: Option<Option<u64>>| {
        let on_gpu = on_gpu.flatten();
        let generation = xy_generation.get();
        let Some(canvas) = canvas_ref.get() else {
            return on_gpu;
        };
        xy.with(|p| {
            painted.with(|c| {
                let (Some(p), Some(Paint { rgba, shapes, .. })) = (p, c) else {
                    return on_gpu;
                };
                if rgba.len() / 4 != p.len() / 3 {
                    return on_gpu;
                }
                let mut g = gl_up.borrow_mut();
                if g.is_none() {
                    match Scatter::new(&canvas) {
                        Ok(sc) => *g = Some(sc),
                        Err(e) => {
                            error.set(Some(e));
                            return on_gpu;
                        }
                    }
                }
                let Some(sc) = g.as_mut() else {
                    return on_gpu;
                };
                if on_gpu != Some(generation) {
                    sc.set_positions(p);
                }
                sc.set_colors(rgba, shapes);
                drawn.set(0);
                uploaded.update(|v| *v += 1);
                Some(generation)
            })
        })
    });
    let gl_draw = gl.clone();
    Effect::new(move |_| {
        let version = uploaded.get();
        let (cam, size) = {
            let s = state.get();
            (s.cam, s.size)
        };
        let Some(canvas) = canvas_ref.get() else { return };
        let mut g = gl_draw.borrow_mut();
        let Some(sc) = g.as_mut().filter(|_| version > 0) else {
            return;
        };
        let dpr = window().device_pixel_ratio();
        let (w, h) = (f64::from(canvas.client_width()), f64::from(canvas.client_height()));
        if canvas.width() != (w * dpr) as u32 || canvas.height() != (h * dpr) as u32 {
            canvas.set_width((w * dpr) as u32);
            canvas.set_height((h * dpr) as u32);
        }
        let t0 = window().performance().map(|p| p.now()).unwrap_or(0.0);
        let detail = if moving.get() { Detail::Moving } else { Detail::Full };
        sc.draw(cam, size, w * dpr, h * dpr, detail);
        let t1 = window().performance().map(|p| p.now()).unwrap_or(0.0);
        frame_ms.set(t1 - t0);
        if first_draw_ms.get_untracked() == 0.0 {
            first_draw_ms.set(t1);
        }
        drawn.set(sc.points());
    });

    // Mouse: drag to pan (or with the box/lasso tool, or shift, to select), wheel to zoom, click to
    // inspect, hover for a thumbnail.
    let tool = RwSignal::new(Tool::Move);
    let drag = Rc::new(RefCell::new(None::<Drag>));
    let size_of = move || {
        canvas_ref.get().map_or((1.0, 1.0), |c| {
            (f64::from(c.client_width()), f64::from(c.client_height()))
        })
    };
    let box_rect = RwSignal::new(None::<(f64, f64, f64, f64)>);
    let lasso = RwSignal::new(Vec::<(f64, f64)>::new());
    // The visible point under canvas pixel (x, y), within 8 pixels.
    let pick = move |x: f64, y: f64, w: f64, h: f64| -> Option<usize> {
        let cam = state.get_untracked().cam;
        let (px, py) = scatter::unproject(cam, x, y, w, h);
        let radius = 8.0 / (w.min(h) as f32 / 2.0) / cam.zoom;
        xy.with_untracked(|p| {
            painted.with_untracked(|c| match (p, c) {
                (Some(p), Some(Paint { rgba, .. })) => scatter::nearest(cam, p, rgba, px, py, radius),
                _ => None,
            })
        })
    };
    // Selects the visible points whose canvas pixel passes `inside` and opens the selection panel.
    let select = move |inside: &dyn Fn(f64, f64) -> bool| {
        let cam = state.get_untracked().cam;
        let (w, h) = size_of();
        let rows: Vec<usize> = xy.with_untracked(|p| {
            painted.with_untracked(|c| match (p, c) {
                (Some(p), Some(Paint { rgba, .. })) => (0..p.len() / 3)
                    .filter(|&i| {
                        let (x, y) = scatter::project(cam, scatter::plane(cam, p, i), w, h);
                        rgba[4 * i + 3] > 0 && inside(x, y)
                    })
                    .collect(),
                _ => Vec::new(),
            })
        });
        selection.set(Selection(rows));
        state.update(|s| s.panel = Panel::Selection);
    };
    let d1 = drag.clone();
    let on_down = move |ev: leptos::ev::MouseEvent| {
        let kind = if ev.shift_key() {
            Tool::Box
        } else {
            tool.get_untracked()
        };
        let (x, y) = (f64::from(ev.offset_x()), f64::from(ev.offset_y()));
        if kind == Tool::Lasso {
            lasso.set(vec![(x, y)]);
        }
        *d1.borrow_mut() = Some(Drag {
            start: (x, y),
            last: (x, y),
            kind,
            far: false,
        });
    };
    let d2 = drag.clone();
    let on_move = move |ev: leptos::ev::MouseEvent| {
        let (x, y) = (f64::from(ev.offset_x()), f64::from(ev.offset_y()));
        let (w, h) = size_of();
        let mut d = d2.borrow_mut();
        if let Some(Drag {
            start: (x0, y0),
            last,
            kind,
            far,
        }) = d.as_mut()
        {
            let (lx, ly) = *last;
            *far |= (x - *x0).abs() + (y - *y0).abs() >= 4.0;
            // The view starts moving with the first step, so a click costs no redraw.
            if *kind == Tool::Move && !moving.get_untracked() {
                moving.set(true);
            }
            match kind {
                Tool::Box => box_rect.set(Some((x0.min(x), y0.min(y), (x - *x0).abs(), (y - *y0).abs()))),
                Tool::Lasso => {
                    if (x - lx).abs() + (y - ly).abs() < 3.0 {
                        return;
                    }
                    lasso.update(|l| l.push((x, y)));
                }
                Tool::Move if state.get_untracked().dims == 3 => {
                    let (dx, dy) = ((x - lx) as f32, (y - ly) as f32);
                    state.update(|s| {
                        s.cam.yaw += dx * 0.01;
                        s.cam.pitch = (s.cam.pitch + dy * 0.01).clamp(-1.55, 1.55);
                    });
                }
                Tool::Move => {
                    let cam = state.get_untracked().cam;
                    let (ax, ay) = scatter::unproject(cam, lx, ly, w, h);
                    let (bx, by) = scatter::unproject(cam, x, y, w, h);
                    state.update(|s| {
                        s.cam.x -= bx - ax;
                        s.cam.y -= by - ay;
                    });
                }
            }
            *last = (x, y);
            return;
        }
        drop(d);
        hover.set(pick(x, y, w, h).map(|i| (i, x, y)));
    };
    let d3 = drag.clone();
    let on_up = move |ev: leptos::ev::MouseEvent| {
        if moving.get_untracked() {
            moving.set(false);
        }
        let Some(Drag {
            start: (x0, y0),
            kind,
            far,
            ..
        }) = d3.borrow_mut().take()
        else {
            return;
        };
        let (x, y) = (f64::from(ev.offset_x()), f64::from(ev.offset_y()));
        let (w, h) = size_of();
        let click = !far && (x - x0).abs() + (y - y0).abs() < 4.0;
        match kind {
            _ if click => {
                box_rect.set(None);
                lasso.set(Vec::new());
                if let Some(i) = pick(x, y, w, h) {
                    state.update(|s| {
                        s.sel = Some(i as u64);
                        s.panel = Panel::Inspector;
                    });
                }
            }
            Tool::Box => {
                box_rect.set(None);
                let (xs, ys) = (x0.min(x)..=x0.max(x), y0.min(y)..=y0.max(y));
                select(&|px, py| xs.contains(&px) && ys.contains(&py));
            }
            Tool::Lasso => {
                let mut outline = lasso.get_untracked();
                outline.push((x, y));
                lasso.set(Vec::new());
                let (lo, hi) = outline.iter().fold(
                    ((f64::INFINITY, f64::INFINITY), (f64::NEG_INFINITY, f64::NEG_INFINITY)),
                    |(lo, hi), &(x, y)| ((lo.0.min(x), lo.1.min(y)), (hi.0.max(x), hi.1.max(y))),
                );
                // The bounding box first: most points of a large study fail it cheaply.
                select(&|px, py| {
                    (lo.0..=hi.0).contains(&px) && (lo.1..=hi.1).contains(&py) && inside_polygon(&outline, px, py)
                });
            }
            Tool::Move => {}
        }
    };
    // Zooming moves the kept frame; the full redraw follows once the wheel rests.
    let wheel_steps = Rc::new(std::cell::Cell::new(0u64));
    let on_wheel = move |ev: leptos::ev::WheelEvent| {
        ev.prevent_default();
        let step = wheel_steps.get() + 1;
        wheel_steps.set(step);
        moving.set(true);
        let steps = wheel_steps.clone();
        let settle = wasm_bindgen::closure::Closure::once_into_js(move || {
            if steps.get() == step {
                moving.set(false);
            }
        });
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(settle.unchecked_ref(), SETTLE_MS);
        let (w, h) = size_of();
        let (x, y) = (f64::from(ev.offset_x()), f64::from(ev.offset_y()));
        state.update(|s| {
            let (ax, ay) = scatter::unproject(s.cam, x, y, w, h);
            let factor = if ev.delta_y() < 0.0 { 1.2 } else { 1.0 / 1.2 };
            s.cam.zoom = (s.cam.zoom * factor).clamp(0.2, 500.0);
            let (bx, by) = scatter::unproject(s.cam, x, y, w, h);
            s.cam.x += ax - bx;
            s.cam.y += ay - by;
        });
    };
    let d4 = drag.clone();
    let on_leave = move |_| {
        if moving.get_untracked() {
            moving.set(false);
        }
        hover.set(None);
        *d4.borrow_mut() = None;
        box_rect.set(None);
        lasso.set(Vec::new());
    };

    // The selected sample's ring.
    let ring = move || {
        let s = state.get();
        let (w, h) = size_of();
        s.sel.and_then(|r| {
            xy.with(|p| {
                p.as_ref()
                    .filter(|p| (r as usize) < p.len() / 3)
                    .map(|p| scatter::project(s.cam, scatter::plane(s.cam, p, r as usize), w, h))
            })
        })
    };
    let legend = move || painted.with(|p| p.as_ref().map(|p| p.legend.clone()).unwrap_or_default());
    let tl = layout.clone();
    let tl2 = layout.test_sets.clone();
    let panel = move || state.get().panel;
    view! {
        <section class="study-view" data-study=id>
            <Toolbar state=state layout=tl tool=tool/>
            <div class="split">
                <div class="plot">
                    {move || progress.get().map(|(stage, f)| view! {
                        <div id="job-progress"><span>{format!("{stage} {:.0} %", f * 100.0)}</span>
                        <progress max="1" value=f></progress></div>
                    })}
                    {move || error.get().map(|e| view! { <p class="error" id="view-error">{e}</p> })}
                    <canvas id="scatter" node_ref=canvas_ref data-drawn=move || drawn.get().to_string()
                        data-frame-ms=move || format!("{:.2}", frame_ms.get())
                        data-first-draw-ms=move || format!("{:.1}", first_draw_ms.get())
                        on:mousedown=on_down on:mousemove=on_move on:mouseup=on_up on:wheel=on_wheel on:mouseleave=on_leave></canvas>
                    {move || lasso.with(|l| (l.len() > 1).then(|| {
                        let points: String = l.iter().map(|(x, y)| format!("{x:.0},{y:.0} ")).collect();
                        view! { <svg class="lasso"><polygon points=points/></svg> }
                    }))}
                    {move || box_rect.get().map(|(x, y, w, h)| view! {
                        <div class="box" style=format!("left:{x}px;top:{y}px;width:{w}px;height:{h}px")></div>
                    })}
                    {move || ring().map(|(x, y)| view! { <div class="ring" style=format!("left:{}px;top:{}px", x - 9.0, y - 9.0)></div> })}
                    {move || hover.get().map(|(i, x, y)| view! {
                        <div class="tooltip" style=format!("left:{}px;top:{}px", x + 14.0, y + 14.0)>
                            {layout.has_images.then(|| view! { <img src=format!("/api/studies/{id}/samples/{i}/image") alt="sample"/> })}
                            <span>{format!("#{i}")}</span>
                        </div>
                    })}
                    <ul class="legend">{move || legend().into_iter().map(|Legend { css, label, glyph }| view! {
                        <li>{match glyph {
                            Some(g) => view! { <b class="glyph" style=format!("color:{css}")>{g}</b> }.into_any(),
                            None => view! { <i style=format!("background:{css}")></i> }.into_any(),
                        }}{label}</li>
                    }).collect_view()}</ul>
                </div>
                <aside class="panel">
                    <nav class="tabs">
                        {[Panel::Inspector, Panel::Failures, Panel::Clusters, Panel::Benchmark, Panel::Selection].into_iter().map(|p| view! {
                            <button class:active=move || panel() == p id=format!("tab-{}", p.name())
                                on:click=move |_| state.update(|s| s.panel = p)>{p.name()}</button>
                        }).collect_view()}
                    </nav>
                    {move || match panel() {
                        Panel::Inspector => view! { <Inspector state=state id=id/> }.into_any(),
                        Panel::Failures => view! { <Failures state=state id=id/> }.into_any(),
                        Panel::Clusters => view! { <Clusters state=state id=id/> }.into_any(),
                        Panel::Benchmark => view! { <Benchmark id=id state=state cols=cols test_sets=tl2.clone()/> }.into_any(),
                        Panel::Selection => view! { <SelectionPanel rows=selection cols=cols/> }.into_any(),
                    }}
                </aside>
            </div>
            <pre id="view-state" hidden>{move || state.get().to_query()}</pre>
        </section>
    }
}
