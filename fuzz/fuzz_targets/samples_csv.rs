//! Per-sample output CSVs (`confidence,correct` or `p0,…,label`), scored end to end.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = common::file("outputs.csv", data);
    let _ = failscope::csv_input::evaluate(&path, &failscope_shared::analysis::EvalConfig::default());
});
