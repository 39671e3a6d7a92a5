//! Group-aware, seeded train/val/test splits: every sample of a group (a lesion, a patient) lands in
//! the same split, so test images never leak into training through a sibling image.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Sample, Split};

/// Target fractions of samples (they are met as closely as whole groups allow).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fractions {
    /// Share of training samples.
    pub train: f64,
    /// Share of validation samples.
    pub val: f64,
}

/// Assigns a split to every sample: groups (a sample without a group is its own group) are shuffled
/// with `seed` and filled into train, then val, then test by cumulative sample count.
pub fn group_split(samples: &[Sample], fractions: Fractions, seed: u64) -> Vec<Split> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, s) in samples.iter().enumerate() {
        let key = s.group.clone().unwrap_or_else(|| format!("\u{0}sample:{}", s.id));
        let g = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    // Sort by key first so the shuffle does not depend on the input order of groups.
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    groups.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n = samples.len() as f64;
    let mut out = vec![Split::Test; samples.len()];
    let mut taken = 0usize;
    for (_, members) in groups {
        let share = taken as f64 / n;
        let split = if share < fractions.train {
            Split::Train
        } else if share < fractions.train + fractions.val {
            Split::Val
        } else {
            Split::Test
        };
        for &i in &members {
            out[i] = split;
        }
        taken += members.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageRef;

    fn samples(n: usize) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample {
                id: i.to_string(),
                image: ImageRef::File(format!("{i}.jpg").into()),
                label: 0,
                group: Some(format!("lesion{}", i / 3)),
                domain: None,
                split: None,
                meta: Default::default(),
            })
            .collect()
    }

    #[test]
    fn groups_stay_together_and_fractions_are_met() {
        let s = samples(3000);
        let f = Fractions { train: 0.7, val: 0.1 };
        let split = group_split(&s, f, 42);
        for g in split.chunks(3) {
            assert!(g.iter().all(|x| *x == g[0]), "a lesion's images share a split");
        }
        let share = |which: Split| split.iter().filter(|x| **x == which).count() as f64 / 3000.0;
        assert!((share(Split::Train) - 0.7).abs() < 0.01);
        assert!((share(Split::Val) - 0.1).abs() < 0.01);
        assert_eq!(split, group_split(&s, f, 42), "seeded");
        assert_ne!(split, group_split(&s, f, 43));
    }
}
