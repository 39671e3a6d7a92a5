//! The latent space: embedding quality against scikit-learn's t-SNE on fixed features, and
//! `failscope embed` / `failscope cluster` on a study inferred from images (cache, CSV, bad input).

use std::ffi::OsStr;
use std::path::Path;

use failscope::latent::{embed, quality, EmbedParams, Layout};
use failscope_e2e::{failscope, fixture, inferred_study, Run};
use ndarray::Array2;

fn npy(path: &Path) -> Array2<f32> {
    let bytes = std::fs::read(path).unwrap();
    let arr = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape: Vec<usize> = arr.shape().iter().map(|v| *v as usize).collect();
    Array2::from_shape_vec((shape[0], shape[1]), arr.into_vec::<f32>().unwrap()).unwrap()
}

/// PCA to 50 dimensions, the pipeline's first step: the scores equal scikit-learn's
/// `PCA(50).fit_transform` (its `covariance_eigh` solver, in float32) column by column, signs
/// included (`tests/fixtures/make_pca_fixture.py`).
#[test]
fn pca_scores_match_scikit_learn() {
    let dir = fixture("latent");
    let x = npy(&dir.join("features.npy"));
    let sk = npy(&dir.join("sklearn_pca.npy"));
    let z = failscope::latent::pca(x.view(), 50).unwrap();
    assert_eq!(z.dim(), sk.dim());
    let mut worst = (0, 0.0f32);
    for c in 0..50 {
        let scale = sk.column(c).iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let err = z
            .column(c)
            .iter()
            .zip(sk.column(c))
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
            / scale;
        if err > worst.1 {
            worst = (c, err);
        }
    }
    eprintln!("largest relative difference: component {} ({:.1e})", worst.0, worst.1);
    // scikit-learn works in float32 here (the features' type): its trailing components differ
    // from our f64 decomposition by ~3e-4 of their range; a wrong sign or axis would be ~1.
    assert!(worst.1 < 1e-3, "component {}: {:.1e} of its range", worst.0, worst.1);
}

