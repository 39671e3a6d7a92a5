//! The repulsive forces of 3-D t-SNE by Barnes-Hut (van der Maaten 2014) over an octree, both
//! cores busy: the tree is rebuilt each iteration from the points sorted by Morton code (a
//! parallel sort), and each point's forces are summed in parallel, in that order, so that
//! neighbouring points walk the same nodes while they are in cache.
//!
//! Written here: linfa-tsne's Barnes-Hut runs on one thread (647 s for 20,000 points in 3-D on 2
//! cores) and no maintained crate offers a parallel t-SNE octree; the FFT interpolation that serves
//! 2-D ([`super::fft`]) needs a grid that grows with the cube of its size in 3-D.

use rayon::prelude::*;
use wide::f32x8;

/// A cell is summarised by its centre of mass when its width is below `THETA` × its distance
/// (scikit-learn's and openTSNE's `angle`, 0.5).
pub const THETA: f32 = 0.5;

/// Cells with at most this many points are not split: their points are summed exactly.
const LEAF: usize = 8;

/// Cells with at most this many points walk the tree together ([`Tree::group_forces`]).
const GROUP: usize = 48;

/// Bits of each coordinate in a Morton code (3 × 21 = 63).
const BITS: u32 = 21;

#[derive(Debug, Clone, Copy)]
struct Node {
    /// Centre of mass.
    com: [f32; 3],
    /// Points in the cell.
    count: f32,
    /// The cell's width squared.
    width2: f32,
    /// Its points in the sorted order: `start..end`.
    start: u32,
    end: u32,
    /// Its children, `first_child..first_child + children` in the node list (0 children: a leaf).
    first_child: u32,
    children: u32,
}

/// Spreads the low 21 bits of `v` three apart.
pub(super) fn spread(v: u64) -> u64 {
    let mut x = v & 0x1f_ffff;
    x = (x | x << 32) & 0x1f_0000_0000_ffff;
    x = (x | x << 16) & 0x1f_0000_ff00_00ff;
    x = (x | x << 8) & 0x100f_00f0_0f00_f00f;
    x = (x | x << 4) & 0x10c3_0c30_c30c_30c3;
    (x | x << 2) & 0x1249_2492_4924_9249
}

/// An octree over the points of one iteration.
struct Tree {
    nodes: Vec<Node>,
    /// The points in Morton order, and each one's index in the input.
    points: Vec<[f32; 3]>,
    order: Vec<u32>,
}

