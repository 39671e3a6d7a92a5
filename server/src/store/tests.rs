//! Store round trips and migration.
use super::*;
use failscope_shared::analysis::metrics::MetricRow;
use indexmap::IndexMap;

#[test]
fn insert_list_get_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("s.db")).unwrap();
    let features = ndarray::array![[1.0f32, -2.5, 3.0], [0.5, 0.25, f32::NAN]];
    let mc = ndarray::Array3::from_shape_fn((2, 2, 4), |(i, c, m)| (i * 100 + c * 10 + m) as f32);
    let mut report = Report::new();
    let row = MetricRow::from([("aurc".to_string(), Some(12.5)), ("ece".to_string(), None)]);
    report.insert("iid_study".into(), IndexMap::from([("det_mcp".to_string(), row)]));
    let id = store
        .insert(
            &NewStudy {
                name: "demo",
                source: "/x",
                compat: "current",
            },
            &Evaluated {
                kind: "fd-shifts",
                n_classes: 2,
                n_samples: 10,
                report: report.clone(),
                files: vec![("hydra/config.yaml".to_string(), b"data: {}".to_vec())],
                samples: vec![
                    SampleRecord {
                        row: 0,
                        dataset_idx: 1,
                        label: 1,
                        predicted: 0,
                    },
                    SampleRecord {
                        row: 1,
                        dataset_idx: 2,
                        label: 0,
                        predicted: 0,
                    },
                ],
                features: Some(features.clone()),
                mc: Some(mc.clone()),
                scores: IndexMap::from([("det_mcp".to_string(), vec![0.9, f64::NAN])]),
                probs: None,
                sources: None,
                test_sets: ["val_tuning", "iid_study", "in_class_study_d7"]
                    .map(String::from)
                    .to_vec(),
            },
        )
        .unwrap();
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].test_sets, vec!["iid_study"]);
    assert_eq!(list[0].csfs, vec!["det_mcp"]);
    let detail = store.get(id).unwrap().unwrap();
    assert_eq!(detail.report, report);
    assert!(store.get(id + 1).unwrap().is_none());
    assert_eq!(store.files(id).unwrap()[0].1, b"data: {}");
    assert_eq!(store.samples(id).unwrap()[0].dataset_idx, 1);
    let back = store.features(id).unwrap().unwrap();
    assert_eq!(back.row(0), features.row(0));
    assert!(back[[1, 2]].is_nan() && back[[1, 1]] == 0.25);
    assert_eq!(store.mc(id, 1).unwrap().unwrap()[[1, 3]], 113.0);
    assert!(store.mc(id, 2).unwrap().is_none());
    let scores = store.scores(id).unwrap();
    assert_eq!(scores["det_mcp"][0], 0.9);
    assert!(scores["det_mcp"][1].is_nan());
    assert!(store.cached(id, "embedding", "{}").unwrap().is_none());
    store.cache(id, "embedding", "{}", b"xy").unwrap();
    assert_eq!(store.cached(id, "embedding", "{}").unwrap().unwrap(), b"xy");
    let link = store.create_link("study=1&color=confusion").unwrap();
    assert_eq!(link.len(), 16);
    assert_ne!(store.create_link("study=1&color=confusion").unwrap(), link);
    assert_eq!(store.link(&link).unwrap().as_deref(), Some("study=1&color=confusion"));
    assert!(store.link("nope").unwrap().is_none());
    assert_eq!(store.sample(id, 1).unwrap().unwrap().record.dataset_idx, 2);
    assert!(store.image_settings(id).unwrap().is_none());
    assert_eq!(store.classes(id).unwrap(), ["class 0", "class 1"]);
    let sets = store.test_sets(id).unwrap();
    let named: Vec<(&str, u64)> = sets.iter().map(|t| (t.name.as_str(), t.size)).collect();
    assert_eq!(named, [("val_tuning", 0), ("iid_study", 1), ("in_class_study_d7", 1)]);
    assert!(store.exists(id).unwrap() && !store.exists(id + 1).unwrap());
    let facts = store.facts(id).unwrap().unwrap();
    assert_eq!((facts.n_samples, facts.has_features), (10, true));
    assert_eq!(facts.csfs, ["det_mcp"]);
    assert!(store.facts(id + 1).unwrap().is_none());
    let ranks = StudyScores::new(&store.samples(id).unwrap(), store.scores(id).unwrap());
    let detail = store.sample_detail(id, 1, &ranks).unwrap().unwrap();
    assert_eq!(detail.test_set, "in_class_study_d7");
    assert_eq!(
        (detail.label_name.as_str(), detail.predicted_name.as_str()),
        ("class 0", "class 0")
    );
    assert_eq!(detail.scores[0].score, None, "a NaN score is no score");
    let detail = store.sample_detail(id, 0, &ranks).unwrap().unwrap();
    assert_eq!(
        (detail.scores[0].score, detail.scores[0].percentile),
        (Some(0.9), Some(0.0))
    );
    assert!(store.sample_detail(id, 2, &ranks).unwrap().is_none());

    // A stored JSON value that does not decode is an error naming study and column, not a default.
    store
        .conn
        .execute_batch("UPDATE samples SET meta = '{\"site\": 3'; UPDATE studies SET classes = '[1, 2]';")
        .unwrap();
    for err in [store.sample_meta(id).unwrap_err(), store.sample(id, 0).unwrap_err()] {
        assert!(
            err.to_string()
                .contains(&format!("study {id} has an unreadable `meta` value")),
            "{err}"
        );
    }
    let err = store.classes(id).unwrap_err().to_string();
    assert!(err.contains("unreadable `classes` value"), "{err}");
}

