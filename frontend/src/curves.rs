//! The interactive risk–coverage chart of the Benchmark panel: one curve per test set for the
//! chosen CSF, computed in the browser from the loaded columns with the same code as the
//! benchmark (`failscope_shared::analysis::rc`). Selective risk (AURC) or generalised risk
//! (AUGRC); click a legend entry to hide a curve; hover for the coverage, each curve's risk and the
//! confidence threshold that keeps that coverage; download the chart as SVG or its curves as CSV.

use failscope_shared::analysis::rc::{Curve, RiskCoverageStats, TieOrder};
use failscope_shared::analysis::sets::curves_by_test_set;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::colors::PALETTE;
use crate::columns::Columns;

/// Chart size and plot margins (SVG user units).
const W: f64 = 460.0;
const H: f64 = 300.0;
const LEFT: f64 = 50.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 38.0;

/// Points drawn per curve (the readout uses the whole curve).
const DRAWN: usize = 300;

/// One test set's curve.
#[derive(Clone, PartialEq)]
struct SetCurve {
    /// Dataset index (its colour, as in the scatter's test-set colouring).
    idx: usize,
    name: String,
    /// AURC or AUGRC ×1000.
    area: f64,
    curve: Curve,
    polyline: Vec<(f64, f64)>,
}

/// The curves of the test sets [`curves_by_test_set`] picks (the server's figures use the same).
fn curves(c: &Columns, names: &[String], generalised: bool) -> Vec<SetCurve> {
    let idx: Vec<usize> = c.dataset_idx.iter().map(|&d| usize::from(d)).collect();
    let conf: Vec<f64> = c.score.iter().map(|&s| f64::from(s)).collect();
    let correct: Vec<bool> = c.label.iter().zip(&c.predicted).map(|(l, p)| l == p).collect();
    curves_by_test_set(&idx, &conf, &correct, None)
        .into_iter()
        .map(|set| {
            let idx = set.idx;
            let stats = RiskCoverageStats::new(&set.confidence, &set.correct, None, TieOrder::Input);
            let (curve, area) = if generalised {
                (stats.generalized_curve(), stats.augrc())
            } else {
                (stats.selective_curve(), stats.aurc())
            };
            SetCurve {
                idx,
                name: names.get(idx).cloned().unwrap_or_else(|| format!("dataset {idx}")),
                area,
                polyline: RiskCoverageStats::plot_points(&curve, DRAWN),
                curve,
            }
        })
        .collect()
}

fn x_of(coverage: f64) -> f64 {
    LEFT + coverage * (W - LEFT - RIGHT)
}

fn y_of(risk: f64, max: f64) -> f64 {
    TOP + (1.0 - risk / max) * (H - TOP - BOTTOM)
}

fn css(idx: usize) -> String {
    let c = PALETTE[idx % 10];
    format!("rgb({},{},{})", c[0], c[1], c[2])
}

/// Line dashes for test sets past the palette's ten colours (a study can have dozens: six
/// corruptions × five severities), so no two of the first forty curves look alike.
const DASHES: [&str; 4] = ["none", "7 3", "2 2", "9 3 2 3"];

fn dash(idx: usize) -> &'static str {
    DASHES[(idx / 10) % DASHES.len()]
}

/// The legend swatch of test set `idx`: its colour, striped like its line when dashed.
fn swatch(idx: usize) -> String {
    match idx / 10 % DASHES.len() {
        0 => format!("background:{}", css(idx)),
        k => format!(
            "background:repeating-linear-gradient(90deg,{c} 0 {on}px,transparent {on}px {period}px)",
            c = css(idx),
            on = [0, 5, 2, 6][k],
            period = [0, 7, 4, 8][k]
        ),
    }
}

