//! failscope's shared core: the HTTP API's types ([`api`]), its binary formats and defaults
//! ([`wire`]), the web app's view state ([`view`]) and the pure failure-detection analysis
//! ([`analysis`]): confidence scoring functions, FD-Shifts-exact metrics, risk–coverage curves.
//!
//! **Invariant:** no I/O, no tokio, no tch, no SQLite. This crate also compiles for
//! `wasm32-unknown-unknown` (checked by `cargo xtask test`), so the browser computes with the same
//! code as the server.
//!
//! ```
//! use failscope_shared::analysis::{metrics, EvalConfig};
//! // Ten samples, the two least confident are the failures: a perfect ranking.
//! let confids: Vec<f64> = (0..10).map(f64::from).collect();
//! let correct: Vec<bool> = (0..10).map(|i| i >= 2).collect();
//! let row = metrics::confid_metrics(&confids, &correct, &[0; 10], &EvalConfig::default());
//! assert_eq!(row["failauc"], Some(1.0));
//! ```
#![deny(missing_docs)]

pub mod analysis;
pub mod api;
pub mod view;
pub mod wire;