#[test]
fn opens_a_version_1_store_and_adds_the_array_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let old = Connection::open(&path).unwrap();
    old.execute_batch(
        "CREATE TABLE studies (id INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, source TEXT NOT NULL, created_at TEXT NOT NULL DEFAULT 'x', n_classes INTEGER NOT NULL, n_samples INTEGER NOT NULL, compat TEXT NOT NULL, report_json TEXT NOT NULL);
         CREATE TABLE samples (study_id INTEGER NOT NULL, row INTEGER NOT NULL, dataset_idx INTEGER NOT NULL, label INTEGER NOT NULL, predicted INTEGER NOT NULL, PRIMARY KEY (study_id, row));
         INSERT INTO studies (name, kind, source, n_classes, n_samples, compat, report_json) VALUES ('old', 'csv', '/x', 2, 1, 'current', '{}');",
    )
    .unwrap();
    drop(old);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.list().unwrap()[0].name, "old");
    assert!(store.features(1).unwrap().is_none());
}

#[test]
fn a_version_3_store_gets_the_test_set_names_earlier_versions_showed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    let mut store = Store::open(&path).unwrap();
    let mut report = Report::new();
    for study in ["val_tuning", "iid_study", "in_class_study_d7", "in_class_study_ph2"] {
        report.insert(study.into(), IndexMap::new());
    }
    let record = |row, dataset_idx| SampleRecord {
        row,
        dataset_idx,
        label: 0,
        predicted: 0,
    };
    let evaluated = |samples: Vec<SampleRecord>, report: Report| Evaluated {
        kind: "fd-shifts",
        n_classes: 2,
        n_samples: samples.len() as u64,
        report,
        files: Vec::new(),
        samples,
        features: None,
        mc: None,
        scores: IndexMap::new(),
        probs: None,
        sources: None,
        test_sets: Vec::new(),
    };
    let study = NewStudy {
        name: "old",
        source: "/x",
        compat: "current",
    };
    let rows = vec![record(0, 0), record(1, 1), record(2, 2), record(3, 3), record(4, 3)];
    let a = store.insert(&study, &evaluated(rows, report)).unwrap();
    // Index 4 is beyond the report's in-class studies: earlier versions called every set but the
    // first two `dataset <k>`.
    let b = store
        .insert(&study, &evaluated(vec![record(0, 0), record(1, 4)], Report::new()))
        .unwrap();
    let c = store.insert(&study, &evaluated(Vec::new(), Report::new())).unwrap();
    // Make it a version 3 store: no test-set table.
    store
        .conn
        .execute_batch("DROP TABLE test_sets; PRAGMA user_version = 3;")
        .unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    let version: i64 = store
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, super::schema::VERSION);
    let sets = |id| -> Vec<(String, u64)> {
        store
            .test_sets(id)
            .unwrap()
            .into_iter()
            .map(|t| (t.name, t.size))
            .collect()
    };
    let expect = |v: &[(&str, u64)]| -> Vec<(String, u64)> { v.iter().map(|(n, s)| (n.to_string(), *s)).collect() };
    assert_eq!(
        sets(a),
        expect(&[
            ("val_tuning", 1),
            ("iid_study", 1),
            ("in_class_study_d7", 1),
            ("in_class_study_ph2", 2)
        ])
    );
    assert_eq!(
        sets(b),
        expect(&[
            ("val_tuning", 1),
            ("iid_study", 0),
            ("dataset 2", 0),
            ("dataset 3", 0),
            ("dataset 4", 1)
        ])
    );
    assert!(sets(c).is_empty());
    // Opening again changes nothing.
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.test_sets(a).unwrap().len(), 4);
}
