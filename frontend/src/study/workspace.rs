//! The study view as a workspace filling the window: a foldable left rail (the toolbar), the
//! scatter, a splitter that resizes the right panel, keyboard shortcuts and their `?` overlay.
//! Whatever changes the scatter's size bumps `StudyCtx::resized`, so the canvas redraws at its
//! new size.

use failscope_shared::view::{Panel, ViewState};
use leptos::ev;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::context::{self, StudyCtx};
use crate::toolbar::Tool;

/// The right panel's width bounds, in CSS pixels.
const PANEL_MIN: f64 = 280.0;
const PANEL_MAX: f64 = 960.0;

/// The keyboard shortcuts, as the overlay lists them.
pub const SHORTCUTS: [(&str, &str); 15] = [
    ("?", "show or hide these shortcuts"),
    ("[", "fold or unfold the left rail"),
    ("f", "failures only"),
    ("s", "silent failures only"),
    ("g", "filtered-out points in grey"),
    ("c", "silent-failure contours (2-D)"),
    ("3", "3-D or 2-D"),
    ("m / b / l", "drag to move, box-select or lasso"),
    ("i", "inspector panel"),
    ("h", "hotspots panel"),
    ("e", "selection panel"),
    ("d", "compare panel"),
    ("t", "light or dark theme"),
    ("0", "reset the camera"),
    ("Esc", "close this, or clear the selection"),
];

/// The rail's and panel's state, shared by the view and its shortcuts.
#[derive(Clone, Copy)]
pub struct Frame {
    /// Whether the left rail is open.
    pub rail: RwSignal<bool>,
    /// The right panel's width in CSS pixels.
    pub panel_width: RwSignal<f64>,
    /// Whether the shortcuts overlay is shown (the page's [`context::Help`], closed when a study
    /// opens).
    pub help: RwSignal<bool>,
}

impl Frame {
    /// Open rail, a panel of 30 % of the window (320 to 460 pixels), no overlay; the scatter
    /// redraws when they change and when the window is resized.
    pub fn new(resized: RwSignal<u32>) -> Self {
        let width = window().inner_width().ok().and_then(|w| w.as_f64()).unwrap_or(1280.0);
        let f = Self {
            rail: RwSignal::new(true),
            panel_width: RwSignal::new((0.3 * width).clamp(320.0, 460.0).round()),
            help: context::help().0,
        };
        f.help.set(false);
        Effect::new(move |_| {
            f.rail.track();
            f.panel_width.track();
            resized.update(|v| *v += 1);
        });
        let handle = window_event_listener(ev::resize, move |_| resized.update(|v| *v += 1));
        on_cleanup(move || handle.remove());
        f
    }
}

/// Whether a key event was typed into a form field (shortcuts leave those alone).
fn in_field(ev: &web_sys::KeyboardEvent) -> bool {
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"))
}

/// Installs the keyboard shortcuts of [`SHORTCUTS`] for as long as the view lives.
pub fn use_shortcuts(frame: Frame) {
    let StudyCtx {
        state, tool, selection, ..
    } = context::study();
    let dark = context::theme().0;
    let handle = window_event_listener(ev::keydown, move |ev| {
        if in_field(&ev) || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        let panel = |p: Panel| state.update(|s| s.panel = p);
        match ev.key().as_str() {
            "?" => frame.help.update(|h| *h = !*h),
            "[" => frame.rail.update(|r| *r = !*r),
            "f" => state.update(|s| s.failures_only = !s.failures_only),
            "s" => state.update(|s| s.silent_only = !s.silent_only),
            "g" => state.update(|s| s.ghost = !s.ghost),
            "c" => state.update(|s| s.contours = !s.contours),
            "3" => state.update(ViewState::toggle_dims),
            "m" => tool.set(Tool::Move),
            "b" => tool.set(Tool::Box),
            "l" => tool.set(Tool::Lasso),
            "i" => panel(Panel::Inspector),
            "h" => panel(Panel::Clusters),
            "e" => panel(Panel::Selection),
            "d" => panel(Panel::Compare),
            "t" => dark.update(|d| *d = !*d),
            "0" => state.update(|s| s.cam = Default::default()),
            "Escape" => {
                if frame.help.get_untracked() {
                    frame.help.set(false);
                } else {
                    selection.set(Default::default());
                }
            }
            _ => return,
        }
        ev.prevent_default();
    });
    on_cleanup(move || handle.remove());
}

/// The bar between the scatter and the panel: drag it to resize the panel.
#[component]
pub fn Splitter(frame: Frame) -> impl IntoView {
    let dragging = RwSignal::new(false);
    let down = move |ev: ev::PointerEvent| {
        if let Some(t) = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
            let _ = t.set_pointer_capture(ev.pointer_id());
        }
        dragging.set(true);
    };
    let moved = move |ev: ev::PointerEvent| {
        if dragging.get_untracked() {
            let width = window().inner_width().ok().and_then(|w| w.as_f64()).unwrap_or(1280.0);
            frame
                .panel_width
                .set((width - f64::from(ev.client_x())).clamp(PANEL_MIN, PANEL_MAX));
        }
    };
    view! {
        <div class="splitter" id="panel-splitter" title="drag to resize the panel"
            on:pointerdown=down on:pointermove=moved
            on:pointerup=move |_| dragging.set(false) on:pointercancel=move |_| dragging.set(false)></div>
    }
}

/// The shortcuts overlay (`?`).
#[component]
pub fn ShortcutsOverlay(frame: Frame) -> impl IntoView {
    view! {
        <div id="shortcuts" class="overlay" class:hidden=move || !frame.help.get()
            on:click=move |_| frame.help.set(false)>
            <div class="card">
                <h3>"Keyboard shortcuts"</h3>
                <dl>{SHORTCUTS.iter().map(|(k, what)| view! { <dt><kbd>{*k}</kbd></dt><dd>{*what}</dd> }).collect_view()}</dl>
                <p class="muted">"Press ? or Esc to close."</p>
            </div>
        </div>
    }
}
