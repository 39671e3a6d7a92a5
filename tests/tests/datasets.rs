//! Dataset loaders and shift designs. Synthetic data made here checks the formats and the errors;
//! the real HAM10000 and MedMNIST files (`FAILSCOPE_DATA`, see the data folder's README) check the
//! numbers against their published composition. `cargo xtask test` runs the ignored ones.

use std::path::{Path, PathBuf};

use failscope::data::split::Fractions;
use failscope::data::{ham10000, manifest, medmnist, Split};
use failscope::shift::corrupt::Corruption;
use failscope::shift::{design, label_mix, ShiftPlan};
use failscope_e2e::write_npz_member;

fn data_dir() -> PathBuf {
    failscope::data::data_dir(None).expect("set FAILSCOPE_DATA to the folder holding ham10000/ and medmnist/")
}

fn write_medmnist(path: &Path, rgb: bool, label_shape_2d: bool) {
    let mut npz = npyz::npz::NpzWriter::new(std::fs::File::create(path).unwrap());
    for (split, n) in [("train", 6u64), ("val", 2), ("test", 3)] {
        let shape: Vec<u64> = if rgb { vec![n, 4, 5, 3] } else { vec![n, 4, 5] };
        let len = shape.iter().product::<u64>() as usize;
        let pixels: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        write_npz_member::<u8>(&mut npz, &format!("{split}_images"), &shape, &pixels);
        let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let lshape = if label_shape_2d { vec![n, 1] } else { vec![n] };
        write_npz_member::<u8>(&mut npz, &format!("{split}_labels"), &lshape, &labels);
    }
}

#[test]
fn medmnist_grey_and_rgb_with_either_label_shape() {
    let d = tempfile::tempdir().unwrap();
    for (rgb, two_d) in [(false, false), (true, true)] {
        let p = d.path().join(format!("toymnist_{rgb}.npz"));
        write_medmnist(&p, rgb, two_d);
        let ds = medmnist::load(&p).unwrap();
        assert_eq!(ds.samples.len(), 11);
        assert_eq!(ds.classes, vec!["0", "1", "2"]);
        let img = ds.samples[0].load_rgb().unwrap();
        assert_eq!(img.dimensions(), (5, 4));
        if !rgb {
            let p = img.get_pixel(1, 0).0;
            assert!(p[0] == p[1] && p[1] == p[2], "grey is replicated");
        }
        assert_eq!(ds.samples.iter().filter(|s| s.split == Some(Split::Val)).count(), 2);
    }
    let bad = d.path().join("bad.npz");
    let mut npz = npyz::npz::NpzWriter::new(std::fs::File::create(&bad).unwrap());
    write_npz_member::<u8>(&mut npz, "train_images", &[2, 3], &[0; 6]);
    drop(npz);
    let e = medmnist::load(&bad).unwrap_err();
    assert!(e.problem.contains("train_images has shape [2, 3]"), "{e}");
}

#[test]
fn manifest_folder_and_its_errors() {
    let d = tempfile::tempdir().unwrap();
    for (i, name) in ["a.png", "b.png", "c.png"].iter().enumerate() {
        image::RgbImage::from_pixel(3, 2, image::Rgb([i as u8 * 50, 0, 0]))
            .save(d.path().join(name))
            .unwrap();
    }
    let csv = d.path().join("manifest.csv");
    std::fs::write(&csv, "path,label,domain,split,group,age\na.png,tumour,site1,train,p1,50\nb.png,normal,site2,test,p2,61\nc.png,normal,site1,val,p1,50\n").unwrap();
    let ds = manifest::load(&csv).unwrap();
    assert_eq!(ds.classes, vec!["normal", "tumour"]);
    assert_eq!(ds.samples[0].label, 1);
    assert_eq!(ds.samples[1].domain.as_deref(), Some("site2"));
    assert_eq!(ds.samples[2].split, Some(Split::Val));
    assert_eq!(ds.samples[0].meta["age"], "50");
    assert_eq!(ds.samples[1].load_rgb().unwrap().dimensions(), (3, 2));
    std::fs::write(&csv, "file,label\na.png,x\n").unwrap();
    assert!(manifest::load(&csv)
        .unwrap_err()
        .problem
        .contains("needs `path` and `label`"));
    std::fs::write(&csv, "path,label\nmissing.png,x\n").unwrap();
    let e = manifest::load(&csv).unwrap_err();
    assert!(e.item.ends_with("missing.png") && e.problem.contains("line 2"), "{e}");
    std::fs::write(d.path().join("broken.png"), b"not a png").unwrap();
    std::fs::write(&csv, "path,label\nbroken.png,x\n").unwrap();
    let e = manifest::load(&csv).unwrap().samples[0].load_rgb().unwrap_err();
    assert!(
        e.item.ends_with("broken.png") && e.problem.contains("unreadable image"),
        "{e}"
    );
}

