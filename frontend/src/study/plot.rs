//! The scatter itself: the WebGL2 canvas (upload when positions or colours change, draw when they
//! or the camera do), the pointer (drag to pan or orbit, wheel to zoom about the cursor, click to
//! inspect, box and lasso selection, hover thumbnail) and the overlays drawn over the canvas. The
//! geometry is `failscope_shared::view::camera`'s; this module only wires it to the DOM.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use failscope_shared::view::camera::{self, Region};
use failscope_shared::view::Panel;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::api;
use crate::colors::Paint;
use crate::context::{self, StudyCtx};
use crate::panels::Selection;
use crate::scatter::{Detail, Scatter};
use crate::toolbar::Tool;

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
/// The scatter's background in the dark theme (the CSS `--card` of `[data-theme=dark]`).
const DARK_BACKGROUND: [f32; 3] = [0.118, 0.129, 0.165];
/// How near (canvas pixels) the pointer must be to pick a point.
const PICK_PIXELS: f64 = 8.0;

/// Keeps the GPU buffers in step with the positions and paint, and draws on every change of them
/// or of the camera. At 1M points an upload is 12 MB, so panning only redraws.
fn use_gl(ctx: StudyCtx, canvas_ref: NodeRef<leptos::html::Canvas>, moving: RwSignal<bool>, stats: FrameStats) {
    let StudyCtx {
        state,
        xy,
        painted,
        error,
        resized,
        ..
    } = ctx;
    let dark = context::theme().0;
    let gl: Rc<RefCell<Option<Scatter>>> = Rc::new(RefCell::new(None));
    let uploaded = RwSignal::new(0u64);
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
                stats.drawn.set(0);
                uploaded.update(|v| *v += 1);
                Some(generation)
            })
        })
    });
    // The camera and marker size alone: a click that selects a point or opens a panel changes the
    // view state but not the picture (a full frame of a million points costs SwiftShader ~0.5 s).
    let view = Memo::new(move |_| state.with(|s| (s.cam, s.size)));
    Effect::new(move |_| {
        let version = uploaded.get();
        let (cam, size) = view.get();
        resized.track();
        let background = if dark.get() { DARK_BACKGROUND } else { [1.0; 3] };
        let Some(canvas) = canvas_ref.get() else { return };
        let mut g = gl.borrow_mut();
        let Some(sc) = g.as_mut().filter(|_| version > 0) else {
            return;
        };
        sc.set_background(background);
        let dpr = window().device_pixel_ratio();
        let (w, h) = (f64::from(canvas.client_width()), f64::from(canvas.client_height()));
        if canvas.width() != (w * dpr) as u32 || canvas.height() != (h * dpr) as u32 {
            canvas.set_width((w * dpr) as u32);
            canvas.set_height((h * dpr) as u32);
        }
        let now = || window().performance().map(|p| p.now()).unwrap_or(0.0);
        let t0 = now();
        let detail = if moving.get() { Detail::Moving } else { Detail::Full };
        sc.draw(cam, size, w * dpr, h * dpr, detail);
        let t1 = now();
        stats.frame_ms.set(t1 - t0);
        if stats.first_draw_ms.get_untracked() == 0.0 {
            stats.first_draw_ms.set(t1);
        }
        stats.drawn.set(sc.points());
    });
}

/// Bumps `resized` whenever the canvas's box changes size (the window, the rail, the panel, or
/// the page's layout settling), so the scatter redraws at its new size.
fn watch_size(canvas_ref: NodeRef<leptos::html::Canvas>, resized: RwSignal<u32>) {
    let observer = StoredValue::new_local(None::<web_sys::ResizeObserver>);
    Effect::new(move |_| {
        let Some(canvas) = canvas_ref.get() else { return };
        if observer.with_value(Option::is_some) {
            return;
        }
        let callback = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || resized.update(|v| *v += 1));
        if let Ok(o) = web_sys::ResizeObserver::new(callback.as_ref().unchecked_ref()) {
            o.observe(&canvas);
            observer.set_value(Some(o));
        }
        // The observer calls it for as long as the page lives; disconnected on cleanup.
        callback.forget();
    });
    on_cleanup(move || {
        observer.update_value(|o| {
            if let Some(o) = o.take() {
                o.disconnect();
            }
        });
    });
}

