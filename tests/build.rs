// Same rpath for libtorch as the server crate: test binaries link tch through it.
include!("../server/build.rs");