#[test]
fn trustworthiness_matches_scikit_learn_and_beats_a_random_projection() {
    let dir = fixture("latent");
    let x = npy(&dir.join("features.npy"));
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let sk = expected["sklearn_tsne_trustworthiness"].as_f64().unwrap();
    let random = expected["random_projection_trustworthiness"].as_f64().unwrap();
    // The metric itself: on scikit-learn's embedding and on the random projection our
    // trustworthiness equals scikit-learn's. One rank step is 2 / (n k (2n − 3k − 1)) = 4.5e-8
    // here; near-tied float32 distances may rank a pair differently, so allow 20 steps.
    let t_sk = quality::trustworthiness(x.view(), npy(&dir.join("sklearn_tsne.npy")).view(), 10);
    assert!((t_sk - sk).abs() < 1e-6, "{t_sk} vs scikit-learn's {sk}");
    let t_random = quality::trustworthiness(x.view(), npy(&dir.join("random_projection.npy")).view(), 10);
    assert!(
        (t_random - random).abs() < 1e-6,
        "{t_random} vs scikit-learn's {random}"
    );
    // Our embedding of the same features: within 0.01 of scikit-learn's t-SNE, far above random.
    let y = embed(x.view(), &EmbedParams::default(), &|_, _| {
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(y.dim(), (x.nrows(), 2));
    // Deterministic: a second run (FFT repulsion at 1,500 points, all sums in fixed blocks) gives
    // the same bits.
    let again = embed(x.view(), &EmbedParams::default(), &|_, _| {
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert!(y == again, "two t-SNE runs of the same features differ");
    let t = quality::trustworthiness(x.view(), y.view(), 10);
    assert!((t - sk).abs() <= 0.01 || t > sk, "ours {t:.4} vs scikit-learn {sk:.4}");
    assert!(t > random + 0.2, "ours {t:.4} vs random projection {random:.4}");
    // 3-D (1,500 points: the Barnes-Hut octree, not the exact sum): within 0.01 of scikit-learn's
    // `TSNE(n_components=3)`, the SF-Visuals view.
    let sk3 = expected["sklearn_tsne3_trustworthiness"].as_f64().unwrap();
    let params3 = EmbedParams {
        dims: 3,
        ..EmbedParams::default()
    };
    let y3 = embed(x.view(), &params3, &|_, _| std::ops::ControlFlow::Continue(())).unwrap();
    assert_eq!(y3.dim(), (x.nrows(), 3));
    let t3 = quality::trustworthiness(x.view(), y3.view(), 10);
    assert!(
        (t3 - sk3).abs() <= 0.01 || t3 > sk3,
        "3-D: ours {t3:.4} vs scikit-learn {sk3:.4}"
    );
    // UMAP in 2-D and 3-D: within 0.01 of umap-learn's on the same PCA scores, or better.
    for (dims, key) in [(2, "umap_learn_trustworthiness"), (3, "umap_learn3_trustworthiness")] {
        let reference = expected[key].as_f64().unwrap();
        let params = EmbedParams::default().layout(Layout::Umap).dims(dims);
        let y = embed(x.view(), &params, &|_, _| std::ops::ControlFlow::Continue(())).unwrap();
        assert_eq!(y.dim(), (x.nrows(), dims));
        let t = quality::trustworthiness(x.view(), y.view(), 10);
        assert!(
            t >= reference - 0.01,
            "UMAP {dims}-D: ours {t:.4} vs umap-learn {reference:.4}"
        );
    }
    // It reports its iterations and stops at the first step whose callback says so.
    let steps = std::sync::atomic::AtomicUsize::new(0);
    let stopped = embed(x.view(), &params3, &|stage, _| {
        if stage == "t-SNE" && steps.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 2 {
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    });
    assert!(matches!(stopped, Err(failscope::latent::EmbedError::Cancelled)));
    assert_eq!(steps.load(std::sync::atomic::Ordering::Relaxed), 3);
}

fn cli(db: &Path, args: &[&str]) -> Run {
    let mut argv: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    argv.extend([OsStr::new("--db"), db.as_os_str()]);
    failscope(&argv)
}

#[test]
fn embed_and_cluster_a_study_with_caching() {
    let d = tempfile::tempdir().unwrap();
    let (db, _) = inferred_study(d.path());
    let n = failscope::store::Store::open(&db).unwrap().samples(1).unwrap().len();
    let csv = d.path().join("xy.csv");
    let args = [
        "embed",
        "1",
        "--perplexity",
        "10",
        "--out",
        csv.to_str().unwrap(),
        "--trustworthiness",
    ];
    let first = cli(&db, &args);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stdout.contains(&format!("{n} points in 2-D")) && first.stdout.contains("computed in"),
        "{}",
        first.stdout
    );
    assert!(first.stdout.contains("trustworthiness (k = 10"), "{}", first.stdout);
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(rows.lines().count(), n + 1);
    assert!(rows.starts_with("row,dataset_idx,label,predicted,x,y\n"));
    // Unchanged parameters: instant, from the cache, identical coordinates.
    std::fs::remove_file(&csv).unwrap();
    let again = cli(&db, &args);
    assert!(again.stdout.contains("from the cache"), "{}", again.stdout);
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), rows);
    // A changed parameter recomputes.
    let changed = cli(&db, &["embed", "1", "--perplexity", "12"]);
    assert!(changed.stdout.contains("computed in"), "{}", changed.stdout);
    // UMAP, written with its parameters; cached under its own key.
    let umap = cli(
        &db,
        &[
            "embed",
            "1",
            "--layout",
            "umap",
            "--neighbours",
            "10",
            "--min-dist",
            "0.3",
        ],
    );
    assert_eq!(umap.code, 0, "{}", umap.stderr);
    assert!(
        umap.stdout.contains("UMAP (10 neighbours, min_dist 0.3, PCA 50)") && umap.stdout.contains("computed in"),
        "{}",
        umap.stdout
    );
    // 3-D (Barnes-Hut).
    let three = cli(
        &db,
        &["embed", "1", "--dims", "3", "--perplexity", "10", "--iterations", "300"],
    );
    assert_eq!(three.code, 0, "{}", three.stderr);
    assert!(three.stdout.contains("in 3-D"), "{}", three.stdout);

    // k-means per class (3 classes × k = 4), as JSON: sizes add up, every sample assigned.
    let km = cli(&db, &["cluster", "1", "--k", "4", "--json"]);
    assert_eq!(km.code, 0, "{}", km.stderr);
    let c: failscope_shared::api::Clustering = serde_json::from_str(&km.stdout).unwrap();
    assert_eq!(c.clusters.len(), 12);
    assert_eq!(c.clusters.iter().map(|s| s.size).sum::<u64>(), n as u64);
    assert!(c.assignment.iter().all(|a| (0..12).contains(a)));
    for s in &c.clusters {
        // Per-class clusters hold one class; the representative is a member.
        assert_eq!(s.class_mix.iter().filter(|v| **v > 0).count(), 1);
        assert_eq!(c.assignment[s.representative as usize], s.id as i32);
        assert!(s.silent_failures <= s.failures);
    }
    // GMM and DBSCAN on the cached embedding, as tables.
    let gmm = cli(&db, &["cluster", "1", "--method", "gmm", "--k", "3", "--pca", "5"]);
    assert_eq!(gmm.code, 0, "{}", gmm.stderr);
    assert!(gmm.stdout.contains("3 clusters"), "{}", gmm.stdout);
    let db_args = [
        "cluster",
        "1",
        "--method",
        "dbscan",
        "--eps",
        "3",
        "--min-points",
        "4",
        "--space",
        "embedding",
        "--perplexity",
        "10",
    ];
    let dbscan = cli(&db, &db_args);
    assert_eq!(dbscan.code, 0, "{}", dbscan.stderr);
    assert!(
        dbscan.stdout.contains("silent failure = wrong with det_mcp"),
        "{}",
        dbscan.stdout
    );
    let cached = cli(&db, &db_args);
    assert!(cached.stdout.contains("(from the cache)"), "{}", cached.stdout);
}

#[test]
fn bad_latent_input_is_named() {
    let d = tempfile::tempdir().unwrap();
    let (db, out) = inferred_study(d.path());
    let r = cli(&db, &["embed", "1", "--perplexity", "500"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("too few for perplexity 500"), "{}", r.stderr);
    let r = cli(&db, &["cluster", "1", "--k", "100000", "--per-class", "false"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--k") && r.stderr.contains("100000 clusters"),
        "{}",
        r.stderr
    );
    let r = cli(&db, &["cluster", "1", "--csf", "nonsense"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no CSF \"nonsense\"") && r.stderr.contains("det_mcp"),
        "{}",
        r.stderr
    );
    // UMAP's parameters: exit 2, naming the flag and what is wrong.
    for (args, says) in [
        (
            &["--neighbours", "100000"][..],
            &["--neighbours", "100000 neighbours"][..],
        ),
        (&["--min-dist", "1.5"], &["--min-dist", "[0, 1)"]),
        (&["--epochs", "0"], &["--epochs", "0 epochs"]),
    ] {
        let r = cli(&db, &[&["embed", "1", "--layout", "umap"][..], args].concat());
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(says.iter().all(|s| r.stderr.contains(s)), "{args:?}: {}", r.stderr);
    }
    let r = cli(&db, &["embed", "1", "--layout", "pca"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--layout"), "{}", r.stderr);
    let r = cli(&db, &["embed", "7"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no study with id 7"), "{}", r.stderr);
    let r = cli(&db, &["cluster", "1", "--method", "dbscan"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--eps"), "{}", r.stderr);

    // A study without features (the FD-Shifts demo folder has no encoded_output.npz).
    failscope_e2e::import_demo_study(&db, "no features");
    let r = cli(&db, &["embed", "2"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("study 2") && r.stderr.contains("has no features"),
        "{}",
        r.stderr
    );

    // NaN in the features: named by row and column.
    let enc = out.join("test_results/encoded_output.npz");
    let a = failscope::io::npz::read(&enc, "arr_0").unwrap();
    let mut data = a.data.clone();
    data[5 * a.shape[1] + 2] = f64::NAN;
    let mut npz = npyz::npz::NpzWriter::new(std::fs::File::create(&enc).unwrap());
    failscope_e2e::write_npz_member(&mut npz, "arr_0", &[a.shape[0] as u64, a.shape[1] as u64], &data);
    drop(npz);
    failscope_e2e::import(&db, &out, None);
    let r = cli(&db, &["embed", "3"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("row 5, column 2 is NaN"), "{}", r.stderr);
}
