//! The per-sample queries: records, features, MC passes, provenance and metadata, and the
//! inspector's [`SampleDetail`] in a bounded number of queries.

use std::collections::HashMap;

use failscope_shared::api::{CsfScore, SampleDetail};
use indexmap::IndexMap;
use ndarray::Array2;
use rusqlite::{params, OptionalExtension};

use super::{from_blob, SampleInfo, SampleMeta, SampleRecord, Store, StoreError};

impl Store {
    /// The per-sample records of a study, by row.
    pub fn samples(&self, id: i64) -> Result<Vec<SampleRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT row, dataset_idx, label, predicted FROM samples WHERE study_id = ?1 ORDER BY row")?;
        let rows = stmt.query_map([id], |r| {
            Ok(SampleRecord {
                row: r.get(0)?,
                dataset_idx: r.get(1)?,
                label: r.get(2)?,
                predicted: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The `(n, d)` feature matrix of a study, rows in sample order; `None` when it has no features.
    pub fn features(&self, id: i64) -> Result<Option<Array2<f32>>, StoreError> {
        let d = self.feature_dim(id)?;
        if d == 0 {
            return Ok(None);
        }
        let d = d as usize;
        let mut stmt = self
            .conn
            .prepare("SELECT features FROM samples WHERE study_id = ?1 ORDER BY row")?;
        let mut rows = stmt.query([id])?;
        let (mut data, mut n) = (Vec::new(), 0);
        while let Some(row) = rows.next()? {
            let blob = row.get_ref(0)?.as_blob_or_null().ok().flatten().unwrap_or_default();
            if blob.len() != 4 * d {
                return Err(StoreError::Shape { id, what: "features" });
            }
            data.extend(from_blob(id, "features", blob)?);
            n += 1;
        }
        Array2::from_shape_vec((n, d), data)
            .map(Some)
            .map_err(|_| StoreError::Shape { id, what: "features" })
    }

    /// The `(c, m)` MC-dropout outputs of one sample, when the study has them.
    pub fn mc(&self, id: i64, row: i64) -> Result<Option<Array2<f32>>, StoreError> {
        let found = self
            .conn
            .query_row(
                "SELECT s.mc, t.n_classes, t.mc_passes FROM samples s JOIN studies t ON t.id = s.study_id WHERE s.study_id = ?1 AND s.row = ?2",
                params![id, row],
                |r| Ok((r.get::<_, Option<Vec<u8>>>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
            )
            .optional()?;
        let Some((Some(blob), c, m)) = found else {
            return Ok(None);
        };
        Array2::from_shape_vec((c as usize, m as usize), from_blob(id, "mc", &blob)?)
            .map(Some)
            .map_err(|_| StoreError::Shape { id, what: "mc" })
    }

    /// Everything stored about one sample, or `None` for an unknown study or row.
    pub fn sample(&self, id: i64, row: i64) -> Result<Option<SampleInfo>, StoreError> {
        let found = self
            .conn
            .query_row(
                "SELECT row, dataset_idx, label, predicted, probs, sample_id, image, source_index, corruption, domain, meta FROM samples WHERE study_id = ?1 AND row = ?2",
                params![id, row],
                |r| {
                    let probs: Option<Vec<u8>> = r.get(4)?;
                    let meta: Option<String> = r.get(10)?;
                    let probs = probs.map(|b| from_blob(id, "probs", &b));
                    let info = SampleInfo {
                        record: SampleRecord {
                            row: r.get(0)?,
                            dataset_idx: r.get(1)?,
                            label: r.get(2)?,
                            predicted: r.get(3)?,
                        },
                        probs: None,
                        sample_id: r.get(5)?,
                        image: r.get(6)?,
                        source_index: r.get(7)?,
                        corruption: r.get(8)?,
                        domain: r.get(9)?,
                        meta: IndexMap::new(),
                    };
                    Ok((info, meta, probs))
                },
            )
            .optional()?;
        let Some((mut info, meta, probs)) = found else {
            return Ok(None);
        };
        info.probs = probs.transpose()?;
        info.meta = Self::json_column(id, "meta", meta.as_deref())?.unwrap_or_default();
        Ok(Some(info))
    }

    /// Every sample's identity across studies, by row: its test set's name (`#<dataset_idx>` when
    /// the study has no name for it) and its sample id, when recorded
    /// (`analysis::compare::match_rows` pairs studies by these).
    pub fn row_keys(&self, id: i64) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT t.name, s.dataset_idx, s.sample_id FROM samples s \
             LEFT JOIN test_sets t ON t.study_id = s.study_id AND t.dataset_idx = s.dataset_idx \
             WHERE s.study_id = ?1 ORDER BY s.row",
        )?;
        let rows = stmt.query_map([id], |r| {
            let name: Option<String> = r.get(0)?;
            let set = name.unwrap_or(format!("#{}", r.get::<_, i64>(1)?));
            Ok((set, r.get::<_, Option<String>>(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every sample's domain and metadata, by row.
    pub fn sample_meta(&self, id: i64) -> Result<Vec<SampleMeta>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT domain, meta FROM samples WHERE study_id = ?1 ORDER BY row")?;
        let rows = stmt.query_map([id], |r| {
            Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        rows.map(|row| {
            let (domain, meta) = row?;
            Ok((
                domain,
                Self::json_column(id, "meta", meta.as_deref())?.unwrap_or_default(),
            ))
        })
        .collect()
    }

    /// One sample for the inspector: its record, provenance and softmax, and every CSF's score
    /// with its percentile within the sample's test set (from `scores`, this study's). Four
    /// indexed queries, whatever the study's size; `None` for an unknown study or row.
    pub fn sample_detail(&self, id: i64, row: i64, scores: &StudyScores) -> Result<Option<SampleDetail>, StoreError> {
        let Some(info) = self.sample(id, row)? else {
            return Ok(None);
        };
        let k = info.record.dataset_idx;
        let test_set: Option<String> = self
            .conn
            .query_row(
                "SELECT name FROM test_sets WHERE study_id = ?1 AND dataset_idx = ?2",
                params![id, k],
                |r| r.get(0),
            )
            .optional()?;
        let classes = self.classes(id)?;
        let scores = scores.of(row as usize, k);
        let has_image = info.image.is_some() && self.image_settings(id)?.is_some();
        let name = |c: i64| classes.get(c as usize).cloned().unwrap_or_else(|| format!("class {c}"));
        Ok(Some(SampleDetail {
            row: row as u64,
            dataset_idx: k,
            test_set: test_set.unwrap_or_else(|| format!("dataset {k}")),
            label: info.record.label,
            label_name: name(info.record.label),
            predicted: info.record.predicted,
            predicted_name: name(info.record.predicted),
            probs: info.probs.unwrap_or_default(),
            classes: classes.clone(),
            scores,
            sample_id: info.sample_id,
            domain: info.domain,
            corruption: info.corruption,
            meta: info.meta.into_iter().collect(),
            has_image,
        }))
    }
}

/// A study's CSF scores by row, with each CSF's scores of each test set sorted: a sample's
/// percentile within its test set is a binary search, not a scan of the set.
#[derive(Debug, Default)]
pub struct StudyScores {
    scores: IndexMap<String, Vec<f32>>,
    /// The slot in `sorted` and `sizes` of each test set (by `dataset_idx`).
    sets: HashMap<i64, usize>,
    /// `sorted[c][slot]`: CSF `c`'s scores in the set, NaN left out, ascending.
    sorted: Vec<Vec<Vec<f32>>>,
    /// Rows in each set, a NaN score or not.
    sizes: Vec<usize>,
}

impl StudyScores {
    /// The scores of the study whose records are `samples`.
    pub fn new(samples: &[SampleRecord], scores: IndexMap<String, Vec<f32>>) -> Self {
        let mut sets = HashMap::new();
        let mut sizes = Vec::new();
        let slot: Vec<usize> = samples
            .iter()
            .map(|r| {
                let next = sets.len();
                let slot = *sets.entry(r.dataset_idx).or_insert(next);
                if slot == sizes.len() {
                    sizes.push(0);
                }
                sizes[slot] += 1;
                slot
            })
            .collect();
        let sorted = scores
            .values()
            .map(|v| {
                let mut by_set = vec![Vec::new(); sizes.len()];
                for (&x, &s) in v.iter().zip(&slot) {
                    if !x.is_nan() {
                        by_set[s].push(x);
                    }
                }
                for set in &mut by_set {
                    set.sort_unstable_by(f32::total_cmp);
                }
                by_set
            })
            .collect();
        Self {
            scores,
            sets,
            sorted,
            sizes,
        }
    }

    /// Every CSF's scores by row.
    pub fn all(&self) -> &IndexMap<String, Vec<f32>> {
        &self.scores
    }

    /// Each CSF's score of `row` (none for NaN) and its percentile among the scores of test set
    /// `set`: the share of the set's rows scoring strictly lower, in percent.
    pub fn of(&self, row: usize, set: i64) -> Vec<CsfScore> {
        let slot = self.sets.get(&set).copied();
        self.scores
            .iter()
            .zip(&self.sorted)
            .map(|((csf, v), sorted)| {
                let score = v.get(row).copied().filter(|x| !x.is_nan());
                let percentile = score.map(|x| match slot {
                    Some(s) => 100.0 * sorted[s].partition_point(|y| *y < x) as f32 / self.sizes[s].max(1) as f32,
                    None => 0.0,
                });
                CsfScore {
                    csf: csf.clone(),
                    score,
                    percentile,
                }
            })
            .collect()
    }
}
