//! failscope's server library: ingest (FD-Shifts folders, CSV), TorchScript inference through tch, the
//! SQLite study store and the axum HTTP API. The `failscope` binary is a thin wrapper over [`cli::run`].
//!
//! **Invariant:** only this crate touches disk, SQLite and libtorch; the maths lives in
//! `failscope_shared::analysis`.

pub mod bench;
pub mod cli;
pub mod csv_input;
pub mod data;
pub mod error;
pub mod export;
pub mod fdshifts;
pub mod http;
pub mod infer;
pub mod ingest;
pub mod io;
pub mod latent;
pub mod plot;
pub mod preprocess;
pub mod recipe;
pub mod report;
pub mod shift;
pub mod sources;
pub mod store;
pub mod torch;
pub mod train;
