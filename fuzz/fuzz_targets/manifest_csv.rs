//! Image-folder manifests (`path,label[,domain][,split][,group]`).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = common::file("manifest.csv", data);
    let _ = failscope::data::manifest::load(&path);
});
