// Test binaries link tch through the server library: they need libtorch's rpath too.
include!("../server/build_rpath.rs");

fn main() {
    libtorch_rpath();
}
