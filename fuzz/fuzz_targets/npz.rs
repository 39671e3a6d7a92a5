//! `.npz` archives (FD-Shifts outputs, features, MedMNIST): any bytes give an array or an error,
//! never a panic or an allocation the file cannot back.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = common::file("input.npz", data);
    let _ = failscope::io::npz::read_all(&path);
    let _ = failscope::io::npz::read_u8(&path, "train_images");
});
