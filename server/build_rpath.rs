// Bakes libtorch's library folder into the binary's rpath (torch-sys' own rpath never reaches the
// final link), so `failscope` and its tests run without LD_LIBRARY_PATH. Shared by the build
// scripts of every crate whose binaries link tch.

fn libtorch_rpath() -> Option<std::path::PathBuf> {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let libtorch = std::path::PathBuf::from(std::env::var("LIBTORCH").ok()?);
    let lib = libtorch.join("lib");
    let lib = lib.canonicalize().unwrap_or(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    // Where `--device cuda` finds libtorch_cuda.so at run time (`torch::load_cuda`).
    println!("cargo:rustc-env=FAILSCOPE_LIBTORCH_LIB={}", lib.display());
    Some(libtorch)
}
