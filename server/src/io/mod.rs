//! The lowest layer: reading and writing files, with nothing of failscope's domain in it — `.npz`
//! arrays with shape checks that name the file, and folders written atomically (a staging folder
//! renamed into place, so a reader sees it complete or not at all).

pub mod atomic;
pub mod npz;