impl Tree {
    fn new(y: &[f64]) -> Self {
        let n = y.len() / 3;
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for p in y.chunks_exact(3) {
            for a in 0..3 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
        let side = (0..3).map(|a| hi[a] - lo[a]).fold(1e-9, f64::max) * (1.0 + 1e-9);
        let scale = f64::from(1u32 << BITS) / side;
        let mut keyed: Vec<(u64, u32)> = y
            .par_chunks_exact(3)
            .enumerate()
            .map(|(i, p)| {
                let q = |a: usize| (((p[a] - lo[a]) * scale) as u64).min((1 << BITS) - 1);
                (spread(q(0)) | spread(q(1)) << 1 | spread(q(2)) << 2, i as u32)
            })
            .collect();
        keyed.par_sort_unstable();
        let points: Vec<[f32; 3]> = keyed
            .iter()
            .map(|&(_, i)| {
                let i = i as usize;
                [y[3 * i] as f32, y[3 * i + 1] as f32, y[3 * i + 2] as f32]
            })
            .collect();
        let codes: Vec<u64> = keyed.iter().map(|k| k.0).collect();
        let order = keyed.into_iter().map(|k| k.1).collect();
        let mut tree = Tree {
            nodes: Vec::with_capacity(2 * n / LEAF + 16),
            points,
            order,
        };
        tree.nodes.push(Node {
            com: [0.0; 3],
            count: 0.0,
            width2: 0.0,
            start: 0,
            end: n as u32,
            first_child: 0,
            children: 0,
        });
        tree.split(0, &codes, 0, side as f32);
        tree
    }

    /// Fills node `at` (its range set) at `depth`, of width `width`, splitting it while it holds
    /// more than [`LEAF`] points.
    fn split(&mut self, at: usize, codes: &[u64], depth: u32, width: f32) {
        let (start, end) = (self.nodes[at].start as usize, self.nodes[at].end as usize);
        self.nodes[at].width2 = width * width;
        if end - start <= LEAF || depth == BITS {
            let mut com = [0.0f64; 3];
            for p in &self.points[start..end] {
                for a in 0..3 {
                    com[a] += f64::from(p[a]);
                }
            }
            let k = (end - start) as f64;
            self.nodes[at].com = com.map(|c| (c / k) as f32);
            self.nodes[at].count = k as f32;
            return;
        }
        // The children: runs of equal 3-bit digits at this depth (the codes are sorted).
        let shift = 3 * (BITS - 1 - depth);
        let first = self.nodes.len();
        let mut s = start;
        while s < end {
            let digit = codes[s] >> shift & 7;
            let e = s + codes[s..end].partition_point(|c| c >> shift & 7 == digit);
            self.nodes.push(Node {
                com: [0.0; 3],
                count: 0.0,
                width2: 0.0,
                start: s as u32,
                end: e as u32,
                first_child: 0,
                children: 0,
            });
            s = e;
        }
        let children = self.nodes.len() - first;
        self.nodes[at].first_child = first as u32;
        self.nodes[at].children = children as u32;
        let mut com = [0.0f64; 3];
        for c in first..first + children {
            self.split(c, codes, depth + 1, width / 2.0);
            let child = self.nodes[c];
            for (sum, x) in com.iter_mut().zip(child.com) {
                *sum += f64::from(x) * f64::from(child.count);
            }
        }
        let k = (end - start) as f64;
        self.nodes[at].com = com.map(|c| (c / k) as f32);
        self.nodes[at].count = k as f32;
    }

    /// The groups whose points share one walk of the tree: the largest cells with at most
    /// [`GROUP`] points, in the order of their points.
    fn groups(&self) -> Vec<usize> {
        let mut groups = Vec::with_capacity(2 * self.points.len() / GROUP + 1);
        let mut stack = vec![0usize];
        while let Some(at) = stack.pop() {
            let node = &self.nodes[at];
            if node.children == 0 || node.end - node.start <= GROUP as u32 {
                groups.push(at);
            } else {
                stack.extend((node.first_child..node.first_child + node.children).map(|c| c as usize));
            }
        }
        groups.sort_unstable_by_key(|&i| self.nodes[i].start);
        groups
    }

    /// The repulsion on each point of the cell `group`: `(Σⱼ qᵢⱼ, Σⱼ qᵢⱼ² (yᵢ − yⱼ))` per point.
    ///
    /// The tree is walked once for the whole leaf (Barnes 1990): a cell is summarised when it is
    /// far from every point of the leaf (its width below [`THETA`] × its distance to the leaf's
    /// bounding box), otherwise opened, and a leaf reached that way adds its points one by one.
    /// The points of the leaf are then summed against that list, a loop the compiler vectorises.
    fn group_forces(&self, group: usize, list: &mut Interactions, out: &mut Vec<(f32, [f32; 3])>) {
        let g = self.nodes[group];
        let pts = &self.points[g.start as usize..g.end as usize];
        let mut lo = [f32::INFINITY; 3];
        let mut hi = [f32::NEG_INFINITY; 3];
        for p in pts {
            for a in 0..3 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
        list.clear();
        let theta2 = THETA * THETA;
        let mut stack = std::mem::take(&mut list.stack);
        stack.push(0);
        while let Some(at) = stack.pop() {
            let node = &self.nodes[at as usize];
            let mut dist2 = 0.0;
            for a in 0..3 {
                let d = (lo[a] - node.com[a]).max(node.com[a] - hi[a]).max(0.0);
                dist2 += d * d;
            }
            if node.width2 < theta2 * dist2 {
                list.push(node.com, node.count);
            } else if node.children == 0 {
                for o in &self.points[node.start as usize..node.end as usize] {
                    list.push(*o, 1.0);
                }
            } else {
                stack.extend(node.first_child..node.first_child + node.children);
            }
        }
        list.stack = stack;
        list.pad();
        out.clear();
        let lanes = |v: &[f32], k: usize| f32x8::from(<[f32; LANES]>::try_from(&v[k..k + LANES]).expect("padded"));
        for p in pts {
            let (px, py, pz) = (f32x8::splat(p[0]), f32x8::splat(p[1]), f32x8::splat(p[2]));
            let (mut z, mut f0, mut f1, mut f2) = (f32x8::ZERO, f32x8::ZERO, f32x8::ZERO, f32x8::ZERO);
            for k in (0..list.m.len()).step_by(LANES) {
                let (d0, d1, d2) = (px - lanes(&list.x, k), py - lanes(&list.y, k), pz - lanes(&list.z, k));
                let q = f32x8::ONE / (f32x8::ONE + d0 * d0 + d1 * d1 + d2 * d2);
                let mq = lanes(&list.m, k) * q;
                z += mq;
                let mq2 = mq * q;
                f0 += mq2 * d0;
                f1 += mq2 * d1;
                f2 += mq2 * d2;
            }
            // The point itself is on the list (distance 0, q = 1, no force).
            out.push((
                z.reduce_add() - 1.0,
                [f0.reduce_add(), f1.reduce_add(), f2.reduce_add()],
            ));
        }
    }
}

/// Lanes of the vectorised sum.
const LANES: usize = 8;

/// A leaf's interaction list, as columns (centres of mass or points, and their weights).
#[derive(Default)]
struct Interactions {
    x: Vec<f32>,
    y: Vec<f32>,
    z: Vec<f32>,
    m: Vec<f32>,
    stack: Vec<u32>,
}

impl Interactions {
    fn clear(&mut self) {
        self.x.clear();
        self.y.clear();
        self.z.clear();
        self.m.clear();
        self.stack.clear();
    }

    /// Pads the list to whole [`LANES`] with weightless entries.
    fn pad(&mut self) {
        while !self.m.len().is_multiple_of(LANES) {
            self.push([0.0; 3], 0.0);
        }
    }

    fn push(&mut self, p: [f32; 3], m: f32) {
        self.x.push(p[0]);
        self.y.push(p[1]);
        self.z.push(p[2]);
        self.m.push(m);
    }
}

/// Subtracts the repulsive gradient `Σⱼ qᵢⱼ² (yᵢ − yⱼ) / Z` (divided by 4, like the attractive
/// part) from `grad` (`n × 3`, row-major) for the embedding `y`, and returns
/// `Z ≈ Σ_{i≠j} qᵢⱼ`, `qᵢⱼ = (1 + |yᵢ − yⱼ|²)⁻¹`.
pub fn repulsion(y: &[f64], grad: &mut [f64]) -> f64 {
    let tree = Tree::new(y);
    let per_leaf: Vec<Vec<(f32, [f32; 3])>> = tree
        .groups()
        .into_par_iter()
        .map_init(Interactions::default, |list, leaf| {
            let mut out = Vec::with_capacity(GROUP);
            tree.group_forces(leaf, list, &mut out);
            out
        })
        .collect();
    // The leaves hold the sorted points in order.
    let per_point: Vec<(f32, [f32; 3])> = per_leaf.into_iter().flatten().collect();
    let z: f64 = per_point.iter().map(|p| f64::from(p.0)).sum();
    for (s, (_, f)) in per_point.into_iter().enumerate() {
        let i = tree.order[s] as usize;
        for a in 0..3 {
            grad[3 * i + a] -= f64::from(f[a]) / z;
        }
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn exact(y: &[f64]) -> (f64, Vec<f64>) {
        let n = y.len() / 3;
        let mut g = vec![0.0; 3 * n];
        let mut z = 0.0;
        let mut f = vec![[0.0f64; 3]; n];
        for i in 0..n {
            for j in (0..n).filter(|&j| j != i) {
                let d: Vec<f64> = (0..3).map(|a| y[3 * i + a] - y[3 * j + a]).collect();
                let q = 1.0 / (1.0 + d.iter().map(|v| v * v).sum::<f64>());
                z += q;
                for a in 0..3 {
                    f[i][a] += q * q * d[a];
                }
            }
        }
        for i in 0..n {
            for a in 0..3 {
                g[3 * i + a] -= f[i][a] / z;
            }
        }
        (z, g)
    }

    #[test]
    fn morton_codes_interleave_the_bits() {
        assert_eq!(spread(0b11), 0b1001);
        assert_eq!(spread(1 << 20), 1 << 60);
        assert_eq!(spread(0x1f_ffff), 0x1249_2492_4924_9249);
    }

    #[test]
    fn barnes_hut_forces_match_the_exact_sum() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        // Three clusters at different scales, and two points on top of each other.
        let mut y: Vec<f64> = (0..3 * 1500)
            .map(|k| {
                let centre = [0.0, 20.0, -35.0][(k / 3) % 3];
                centre + rng.random_range(-4.0..4.0)
            })
            .collect();
        y.extend([1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
        let (z_exact, g_exact) = exact(&y);
        let mut g = vec![0.0; y.len()];
        let z = repulsion(&y, &mut g);
        assert!((z - z_exact).abs() / z_exact < 1e-2, "Z {z} vs {z_exact}");
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let diff: Vec<f64> = g.iter().zip(&g_exact).map(|(a, b)| a - b).collect();
        assert!(
            norm(&diff) / norm(&g_exact) < 2e-2,
            "relative error {}",
            norm(&diff) / norm(&g_exact)
        );
        // Every point's force is there, in its own row (the sorted order is undone).
        for i in [0, 777, 1500] {
            let row = |v: &[f64]| norm(&v[3 * i..3 * i + 3]);
            assert!(
                (row(&g) - row(&g_exact)).abs() <= 0.05 * row(&g_exact) + 1e-12,
                "row {i}"
            );
        }
    }
}
