//! Contours of the silent failures' density over a 2-D layout (`contours=1`): the grid density
//! of `failscope_shared::analysis::regions` (the one the hotspot regions come from), cut at four
//! levels by marching squares, drawn as one SVG path per level in layout coordinates and moved
//! with the camera by an SVG transform — panning never recomputes them, and while the view moves
//! the drawn layer is moved by the compositor instead of redrawn.

use failscope_shared::analysis::regions::{self, DEFAULT_BANDWIDTH, DEFAULT_GRID};
use failscope_shared::view::camera::Camera;
use leptos::prelude::*;

use crate::context::{self, StudyCtx};

/// The levels, as shares of the densest cell's smoothed silent failures.
const LEVELS: [f64; 4] = [0.1, 0.25, 0.5, 0.75];

/// One SVG path (`M x y L x y …`) per level, in layout coordinates.
fn paths(xy: &[f32], silent: &[bool]) -> Vec<String> {
    let plane: Vec<f32> = xy.chunks_exact(3).flat_map(|p| [p[0], p[1]]).collect();
    let grid = regions::density_grid(&plane, 2, Some(silent), DEFAULT_GRID, DEFAULT_BANDWIDTH);
    let peak = grid.values.iter().copied().fold(0.0, f64::max);
    if peak <= 0.0 {
        return Vec::new();
    }
    LEVELS
        .iter()
        .map(|share| {
            let mut d = String::new();
            for [x0, y0, x1, y1] in regions::contour_segments(&grid, share * peak) {
                d.push_str(&format!("M{x0:.4} {y0:.4}L{x1:.4} {y1:.4}"));
            }
            d
        })
        .collect()
}

/// The contour overlay over the scatter.
#[component]
pub fn Contours() -> impl IntoView {
    let StudyCtx {
        state,
        xy,
        cols,
        threshold,
        resized,
        moving,
        ..
    } = context::study();
    let wanted = Memo::new(move |_| {
        let s = state.get();
        s.contours && s.dims == 2
    });
    let csf_paths = Memo::new(move |_| {
        if !wanted.get() {
            return Vec::new();
        }
        let t = threshold.get();
        xy.with(|p| {
            cols.with(|c| match (p, c) {
                (Some(p), Some(c)) if p.len() / 3 == c.label.len() => {
                    let silent: Vec<bool> = (0..c.label.len()).map(|i| c.is_silent(i, t)).collect();
                    paths(p, &silent)
                }
                _ => Vec::new(),
            })
        })
    });
    // The camera the paths were last drawn for: the current one, except while the view moves —
    // then the drawn SVG is moved and scaled as one layer by the compositor (a CSS transform on
    // the `svg`) instead of being redrawn every frame; at a million points the contours have
    // enough segments to cost a frame of their own.
    let cam_now = Memo::new(move |_| state.with(|s| s.cam));
    let drawn_cam = Memo::new(move |prev: Option<&Camera>| match prev {
        Some(p) if moving.get() => *p,
        _ => cam_now.get(),
    });
    // Read from the page once per resize, not twice per frame of a drag.
    let size = Memo::new(move |_| {
        resized.track();
        document().get_element_by_id("scatter").map_or((1.0, 1.0), |c| {
            (f64::from(c.client_width()), f64::from(c.client_height()))
        })
    });
    let transform = move || {
        let (w, h) = size.get();
        let [a, b, c, d, e, f] = drawn_cam.get().svg_matrix(w, h);
        format!("matrix({a} {b} {c} {d} {e} {f})")
    };
    let moved = move || {
        let (w, h) = size.get();
        let (from, to) = (drawn_cam.get().svg_matrix(w, h), cam_now.get().svg_matrix(w, h));
        (from != to).then(|| {
            // Both maps scale each axis and translate (no rotation in 2-D): pixel p drawn at
            // `from` belongs at `to`'s sx·p + tx.
            let (sx, sy) = (to[0] / from[0], to[3] / from[3]);
            let (tx, ty) = (to[4] - from[4] * sx, to[5] - from[5] * sy);
            format!("transform-origin: 0 0; transform: matrix({sx}, 0, 0, {sy}, {tx}, {ty})")
        })
    };
    move || {
        let paths = csf_paths.get();
        (!paths.is_empty()).then(|| {
            let levels = paths.iter().filter(|p| !p.is_empty()).count();
            view! {
                <svg class="contours" id="contour-lines" data-levels=levels.to_string() style=moved>
                    <g transform=transform>
                        {paths.into_iter().enumerate().map(|(k, d)| view! {
                            <path d=d class=format!("level level-{k}") vector-effect="non-scaling-stroke"/>
                        }).collect_view()}
                    </g>
                </svg>
            }
        })
    }
}