/// The chart for the columns in `cols` (the view's CSF, `csf`); `names` are the test sets.
#[component]
pub fn RiskCoverageChart(cols: RwSignal<Option<Columns>>, names: Vec<String>, csf: Memo<String>) -> impl IntoView {
    let generalised = RwSignal::new(false);
    let hidden = RwSignal::new(Vec::<usize>::new());
    let hover = RwSignal::new(None::<f64>);
    let data = Memo::new(move |_| {
        let g = generalised.get();
        cols.with(|c| c.as_ref().map(|c| curves(c, &names, g)).unwrap_or_default())
    });
    let max_risk = Memo::new(move |_| {
        data.with(|d| {
            d.iter()
                .flat_map(|s| s.curve.risks.iter().copied())
                .filter(|v| v.is_finite())
                .fold(0.0f64, f64::max)
                .max(1e-3)
                * 1.05
        })
    });
    let svg_ref = NodeRef::<leptos::svg::Svg>::new();
    let csv = move || {
        let mut out = String::from("test_set,coverage,risk,threshold\n");
        data.with(|d| {
            for s in d {
                for (i, (c, r)) in s.curve.coverages.iter().zip(&s.curve.risks).enumerate() {
                    let t = s.curve.thresholds.get(i).map_or(String::new(), |t| t.to_string());
                    out.push_str(&format!("{},{c},{r},{t}\n", s.name));
                }
            }
        });
        format!("data:text/csv;charset=utf-8,{}", js_sys::encode_uri_component(&out))
    };
    let on_move = move |ev: leptos::ev::MouseEvent| {
        let Some(svg) = svg_ref.get() else { return };
        let width = f64::from(svg.client_width()).max(1.0);
        let x = f64::from(ev.offset_x()) * W / width;
        hover.set(Some(((x - LEFT) / (W - LEFT - RIGHT)).clamp(0.0, 1.0)));
    };
    let ticks = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
    view! {
        <div id="rc-chart">
            <p class="chart-controls">
                <label><input type="radio" name="rc-kind" prop:checked=move || !generalised.get()
                    on:change=move |_| generalised.set(false)/>" selective risk (AURC)"</label>
                <label><input type="radio" name="rc-kind" id="rc-generalised" prop:checked=move || generalised.get()
                    on:change=move |_| generalised.set(true)/>" generalised risk (AUGRC)"</label>
            </p>
            <svg node_ref=svg_ref viewBox=format!("0 0 {W} {H}") xmlns="http://www.w3.org/2000/svg" class="chart"
                on:mousemove=on_move on:mouseleave=move |_| hover.set(None)>
                <rect x="0" y="0" width=W height=H fill="white"/>
                {move || {
                    let max = max_risk.get();
                    ticks.iter().map(|&t| view! {
                        <line x1=x_of(t) x2=x_of(t) y1=TOP y2=H - BOTTOM stroke="#e5e5e5"/>
                        <text x=x_of(t) y=H - BOTTOM + 14.0 text-anchor="middle" font-size="10">{format!("{t:.1}")}</text>
                        <line x1=LEFT x2=W - RIGHT y1=y_of(t * max, max) y2=y_of(t * max, max) stroke="#e5e5e5"/>
                        <text x=LEFT - 4.0 y=y_of(t * max, max) + 3.0 text-anchor="end" font-size="10">{format!("{:.2}", t * max)}</text>
                    }).collect_view()
                }}
                <text x=(LEFT + W - RIGHT) / 2.0 y=H - 6.0 text-anchor="middle" font-size="11">"coverage"</text>
                <text x="12" y=(TOP + H - BOTTOM) / 2.0 text-anchor="middle" font-size="11"
                    transform=format!("rotate(-90 12 {})", (TOP + H - BOTTOM) / 2.0)>
                    {move || if generalised.get() { "generalised risk" } else { "selective risk" }}</text>
                {move || {
                    let max = max_risk.get();
                    let hide = hidden.get();
                    data.with(|d| d.iter().filter(|s| !hide.contains(&s.idx)).map(|s| {
                        let points: String = s.polyline.iter().map(|&(c, r)| format!("{:.2},{:.2} ", x_of(c), y_of(r, max))).collect();
                        view! { <polyline class="rc-curve" data-set=s.idx points=points fill="none" stroke=css(s.idx) stroke-dasharray=dash(s.idx) stroke-width="2"/> }
                    }).collect_view())
                }}
                {move || hover.get().map(|c| view! {
                    <line id="rc-cursor" x1=x_of(c) x2=x_of(c) y1=TOP y2=H - BOTTOM stroke="#333" stroke-dasharray="3 3"/>
                })}
            </svg>
            <ul class="legend chart-legend">
                {move || data.with(|d| d.iter().map(|s| {
                    let idx = s.idx;
                    let off = move || hidden.with(|h| h.contains(&idx));
                    view! {
                        <li class="rc-legend" class:off=off data-set=idx
                            on:click=move |_| hidden.update(|h| if let Some(p) = h.iter().position(|&x| x == idx) { h.remove(p); } else { h.push(idx); })>
                            <i style=swatch(idx)></i>
                            {format!("{} ({} {:.1})", s.name, if generalised.get_untracked() { "AUGRC" } else { "AURC" }, s.area)}
                        </li>
                    }
                }).collect_view())}
            </ul>
            <p id="rc-readout" class="muted">{move || match hover.get() {
                None => "Hover the chart to read off risk and threshold at a coverage.".to_string(),
                Some(c) => {
                    let hide = hidden.get();
                    let parts: Vec<String> = data.with(|d| d.iter().filter(|s| !hide.contains(&s.idx)).map(|s| {
                        let (cov, risk, t) = s.curve.nearest(c).unwrap_or((c, f64::NAN, None));
                        format!("{}: risk {risk:.3} at coverage {cov:.3}{}", s.name, t.map_or(String::new(), |t| format!(", keeps {} ≥ {t:.4}", csf.get_untracked())))
                    }).collect());
                    format!("coverage {c:.2} — {}", parts.join("; "))
                }
            }}</p>
            <p>
                // The chart as it is now (hidden curves and all), serialised when clicked.
                <a id="download-rc-svg" href="#" download="risk-coverage.svg" on:click=move |ev: leptos::ev::MouseEvent| {
                    let (Some(svg), Some(a)) = (svg_ref.get(), ev.current_target()) else { return };
                    let href = format!("data:image/svg+xml;charset=utf-8,{}", js_sys::encode_uri_component(&svg.outer_html()));
                    let _ = a.unchecked_into::<web_sys::Element>().set_attribute("href", &href);
                }>"chart SVG"</a>" · "
                <a id="download-rc-csv" href=csv download="risk-coverage.csv">"curves CSV"</a>
            </p>
        </div>
    }
}
