//! The pure analysis: confidence scoring functions, FD-Shifts' metrics and risk–coverage curves.
//! Functions of slices in, numbers out: no I/O, no allocation beyond what the result needs.

pub mod bootstrap;
pub mod calibration;
pub mod compare;
pub mod csf;
pub mod experiment;
pub mod features;
pub mod hotspots;
pub mod metrics;
pub mod numpy;
pub mod platt;
pub mod ranking;
pub mod rc;
pub mod regions;
pub mod roc;
pub mod scoring;
pub mod sets;
pub mod sgr;
pub mod sleef;
pub mod studies;
pub mod temperature;
#[cfg(test)]
mod test_vectors;

pub use metrics::{Compat, EvalConfig, MetricRow};
pub use rc::TieOrder;