#[test]
#[ignore = "needs the real data: FAILSCOPE_DATA (run by `cargo xtask test`)"]
fn ham10000_matches_its_published_composition() {
    let dir = data_dir().join("ham10000");
    let ds = ham10000::load(&dir, ham10000::Task::SevenClass).unwrap();
    assert_eq!(ds.samples.len(), 10015);
    let counts = ds.class_counts();
    let by_dx: Vec<(String, usize)> = ds.classes.iter().cloned().zip(counts).collect();
    assert_eq!(
        by_dx,
        [
            ("akiec", 327),
            ("bcc", 514),
            ("bkl", 1099),
            ("df", 115),
            ("mel", 1113),
            ("nv", 6705),
            ("vasc", 142)
        ]
        .map(|(d, n)| (d.to_string(), n))
    );
    let lesions: std::collections::HashSet<_> = ds.samples.iter().filter_map(|s| s.group.clone()).collect();
    assert_eq!(lesions.len(), 7470);
    let img = ds.samples[0].load_rgb().unwrap();
    assert_eq!(img.dimensions(), (200, 150));

    let binary = ham10000::load(&dir, ham10000::Task::Binary).unwrap();
    assert_eq!(binary.class_counts(), vec![10015 - 1954, 1954]);
    // The paper's shifts: two sites held out, bkl + akiec held out of training.
    let plan = ShiftPlan {
        held_out_domains: vec!["vidir_molemax".into(), "vienna_dias".into()],
        held_out_subtypes: Some(("dx".into(), vec!["bkl".into(), "akiec".into()])),
        corruptions: vec![Corruption::BlackCorners],
        fractions: Fractions { train: 0.7, val: 0.1 },
        seed: 0,
    };
    let d = design(&binary, &plan).unwrap();
    let set = |name: &str| d.test_sets.iter().find(|t| t.name == name).unwrap();
    assert_eq!(set("acquisition_vidir_molemax").rows.len(), 3954);
    assert_eq!(set("acquisition_vienna_dias").rows.len(), 439);
    // Label mix changes with the site (data README table): molemax has 26 malignant, dias 72.
    assert_eq!(
        label_mix(&binary, &set("acquisition_vidir_molemax").rows)["malignant"],
        26
    );
    assert_eq!(
        label_mix(&binary, &set("acquisition_vienna_dias").rows)["malignant"],
        72
    );
    // bkl + akiec from rosendahl and vidir_modern: 490 + 475 + 295 + 32.
    assert_eq!(set("manifestation_bkl+akiec").rows.len(), 1292);
    let in_site = 2259 + 3363 - 1292;
    assert_eq!(d.train.len() + d.val.len() + set("iid").rows.len(), in_site);
    for &i in &d.train {
        let s = &binary.samples[i];
        assert!(!["bkl", "akiec"].contains(&s.meta["dx"].as_str()));
        assert!(["rosendahl", "vidir_modern"].contains(&s.domain.as_deref().unwrap()));
    }
}

#[test]
#[ignore = "needs the real data: FAILSCOPE_DATA (run by `cargo xtask test`)"]
fn medmnist_files_match_the_official_splits() {
    let dir = data_dir().join("medmnist");
    for (file, sizes, classes, rgb) in [
        ("breastmnist.npz", [546, 78, 156], 2, false),
        ("pneumoniamnist.npz", [4708, 524, 624], 2, false),
        ("retinamnist.npz", [1080, 120, 400], 5, true),
    ] {
        let ds = medmnist::load(&dir.join(file)).unwrap();
        let count = |s: Split| ds.samples.iter().filter(|x| x.split == Some(s)).count();
        assert_eq!(
            [count(Split::Train), count(Split::Val), count(Split::Test)],
            sizes,
            "{file}"
        );
        assert_eq!(ds.classes.len(), classes, "{file}");
        let img = ds.samples[0].load_rgb().unwrap();
        assert_eq!(img.dimensions(), (28, 28));
        let colourful = img.pixels().any(|p| p.0[0] != p.0[1] || p.0[1] != p.0[2]);
        assert_eq!(colourful, rgb, "{file}");
        assert_eq!(ds.greyscale, !rgb, "{file}");
    }
}

#[test]
#[ignore = "needs the real data: FAILSCOPE_DATA (run by `cargo xtask test`)"]
fn dataset_command_summarises_the_real_data() {
    let data = data_dir();
    let r = failscope_e2e::failscope(&[
        "dataset".as_ref(),
        "ham10000".as_ref(),
        "--data".as_ref(),
        data.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("ham10000-binary: 10015 samples, 2 classes"),
        "{}",
        r.stdout
    );
    for line in ["malignant", "1954", "vidir_molemax", "3954", "vienna_dias", "439"] {
        assert!(r.stdout.contains(line), "{line} in {}", r.stdout);
    }
    let r = failscope_e2e::failscope(&["dataset", "medmnist/retinamnist.npz"]);
    assert_eq!(r.code, 0, "FAILSCOPE_DATA resolves relative paths: {}", r.stderr);
    assert!(
        r.stdout.contains("grade 4") && r.stdout.contains("train") && r.stdout.contains("1080"),
        "{}",
        r.stdout
    );
    let r = failscope_e2e::failscope(&["dataset", "imagenet"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown source \"imagenet\""), "{}", r.stderr);
}

#[test]
#[ignore = "needs the real data: FAILSCOPE_DATA (run by `cargo xtask test`)"]
fn every_committed_recipe_loads_its_data_and_designs_its_shifts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/recipes");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let r = failscope::recipe::Recipe::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let ds = failscope::data::load(&r.data.source, Some(&data_dir())).unwrap_or_else(|e| panic!("{e}"));
        let d = design(&ds, &r.plan().unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let corrupted: Vec<&str> = d
            .test_sets
            .iter()
            .filter_map(|t| t.name.strip_prefix("corruption_"))
            .collect();
        assert!(corrupted.len() >= 25, "{}: {corrupted:?}", path.display());
        if ds.greyscale {
            assert!(
                corrupted
                    .iter()
                    .all(|c| !c.starts_with("hair") && !c.starts_with("black_corners")),
                "{}: dermoscopy corruptions on greyscale data",
                path.display()
            );
        }
        seen.push(r.name);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "breastmnist",
            "ham10000-binary",
            "pneumoniamnist",
            "pneumoniamnist-demo",
            "retinamnist"
        ]
    );
}
