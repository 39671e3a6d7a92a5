//! Scoring users' own per-sample outputs from a CSV.

use failscope_e2e::failscope;
use serde_json::Value;

#[test]
fn confidence_and_correct_columns() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("scores.csv");
    // Ten rows; the two failures (rows 0 and 2, set a) are the least confident: a perfect ranking.
    let mut s = String::from("confidence,correct,test_set\n");
    for i in 0..10 {
        s.push_str(&format!(
            "{},{},{}\n",
            f64::from(i) / 10.0,
            u8::from(i != 0 && i != 2),
            if i % 2 == 0 { "a" } else { "b" }
        ));
    }
    std::fs::write(&p, s).unwrap();
    let r = failscope(&["eval".as_ref(), p.as_os_str(), "--format".as_ref(), "json".as_ref()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["a"]["confidence"]["failauc"], 1.0);
    assert_eq!(v["a"]["confidence"]["accuracy"], 0.6);
    assert_eq!(v["b"]["confidence"]["accuracy"], 1.0);
    assert_eq!(v["b"]["confidence"]["failauc"], Value::Null, "one class only");
}

#[test]
fn softmax_columns_with_validation_set_give_platt_scaled_pe() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("softmax.csv");
    let mut s = String::from("p0,p1,label,test_set\n");
    for i in 0..40 {
        let p0 = 0.05 + 0.9 * f64::from(i) / 39.0;
        let set = if i % 2 == 0 { "val_tuning" } else { "test" };
        s.push_str(&format!("{p0},{},{},{set}\n", 1.0 - p0, i % 3 % 2));
    }
    std::fs::write(&p, s).unwrap();
    let r = failscope(&["eval".as_ref(), p.as_os_str(), "--format".as_ref(), "json".as_ref()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let test = &v["test"];
    assert!(test["det_mcp"]["aurc"].as_f64().unwrap() > 0.0);
    assert!(test["det_pe"]["ece"].is_number());
    assert_eq!(test["det_mcp"]["n_test"], 20.0);
}
