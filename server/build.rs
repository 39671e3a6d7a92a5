// Build script of the server: libtorch's rpath (see build_rpath.rs) and the C++ shim for
// MC-dropout (src/torch/shim.cpp), compiled against the same libtorch headers that tch uses.
include!("build_rpath.rs");

fn main() {
    let Some(libtorch) = libtorch_rpath() else {
        panic!("LIBTORCH is not set: run `cargo xtask setup` (the workspace's .cargo/config.toml points it at .torch/libtorch)");
    };
    println!("cargo:rerun-if-changed=src/torch/shim.cpp");
    let include = libtorch.join("include");
    cc::Build::new()
        .cpp(true)
        .file("src/torch/shim.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag_if_supported("-w")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("GLOG_USE_GLOG_EXPORT", None)
        .compile("failscope_torch_shim");
}
