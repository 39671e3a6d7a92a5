//! Intermediate layouts of a running embedding, for views that animate the points into place.

/// Where an embedding's intermediate layouts go while it is optimised. The optimiser asks
/// [`due`](Live::due) after every iteration or epoch (it must be cheap) and copies its
/// coordinates out only when it answers `true`.
pub trait Live: Sync {
    /// Whether a layout is wanted now.
    fn due(&self) -> bool;
    /// The current layout, `rows × dims` row-major.
    fn show(&self, coords: Vec<f32>, dims: usize);
}

/// No intermediate layouts.
impl Live for () {
    fn due(&self) -> bool {
        false
    }
    fn show(&self, _: Vec<f32>, _: usize) {}
}
