//! Study recipes (TOML).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = common::file("recipe.toml", data);
    let _ = failscope::recipe::Recipe::load(&path);
});