/// What the benchmarks and browser tests read off the canvas's `data-` attributes.
#[derive(Clone, Copy)]
struct FrameStats {
    /// Points in the last frame.
    drawn: RwSignal<usize>,
    /// Milliseconds the last frame took.
    frame_ms: RwSignal<f64>,
    /// Milliseconds from navigation start to the first drawn frame.
    first_draw_ms: RwSignal<f64>,
}

/// The canvas with its pointer handling and overlays.
#[component]
pub fn Plot() -> impl IntoView {
    let ctx = context::study();
    let StudyCtx {
        id,
        state,
        xy,
        live,
        painted,
        selection,
        tool,
        layout,
        ..
    } = ctx;
    let canvas_ref = NodeRef::<leptos::html::Canvas>::new();
    let moving = ctx.moving;
    let stats = FrameStats {
        drawn: RwSignal::new(0),
        frame_ms: RwSignal::new(0.0),
        first_draw_ms: RwSignal::new(0.0),
    };
    use_gl(ctx, canvas_ref, moving, stats);
    watch_size(canvas_ref, ctx.resized);

    let hover = RwSignal::new(None::<(usize, f64, f64)>);
    let box_rect = RwSignal::new(None::<(f64, f64, f64, f64)>);
    let lasso = RwSignal::new(Vec::<(f64, f64)>::new());
    let drag = Rc::new(RefCell::new(None::<Drag>));
    let size_of = move || {
        canvas_ref.get().map_or((1.0, 1.0), |c| {
            (f64::from(c.client_width()), f64::from(c.client_height()))
        })
    };
    // The visible point under canvas pixel (x, y).
    let pick = move |x: f64, y: f64| -> Option<usize> {
        let cam = state.get_untracked().cam;
        xy.with_untracked(|p| {
            painted.with_untracked(|c| match (p, c) {
                (Some(p), Some(Paint { rgba, .. })) => camera::pick(&cam, p, rgba, (x, y), size_of(), PICK_PIXELS),
                _ => None,
            })
        })
    };
    // Selects the visible points inside `region` and opens the selection panel.
    let select = move |region: Region| {
        let cam = state.get_untracked().cam;
        let rows = xy.with_untracked(|p| {
            painted.with_untracked(|c| match (p, c) {
                (Some(p), Some(Paint { rgba, .. })) => camera::select(&cam, p, rgba, size_of(), &region),
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
                    let (ax, ay) = cam.unproject(lx, ly, w, h);
                    let (bx, by) = cam.unproject(x, y, w, h);
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
        hover.set(pick(x, y).map(|i| (i, x, y)));
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
        let click = !far && (x - x0).abs() + (y - y0).abs() < 4.0;
        match kind {
            _ if click => {
                box_rect.set(None);
                lasso.set(Vec::new());
                if let Some(i) = pick(x, y) {
                    state.update(|s| {
                        s.sel = Some(i as u64);
                        s.panel = Panel::Inspector;
                    });
                }
            }
            Tool::Box => {
                box_rect.set(None);
                select(Region::Box((x0, y0), (x, y)));
            }
            Tool::Lasso => {
                let mut outline = lasso.get_untracked();
                outline.push((x, y));
                lasso.set(Vec::new());
                select(Region::Lasso(outline));
            }
            Tool::Move => {}
        }
    };
    // Zooming moves the kept frame; the full redraw follows once the wheel rests.
    let wheel_steps = Rc::new(Cell::new(0u64));
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
        let factor = if ev.delta_y() < 0.0 { 1.2 } else { 1.0 / 1.2 };
        state.update(|s| s.cam.zoom_at(x, y, w, h, factor));
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
                    .map(|p| s.cam.pixel(p, r as usize, w, h))
            })
        })
    };
    let has_images = layout.with_value(|l| l.has_images);
    view! {
        <canvas id="scatter" node_ref=canvas_ref data-drawn=move || stats.drawn.get().to_string()
            data-live=move || live.get().to_string()
            data-frame-ms=move || format!("{:.2}", stats.frame_ms.get())
            data-first-draw-ms=move || format!("{:.1}", stats.first_draw_ms.get())
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
                {has_images.then(|| view! { <img src=api::image_url(id, i as u64) alt="sample"/> })}
                <span>{format!("#{i}")}</span>
            </div>
        })}
    }
}
