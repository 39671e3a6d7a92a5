//! FD-Shifts' own metric test vectors (`fd_shifts/tests/analysis/test_metrics.py`), N = 100, for the
//! unit tests that reproduce its published values.

/// Correctness and confidence vectors, named as in FD-Shifts' tests.
pub struct Vectors {
    /// `arange(100) % 2`: alternating, the first row a failure.
    pub some_correct: Vec<bool>,
    /// All confidences 1.
    pub all: Vec<f64>,
    /// `arange(100) % 2`: a perfect ranking for `some_correct`.
    pub some: Vec<f64>,
    /// `(arange(100) + 1) % 2`: the inverted ranking.
    pub inv: Vec<f64>,
    /// `arange(10).repeat(10) * 0.1`: ten tie groups.
    pub med: Vec<f64>,
    /// All confidences 0.
    pub none: Vec<f64>,
    /// `arange(-50, 50)`: outside [0, 1].
    pub unnorm: Vec<f64>,
}

/// The vectors.
pub fn vectors() -> Vectors {
    Vectors {
        some_correct: (0..100).map(|i| i % 2 == 1).collect(),
        all: vec![1.0; 100],
        some: (0..100).map(|i| f64::from(i % 2)).collect(),
        inv: (0..100).map(|i| f64::from((i + 1) % 2)).collect(),
        med: (0..100).map(|i| f64::from(i / 10) * 0.1).collect(),
        none: vec![0.0; 100],
        unnorm: (-50..50).map(f64::from).collect(),
    }
}
