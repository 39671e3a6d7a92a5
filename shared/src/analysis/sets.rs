//! Which test sets a risk–coverage chart draws, and their rows: one rule for the server's figures
//! and the browser's chart, so the two never disagree.

/// One test set's rows for one CSF.
#[derive(Debug, Clone, PartialEq)]
pub struct SetRows {
    /// Dataset index.
    pub idx: usize,
    /// The CSF's confidence per row.
    pub confidence: Vec<f64>,
    /// Whether each row's prediction is correct.
    pub correct: Vec<bool>,
}

/// The rows of each test set that gets a curve, in dataset-index order. With `only`, that set alone
/// (none when it has no rows). Otherwise every test set with rows; the validation set (index 0)
/// only when it is all there is, since it tunes the CSFs rather than testing them.
pub fn curves_by_test_set(
    dataset_idx: &[usize],
    confidence: &[f64],
    correct: &[bool],
    only: Option<usize>,
) -> Vec<SetRows> {
    let n = dataset_idx.len().min(confidence.len()).min(correct.len());
    let sets = dataset_idx[..n].iter().max().map_or(0, |m| m + 1);
    let mut rows: Vec<SetRows> = (0..sets)
        .map(|idx| SetRows {
            idx,
            confidence: Vec::new(),
            correct: Vec::new(),
        })
        .collect();
    for i in 0..n {
        let set = &mut rows[dataset_idx[i]];
        set.confidence.push(confidence[i]);
        set.correct.push(correct[i]);
    }
    rows.retain(|s| !s.confidence.is_empty());
    match only {
        Some(k) => rows.retain(|s| s.idx == k),
        None if rows.iter().any(|s| s.idx > 0) => rows.retain(|s| s.idx > 0),
        None => {}
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_is_drawn_only_when_it_is_all_there_is() {
        let idx = [0, 2, 2, 0, 3];
        let conf = [0.1, 0.2, 0.3, 0.4, 0.5];
        let ok = [true, false, true, true, false];
        let sets = curves_by_test_set(&idx, &conf, &ok, None);
        assert_eq!(sets.iter().map(|s| s.idx).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(sets[0].confidence, [0.2, 0.3]);
        assert_eq!(sets[0].correct, [false, true]);
        assert_eq!(curves_by_test_set(&[0, 0], &[0.1, 0.2], &[true, false], None)[0].idx, 0);
        assert_eq!(curves_by_test_set(&idx, &conf, &ok, Some(0))[0].confidence, [0.1, 0.4]);
        assert!(curves_by_test_set(&idx, &conf, &ok, Some(1)).is_empty());
        assert!(curves_by_test_set(&[], &[], &[], None).is_empty());
    }
}
