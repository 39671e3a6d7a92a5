//! What components share through Leptos context rather than props: the view state (provided by
//! `App` for the whole page) and, inside one study, the [`StudyCtx`] (provided by `StudyView`).

use failscope_shared::api::StudyLayout;
use failscope_shared::view::ViewState;
use leptos::prelude::*;

use crate::colors::Paint;
use crate::columns::Columns;
use crate::panels::Selection;
use crate::toolbar::Tool;

/// The page's view state: every component reads and writes this one signal, which `App` mirrors
/// into the URL.
pub fn view_state() -> RwSignal<ViewState> {
    expect_context()
}

/// Who the page is signed in as (`GET /api/me`), provided by `App`; `None` until it answers.
#[derive(Clone, Copy)]
pub struct Me(pub LocalResource<Result<failscope_shared::api::Identity, String>>);

/// Whether the signed-in user may start jobs and create links (an analyst, or a server without
/// access control). False until `/api/me` answers.
pub fn may_change() -> bool {
    use_context::<Me>()
        .and_then(|Me(me)| me.get())
        .and_then(Result::ok)
        .is_some_and(|m| m.role == failscope_shared::api::Role::Analyst)
}

/// One open study: its data as it loads, and what the view derived from it. Every field is a
/// signal handle (`Copy`), so components take the context by value.
#[derive(Clone, Copy)]
pub struct StudyCtx {
    /// Study id.
    pub id: i64,
    /// The page's view state (as [`view_state`]).
    pub state: RwSignal<ViewState>,
    /// Names and sizes of test sets, classes, CSFs, metadata keys.
    pub layout: StoredValue<StudyLayout>,
    /// The per-point columns (again when the CSF changes).
    pub cols: RwSignal<Option<Columns>>,
    /// The embedding, normalised, as `(x, y, z)` triples.
    pub xy: RwSignal<Option<Vec<f32>>>,
    /// Whether `xy` is an intermediate layout of a running job (the points still move).
    pub live: RwSignal<bool>,
    /// The embedding job running for this view, which the progress bar can stop.
    pub embedding_job: RwSignal<Option<crate::api::JobHandle>>,
    /// A running job's stage and fraction.
    pub progress: RwSignal<Option<(String, f64)>>,
    /// What failed, for the user.
    pub error: RwSignal<Option<String>>,
    /// The box or lasso selection.
    pub selection: RwSignal<Selection>,
    /// Colours, shapes and legend of every point.
    pub painted: Memo<Option<Paint>>,
    /// The chosen CSF's silent-failure threshold.
    pub threshold: Memo<f64>,
    /// What a plain drag on the scatter does.
    pub tool: RwSignal<Tool>,
    /// Counts changes of the scatter's size (window resized, rail folded, panel dragged): the
    /// canvas redraws at its new size.
    pub resized: RwSignal<u32>,
    /// Whether the view is being dragged or zoomed (the scatter keeps its last full frame and
    /// the contours their last raster, both moved with the camera, until it stops).
    pub moving: RwSignal<bool>,
}

/// The page's colour theme: dark when true (`data-theme` on the document, kept in the browser's
/// local storage).
#[derive(Clone, Copy)]
pub struct Theme(pub RwSignal<bool>);

/// The page's theme.
pub fn theme() -> Theme {
    expect_context()
}

/// Whether the keyboard-shortcuts overlay is shown: set by the header's `?` button and by the
/// study view's `?` and Escape keys, drawn by the study view.
#[derive(Clone, Copy)]
pub struct Help(pub RwSignal<bool>);

/// The shortcuts overlay's switch.
pub fn help() -> Help {
    expect_context()
}

/// The open study's context.
pub fn study() -> StudyCtx {
    expect_context()
}
