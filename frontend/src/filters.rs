//! The test-set filters, grouped by shift family (i.i.d., acquisition, manifestation, corruption,
//! in-class, new-class): one checkbox per family and per group (a site, a subtype, a corruption
//! type with all its severities), each with its rows and accuracy, and a severity range per
//! corruption type. Everything they set lives in the view state (`hide`, `sev`), so in the URL.

use failscope_shared::view::shifts::{self, Family, Group};
use leptos::prelude::*;

use crate::context::{self, StudyCtx};

/// Rows and correct predictions per dataset index.
fn tallies(sets: usize, cols: &crate::columns::Columns) -> (Vec<u64>, Vec<u64>) {
    let (mut rows, mut correct) = (vec![0u64; sets], vec![0u64; sets]);
    for i in 0..cols.dataset_idx.len() {
        if let Some(k) = rows.get_mut(usize::from(cols.dataset_idx[i])) {
            *k += 1;
            correct[usize::from(cols.dataset_idx[i])] += u64::from(cols.label[i] == cols.predicted[i]);
        }
    }
    (rows, correct)
}

/// `1,234 · 87 %` (or just the rows while the columns load).
fn stat(rows: u64, accuracy: Option<f64>) -> String {
    let rows = rows.to_string();
    let mut grouped = String::new();
    for (i, c) in rows.chars().enumerate() {
        if i > 0 && (rows.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match accuracy {
        Some(a) => format!("{grouped} · {:.0} %", a * 100.0),
        None => grouped,
    }
}

/// The grouped test-set filters.
#[component]
pub fn ShiftFilters() -> impl IntoView {
    let StudyCtx {
        state, layout, cols, ..
    } = context::study();
    let names = layout.get_value().test_sets;
    let n_sets = names.len();
    let groups = {
        let names = names.clone();
        Memo::new(move |_| {
            let (rows, correct) = cols
                .with(|c| c.as_ref().map(|c| tallies(n_sets, c)))
                .unwrap_or_default();
            shifts::groups(&names, &rows, &correct)
        })
    };
    let loaded = move || cols.with(Option::is_some);
    let families = move || {
        let all = groups.get();
        Family::ALL
            .into_iter()
            .filter_map(|f| {
                let gs: Vec<Group> = all.iter().filter(|g| g.family == f).cloned().collect();
                (!gs.is_empty()).then_some((f, gs))
            })
            .collect::<Vec<_>>()
    };
    view! {
        <div class="shift-filters" id="shift-filters">
            {move || families().into_iter().map(|(family, gs)| {
                let sets: Vec<i64> = gs.iter().flat_map(|g| g.sets.iter().map(|s| s.0)).collect();
                let (rows, correct) = gs.iter().fold((0, 0), |(r, c), g| (r + g.rows, c + g.correct));
                let accuracy = (loaded() && rows > 0).then(|| correct as f64 / rows as f64);
                let all = sets.clone();
                let shown_all = move || !all.iter().any(|k| state.get().hide_sets.contains(k));
                let id = family.id();
                view! {
                    <fieldset class="family" id=format!("family-{id}")>
                        <legend><label>
                            <input type="checkbox" class="family-toggle" id=format!("fam-{id}") prop:checked=shown_all
                                on:change=move |_| state.update(|s| s.toggle_sets(&sets))/>
                            {format!(" {} ", family.label())}
                            <span class="stat">{stat(rows, accuracy)}</span>
                        </label></legend>
                        {gs.into_iter().map(|g| group_view(g, loaded())).collect_view()}
                    </fieldset>
                }
            }).collect_view()}
        </div>
    }
}

/// One group: its checkbox, rows and accuracy, and for a corruption type its severity range.
fn group_view(g: Group, loaded: bool) -> impl IntoView {
    let state = context::view_state();
    let sets: Vec<i64> = g.sets.iter().map(|s| s.0).collect();
    let all = sets.clone();
    let shown = move || !all.iter().any(|k| state.get().hide_sets.contains(k));
    let accuracy = g.accuracy().filter(|_| loaded);
    let severities = g.severities().filter(|(lo, hi)| lo < hi);
    let kind = g.name.clone();
    let range = severities.map(|full| {
        let (k_lo, k_hi, k_out) = (kind.clone(), kind.clone(), kind.clone());
        let lo = move || state.get().severity_of(&k_lo, full).0;
        let hi = move || state.get().severity_of(&k_hi, full).1;
        let (k_set, k_set2) = (kind.clone(), kind.clone());
        let set_lo = move |ev: leptos::ev::Event| {
            if let Ok(v) = event_target_value(&ev).parse::<u8>() {
                state.update(|s| {
                    let (_, h) = s.severity_of(&k_set, full);
                    s.set_severity(&k_set, (v, h.max(v)), full);
                });
            }
        };
        let set_hi = move |ev: leptos::ev::Event| {
            if let Ok(v) = event_target_value(&ev).parse::<u8>() {
                state.update(|s| {
                    let (l, _) = s.severity_of(&k_set2, full);
                    s.set_severity(&k_set2, (l.min(v), v), full);
                });
            }
        };
        let (min, max) = (full.0.to_string(), full.1.to_string());
        view! {
            <span class="severity" title="the severities shown">" severity "
                <input type="range" class="sev-lo" id=format!("sev-lo-{kind}") min=min.clone() max=max.clone() step="1"
                    prop:value=move || lo().to_string() on:input=set_lo/>
                <input type="range" class="sev-hi" id=format!("sev-hi-{kind}") min=min max=max step="1"
                    prop:value=move || hi().to_string() on:input=set_hi/>
                <output id=format!("sev-{kind}")>{move || { let (l, h) = state.get().severity_of(&k_out, full); format!("{l}–{h}") }}</output>
            </span>
        }
    });
    view! {
        <div class="group">
            <label class="set" title=g.name.clone()>
                <input type="checkbox" prop:checked=shown on:change=move |_| state.update(|s| s.toggle_sets(&sets))/>
                {format!(" {} ", g.name)}
                <span class="stat">{stat(g.rows, accuracy)}</span>
            </label>
            {range}
        </div>
    }
}
