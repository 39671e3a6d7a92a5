//! Synthetic studies for the browser benchmark and tests: random labels, predictions, scores and
//! coordinates (4 classes in 4 blobs, 6 test sets: [`TEST_SETS`]), with the 2-D and 3-D embeddings
//! already cached so no t-SNE runs.

use failscope::ingest::{Evaluated, SampleRecord};
use failscope::latent::EmbedParams;
use failscope::store::{NewStudy, Store};
use failscope_shared::analysis::experiment::Report;
use indexmap::IndexMap;
use ndarray::Array2;

/// The synthetic studies' test sets, by dataset index: i.i.d., one acquisition shift and one
/// corruption at three severities, as a recipe names them.
pub const TEST_SETS: [&str; 6] = [
    "val_tuning",
    "iid_study",
    "in_class_study_acquisition_site2",
    "in_class_study_corruption_blur_1",
    "in_class_study_corruption_blur_3",
    "in_class_study_corruption_blur_5",
];

/// A study of `n` points with 4 classes, 6 test sets, scores, 2-D features and a cached embedding.
pub fn synthetic_study(db: &std::path::Path, n: usize) {
    synthetic_study_with_images(db, n, None);
}

/// [`synthetic_study`], with images when `images` names a folder: 64 small PNGs written there,
/// shared by the rows in turn (the web app renders a row's image from it, as for a real study).
pub fn synthetic_study_with_images(db: &std::path::Path, n: usize, images: Option<&std::path::Path>) {
    build(db, n, images, 0, Model::Only, None);
}

/// Two studies of the same `n` samples, as two models would give them: study 1 is
/// [`synthetic_study_with_images`]; study 2 ("model B") holds the same samples (ids `s<i>`, same
/// test sets and labels) in reverse row order, with about 30 % of the predictions flipped between
/// right and wrong and its own scores. Only the sample ids can pair their rows. Both have a second
/// CSF, `det_pe`, with scores of its own.
pub fn synthetic_pair(db: &std::path::Path, n: usize, images: &std::path::Path) {
    build(db, n, Some(images), 0, Model::PairA, None);
    build(db, n, Some(images), 0, Model::PairB, None);
}

/// Which model's study [`build`] makes.
#[derive(Clone, Copy, PartialEq)]
enum Model {
    /// The only one: one CSF, `det_mcp`.
    Only,
    /// The first of a pair: `det_mcp` and `det_pe`.
    PairA,
    /// The second of a pair: other predictions and scores, rows reversed.
    PairB,
}

/// [`synthetic_study`] whose last `planted` rows are a cluster of confident errors: a tight blob
/// at (5, 8), above the class blobs, every row wrong with a confidence of 0.999, in the test set
/// `blur_5`. Returns their rows.
pub fn synthetic_study_planted(db: &std::path::Path, n: usize, planted: usize) -> std::ops::Range<usize> {
    build(db, n, None, planted, Model::Only, None);
    n - planted..n
}

/// [`synthetic_study_planted`] with images and provenance (as [`synthetic_study_with_images`]);
/// the planted rows all come from the domain `scanner-x`, the others from `site0`–`site2`.
pub fn synthetic_study_planted_with_images(
    db: &std::path::Path,
    n: usize,
    planted: usize,
    images: &std::path::Path,
) -> std::ops::Range<usize> {
    build(db, n, Some(images), planted, Model::Only, None);
    n - planted..n
}

/// Uniform numbers in [0, 1) from a xorshift64 stream.
fn stream(mut state: u64) -> impl FnMut() -> f64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A study of `features.nrows()` points as [`synthetic_study`] makes them, storing `features` as
/// its features and no embedding (the embedding is computed from them, as for an imported
/// study). Answers its id.
pub fn synthetic_study_of_features(db: &std::path::Path, features: Array2<f32>) -> i64 {
    build(db, features.nrows(), None, 0, Model::Only, Some(features))
}

