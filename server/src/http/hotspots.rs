//! `GET /api/studies/{id}/hotspots`: the silent-failure regions of a view's layout, found by
//! density (`Method::Density` on the cached embedding the query names) and ranked by silent
//! failures, then their rate (`failscope_shared::analysis::hotspots`). A read: it needs the
//! embedding computed already (409 otherwise) and takes well under a second at 100,000 points,
//! so it answers at once instead of starting a job; the regions and their ranking are cached like a
//! clustering.
//! Labels name a metadata value (of a column with at most 50 values) that marks a region out.

use std::ops::ControlFlow;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use failscope_shared::analysis::hotspots;
use failscope_shared::api::{ClusterParams, HotspotRanking, HotspotsQuery, Method, Space};
use failscope_shared::wire::{DEFAULT_CSF, SILENT_FAILURE_COVERAGE};

use super::samples::meta_columns;
use super::{on_store, parse_id, AppError, AppState};
use crate::latent::jobs;

/// A metadata column with more distinct values (ids, ages) names no region.
const MAX_CATEGORIES: usize = 50;

/// The store's cache kind of a ranking.
const HOTSPOTS: &str = "hotspots";

/// The handler.
pub async fn hotspots(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<HotspotsQuery>, QueryRejection>,
) -> Result<Json<HotspotRanking>, AppError> {
    let id = parse_id(&id)?;
    let Query(q) = query.map_err(|e| AppError::BadRequest(format!("invalid parameters: {}", e.body_text())))?;
    let embed = q.embed_params();
    let params = ClusterParams {
        method: Method::density(),
        space: Space::Embedding(embed.clone()),
        csf: q.csf.clone().unwrap_or_else(|| DEFAULT_CSF.into()),
        coverage: SILENT_FAILURE_COVERAGE,
        seed: 0,
    };
    params.check()?;
    let ranking = on_store(&state, move |s| {
        let facts = s
            .facts(id)?
            .ok_or_else(|| AppError::NotFound(format!("no study with id {id}")))?;
        params.check_for(facts.n_samples as usize, &facts.csfs)?;
        if !s.is_cached(id, "embedding", &embed.key())? {
            return Err(AppError::Conflict(format!(
                "study {id} has no {} embedding with these parameters yet: start it with POST /api/studies/{id}/embeddings (the web app does when the view opens)",
                embed.describe()
            )));
        }
        // The ranking reads every sample's metadata: computed once per parameters and cached
        // beside the clustering (a study does not change after import).
        let key = params.key();
        if let Some(blob) = s.cached(id, HOTSPOTS, &key)? {
            if let Ok(r) = serde_json::from_slice::<HotspotRanking>(&blob) {
                return Ok(r);
            }
        }
        let (c, _) = jobs::clustering(s, id, &params, &|_, _| ControlFlow::Continue(()))?;
        let names: Vec<String> = s.test_sets(id)?.into_iter().map(|t| t.name).collect();
        let columns = meta_columns(&s.sample_meta(id)?, MAX_CATEGORIES);
        let meta: Vec<hotspots::Meta> = columns
            .iter()
            .map(|(key, codes, categories)| hotspots::Meta {
                key,
                codes,
                categories,
            })
            .collect();
        let ranking = HotspotRanking {
            hotspots: hotspots::ranked(&c, &s.classes(id)?, &names, &meta),
            csf: c.csf,
            threshold: c.threshold,
            assignment: c.assignment,
        };
        let blob = serde_json::to_vec(&ranking).map_err(|e| AppError::Internal(format!("hotspot ranking: {e}")))?;
        s.cache(id, HOTSPOTS, &key, &blob)?;
        Ok(ranking)
    })
    .await?;
    Ok(Json(ranking))
}
