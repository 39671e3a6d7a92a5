//! failscope's browser app (Leptos, client-side rendered, compiled to WebAssembly): the study list
//! and each study's latent view — a WebGL2 scatter coloured by shift, confusion, confidence,
//! cluster or metadata — with inspector, failures, clusters, benchmark and selection panels. The
//! whole view lives in the URL (`failscope_shared::view::ViewState`), so a link reopens it exactly.
//! It talks to `/api` only through `failscope_shared::api` types.

mod api;
mod colors;
mod columns;
mod compare;
mod context;
mod curves;
mod filters;
mod panels;
mod scatter;
mod study;
mod toolbar;

use std::cell::Cell;
use std::rc::Rc;

use failscope_shared::view::ViewState;
use leptos::prelude::*;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsCast;

/// The study list; clicking a study opens its view.
#[component]
fn StudyList() -> impl IntoView {
    let state = context::view_state();
    let studies = LocalResource::new(api::studies);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading studies…"</p> }>
            {move || studies.get().map(|r| match r {
                Err(e) => view! { <p class="error">{format!("Could not load studies: {e}")}</p> }.into_any(),
                Ok(list) if list.is_empty() => view! {
                    <p id="no-studies">"No studies yet. Import one: " <code>"failscope study import <FD-Shifts folder>"</code></p>
                }.into_any(),
                Ok(list) => view! {
                    <ul id="study-list">
                        {list.into_iter().map(|s| {
                            let id = s.id;
                            view! {
                                <li class="study" data-id=id on:click=move |_| state.set(ViewState { study: Some(id), ..ViewState::default() })>
                                    <strong>{s.name}</strong>
                                    <span class="muted">{format!(" — {} test sets, {} CSFs, {} samples", s.test_sets.len(), s.csfs.len(), s.n_samples)}</span>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any(),
            })}
        </Suspense>
    }
}

/// The stored benchmark reports (`failscope bench`), each a link to its page; nothing when there
/// are none.
#[component]
fn ReportList() -> impl IntoView {
    let reports = LocalResource::new(api::reports);
    view! {
        <Suspense fallback=|| ()>
            {move || reports.get().and_then(Result::ok).filter(|l| !l.is_empty()).map(|list| view! {
                <section id="reports">
                    <h2>"Benchmark reports"</h2>
                    <ul>
                        {list.into_iter().map(|r| {
                            let seeds = r.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
                            view! {
                                <li>
                                    <a class="report-link" href=api::report_href(&r.name)>{r.name.clone()}</a>
                                    <span class="muted">{format!(" — seeds {seeds}, {} studies, {}", r.studies.len(), r.created_at)}</span>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                </section>
            })}
        </Suspense>
    }
}

/// Links to the benchmark reports computed from study `id`.
#[component]
fn StudyReports(id: i64) -> impl IntoView {
    let reports = LocalResource::new(api::reports);
    move || {
        reports.get().and_then(Result::ok).map(|list| {
            list.into_iter()
                .filter(|r| r.studies.contains(&id))
                .map(|r| view! { " · " <a class="study-report" href=api::report_href(&r.name)>{format!("benchmark report: {}", r.name)}</a> })
                .collect_view()
        })
    }
}

/// A study: its layout first, then the view.
#[component]
fn Study(id: i64) -> impl IntoView {
    let state = context::view_state();
    let layout = LocalResource::new(move || api::layout(id));
    leptos::task::spawn_local(api::warm_features(id));
    view! {
        <p class="crumbs"><a href="/" on:click=move |ev| { ev.prevent_default(); state.set(ViewState::default()); }>"← all studies"</a><StudyReports id=id/></p>
        // A Transition, not a Suspense: a resource that reloads inside the view (a panel's list,
        // the hotspots) must not swap the whole view for the fallback while it loads.
        <Transition fallback=|| view! { <p class="muted">"Loading study…"</p> }>
            {move || layout.get().map(|r| match r {
                Err(e) => view! { <div class="error-page"><h2>"Cannot open this study"</h2><p class="error" id="page-error">{e}</p></div> }.into_any(),
                Ok(l) => view! { <study::StudyView layout=l/> }.into_any(),
            })}
        </Transition>
    }
}

/// Where the theme is kept in the browser's local storage.
const THEME_KEY: &str = "failscope-theme";

/// The stored theme, else the system's preference.
fn stored_theme_is_dark() -> bool {
    let stored = window()
        .local_storage()
        .ok()
        .flatten()
        .and_then(|s| s.get_item(THEME_KEY).ok().flatten());
    match stored.as_deref() {
        Some(t) => t == "dark",
        None => window()
            .match_media("(prefers-color-scheme: dark)")
            .ok()
            .flatten()
            .is_some_and(|m| m.matches()),
    }
}

/// The shortest interval between two URL writes.
const URL_EVERY_MS: f64 = 250.0;

fn now() -> f64 {
    window().performance().map_or(0.0, |p| p.now())
}

/// Writes the view state into the address bar.
fn write_url(state: RwSignal<ViewState>) {
    let q = state.get_untracked().to_query();
    let url = if q.is_empty() {
        "/".to_string()
    } else {
        format!("/?{q}")
    };
    if let Ok(h) = window().history() {
        let _ = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}

/// The page: an error page for a malformed URL, else the study list or one study.
#[component]
fn App() -> impl IntoView {
    let search = window().location().search().unwrap_or_default();
    let parsed = ViewState::from_query(&search);
    let Ok(initial) = parsed else {
        let e = parsed.err().unwrap_or_default();
        return view! {
            <header><h1>"failscope"</h1></header>
            <main class="error-page"><h2>"This link is malformed"</h2><p class="error" id="page-error">{e}</p>
            <p><a href="/">"Open the study list"</a></p></main>
        }
        .into_any();
    };
    let state = RwSignal::new(initial);
    provide_context(state);
    let dark = RwSignal::new(stored_theme_is_dark());
    provide_context(context::Theme(dark));
    let help = RwSignal::new(false);
    provide_context(context::Help(help));
    Effect::new(move |_| {
        let name = if dark.get() { "dark" } else { "light" };
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("data-theme", name);
        }
        if let Ok(Some(store)) = window().local_storage() {
            let _ = store.set_item(THEME_KEY, name);
        }
    });
    provide_context(context::Me(LocalResource::new(api::me)));
    // Keep the URL in step with the view: replaceState (no history entry per pan), at most every
    // URL_EVERY_MS — a write costs ~5 ms, a third of a frame while panning — and always the last.
    let url_sync = Rc::new(Cell::new((f64::NEG_INFINITY, false)));
    Effect::new(move |_| {
        state.track();
        let (last, pending) = url_sync.get();
        if pending {
            return;
        }
        let wait = last + URL_EVERY_MS - now();
        if wait <= 0.0 {
            write_url(state);
            url_sync.set((now(), false));
            return;
        }
        url_sync.set((last, true));
        let sync = url_sync.clone();
        let later = wasm_bindgen::closure::Closure::once_into_js(move || {
            write_url(state);
            sync.set((now(), false));
        });
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(later.unchecked_ref(), wait as i32 + 1);
    });
    let study = Memo::new(move |_| state.get().study);
    view! {
        <header><h1>"failscope"</h1><p class="muted">"Silent failures of medical image classifiers"</p>
            <div class="header-tools">
                <button id="theme-toggle" title="light or dark theme (t)" on:click=move |_| dark.update(|d| *d = !*d)>
                    {move || if dark.get() { "☀ light" } else { "☾ dark" }}</button>
                <button id="help-toggle" title="keyboard shortcuts (?)" on:click=move |_| help.update(|h| *h = !*h)>"?"</button>
                <Account/>
            </div>
        </header>
        <main class:study-main=move || study.get().is_some()>
            {move || match study.get() {
                None => view! { <StudyList/><ReportList/> }.into_any(),
                Some(id) => view! { <Study id=id/> }.into_any(),
            }}
        </main>
    }
    .into_any()
}

/// Who the page is signed in as, with a sign-out button; nothing when the server has no access
/// control.
#[component]
fn Account() -> impl IntoView {
    let context::Me(me) = expect_context();
    move || {
        me.get().and_then(Result::ok).filter(|m| m.access_control).map(|m| {
            view! {
                <form class="account" method="post" action="/signout">
                    <span id="signed-in-as">{format!("{} · {}", m.name, m.role)}</span>
                    <button type="submit" id="signout">"Sign out"</button>
                </form>
            }
        })
    }
}

/// Entry point called by the generated JS glue.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