fn build(
    db: &std::path::Path,
    n: usize,
    images: Option<&std::path::Path>,
    planted: usize,
    model: Model,
    features: Option<Array2<f32>>,
) -> i64 {
    let mut store = Store::open(db).unwrap();
    let mut next = stream(0x2545_F491_4F6C_DD1D);
    let first_planted = n - planted;
    let samples: Vec<SampleRecord> = (0..n)
        .map(|i| {
            let label = (next() * 4.0) as i64;
            let (set, right) = (next(), next() < 0.8);
            SampleRecord {
                row: i as i64,
                dataset_idx: if i >= first_planted { 5 } else { (set * 6.0) as i64 },
                label,
                predicted: if right && i < first_planted {
                    label
                } else {
                    (label + 1) % 4
                },
            }
        })
        .collect();
    let coords = Array2::from_shape_fn((n, 2), |(i, d)| {
        let u = next() as f32 - 0.5;
        if i >= first_planted {
            // A blob of about ±0.5 around (5, 8).
            return [5.0, 8.0][d] + u + (next() as f32 - 0.5);
        }
        let c = (samples[i].label as f32) * 10.0;
        c * if d == 0 { 1.0 } else { -0.5 } + u * 12.0
    });
    let mut score: Vec<f64> = (0..n)
        .map(|i| if i >= first_planted { 0.999 } else { 0.5 + next() / 2.0 })
        .collect();
    let (mut samples, mut coords, mut name) = (samples, coords, format!("synthetic {n}"));
    // Row r holds sample order[r].
    let mut order: Vec<usize> = (0..n).collect();
    let mut second: Vec<f64> = {
        let mut pe = stream(0x5DEE_CE66_D1CE_4E5B);
        (0..n).map(|_| pe()).collect()
    };
    if model == Model::PairB {
        let mut other = stream(0x9E37_79B9_7F4A_7C15);
        for (s, v) in samples.iter_mut().zip(&mut score) {
            if other() < 0.3 {
                s.predicted = if s.predicted == s.label {
                    (s.label + 2) % 4
                } else {
                    s.label
                };
            }
            *v = 0.5 + other() / 2.0;
        }
        order.reverse();
        samples = order
            .iter()
            .enumerate()
            .map(|(r, &i)| SampleRecord {
                row: r as i64,
                ..samples[i]
            })
            .collect();
        score = order.iter().map(|&i| score[i]).collect();
        second = order.iter().map(|&i| 1.0 - second[i]).collect();
        coords = coords.select(ndarray::Axis(0), &order);
        name.push_str(" (model B)");
    }
    let mut scores = IndexMap::from([("det_mcp".to_string(), score)]);
    if model != Model::Only {
        scores.insert("det_pe".to_string(), second);
    }
    // Given features are stored as they are and embedded later; else the coordinates are the
    // features and the embedding is cached.
    let cache_embedding = features.is_none();
    let stored = features.unwrap_or_else(|| coords.clone());
    let id = store
        .insert(
            &NewStudy {
                name: &name,
                source: "benchmark",
                compat: "current",
            },
            &Evaluated {
                kind: "synthetic",
                n_classes: 4,
                n_samples: n as u64,
                report: Report::new(),
                files: Vec::new(),
                samples,
                features: Some(stored),
                mc: None,
                scores,
                probs: None,
                sources: images.map(|dir| sources(dir, &order, first_planted)),
                test_sets: TEST_SETS.iter().map(|s| s.to_string()).collect(),
            },
        )
        .unwrap();
    if !cache_embedding {
        return id;
    }
    let blob: Vec<u8> = coords.iter().flat_map(|v| v.to_le_bytes()).collect();
    store
        .cache(id, "embedding", &EmbedParams::default().key(), &blob)
        .unwrap();
    cache_3d_bowl(&store, id, coords.view());
    id
}

/// Caches a 3-D embedding of study `id` made from its 2-D one, `coords`: lifted onto a bowl.
pub fn cache_3d_bowl(store: &Store, id: i64, coords: ndarray::ArrayView2<'_, f32>) {
    let blob: Vec<u8> = coords
        .outer_iter()
        .flat_map(|p| [p[0], p[1], (p[0] * p[0] + p[1] * p[1]).sqrt() / 4.0])
        .flat_map(|v| v.to_le_bytes())
        .collect();
    store
        .cache(id, "embedding", &EmbedParams::default().dims(3).key(), &blob)
        .unwrap();
}

/// 64 PNGs of 32×32 in `dir`, and the provenance of rows holding the samples `order` names, each
/// sample `i` with the id `s<i>`, image `i % 64` and domain `site<i % 3>` (`scanner-x` from sample
/// `first_planted` on).
fn sources(dir: &std::path::Path, order: &[usize], first_planted: usize) -> failscope::sources::SampleSources {
    for k in 0..64u32 {
        let img = image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([(k * 4) as u8, (x * 8) as u8, (y * 8) as u8]));
        img.save(dir.join(format!("img{k}.png"))).unwrap();
    }
    failscope::sources::SampleSources {
        root: Some(dir.to_path_buf()),
        preprocess: failscope::preprocess::Preprocess {
            size: [32, 32],
            mean: [0.5; 3],
            std: [0.25; 3],
        },
        seed: 0,
        classes: (0..4).map(|c| format!("class {c}")).collect(),
        rows: order
            .iter()
            .map(|&i| failscope::sources::SampleSource {
                id: format!("s{i}"),
                index: i,
                image: Some(format!("img{}.png", i % 64)),
                corruption: None,
                domain: Some(if i >= first_planted {
                    "scanner-x".to_string()
                } else {
                    format!("site{}", i % 3)
                }),
                meta: IndexMap::new(),
            })
            .collect(),
        embedded: Vec::new(),
    }
}
