//! failscope's browser app (Leptos, client-side rendered, compiled to WebAssembly): the study list and
//! each study's benchmark table. It talks to the server's `/api` only through `failscope_shared::api`
//! types.

use failscope_shared::api::{StudyDetail, StudySummary};
use leptos::prelude::*;
use wasm_bindgen::prelude::wasm_bindgen;

async fn fetch_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, String> {
    let resp = gloo_net::http::Request::get(url)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.ok() {
        let body: Result<failscope_shared::api::ApiError, _> = resp.json().await;
        return Err(body
            .map(|b| b.error)
            .unwrap_or_else(|_| format!("HTTP {}", resp.status())));
    }
    resp.json().await.map_err(|e| e.to_string())
}

/// Metrics shown in the benchmark table, in order.
const HEADLINE: [&str; 5] = ["accuracy", "aurc", "augrc", "failauc", "ece"];

fn fmt(v: Option<f64>) -> String {
    v.map_or_else(
        || "—".to_string(),
        |x| {
            if x.abs() >= 100.0 {
                format!("{x:.1}")
            } else {
                format!("{x:.3}")
            }
        },
    )
}

/// One study's benchmark: a table per test set, CSFs as rows, headline metrics as columns.
#[component]
fn Benchmark(
    /// The study id to show.
    id: i64,
) -> impl IntoView {
    let detail =
        LocalResource::new(move || async move { fetch_json::<StudyDetail>(&format!("/api/studies/{id}")).await });
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading benchmark…"</p> }>
            {move || detail.get().map(|r| match r {
                Err(e) => view! { <p class="error">{e}</p> }.into_any(),
                Ok(d) => view! {
                    <section class="benchmark" data-study=d.summary.id>
                        <h2>{d.summary.name.clone()}</h2>
                        <p class="muted">{format!("{} · {} samples · metrics: {}", d.summary.kind, d.summary.n_samples, d.compat)}</p>
                        {d.report.iter().map(|(test_set, csfs)| view! {
                            <h3>{test_set.clone()}</h3>
                            <table>
                                <thead><tr><th>"CSF"</th>{HEADLINE.iter().map(|m| view! { <th>{*m}</th> }).collect_view()}</tr></thead>
                                <tbody>
                                    {csfs.iter().map(|(csf, row)| view! {
                                        <tr><td>{csf.clone()}</td>
                                        {HEADLINE.iter().map(|m| view! { <td class="num">{fmt(row.get(*m).copied().flatten())}</td> }).collect_view()}
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }).collect_view()}
                    </section>
                }.into_any(),
            })}
        </Suspense>
    }
}

/// The whole page: the study list; clicking a study shows its benchmark.
#[component]
fn App() -> impl IntoView {
    let studies = LocalResource::new(|| fetch_json::<Vec<StudySummary>>("/api/studies"));
    let selected = RwSignal::new(None::<i64>);
    view! {
        <header><h1>"failscope"</h1><p class="muted">"Silent failures of medical image classifiers"</p></header>
        <main>
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
                                    <li class="study" data-id=id on:click=move |_| selected.set(Some(id))>
                                        <strong>{s.name}</strong>
                                        <span class="muted">{format!(" — {} test sets, {} CSFs, {} samples", s.test_sets.len(), s.csfs.len(), s.n_samples)}</span>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                })}
            </Suspense>
            {move || selected.get().map(|id| view! { <Benchmark id=id/> })}
        </main>
    }
}

/// Entry point called by the generated JS glue.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
