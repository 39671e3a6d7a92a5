//! FD-Shifts' `hydra/config.yaml`, interpolation included.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = common::file("config.yaml", data);
    let _ = failscope::fdshifts::config::load(&path);
});
