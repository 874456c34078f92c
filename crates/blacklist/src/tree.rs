//! A static B+-tree over at most 65,536 sorted keys (one segment's offsets).
//!
//! Nodes hold [`FAN`] = 16 keys and are aligned to 64 bytes, so a node of `u32` keys is one
//! cache line and a node of `u64` keys is two adjacent lines (which the spatial prefetcher
//! fetches together). The leaf level is the sorted keys themselves, the last node padded with
//! copies of the largest key; each upper node holds the largest key of each of its 16
//! children, padded the same way. Levels are stored root first in one vector, so the few top
//! nodes of all segments stay hot in cache and a lookup touches one leaf line that is cold.
//!
//! Why not a plain binary search: over a 256 KB leaf array it makes ~10 dependent probes on
//! distinct cache lines; here it is at most 4 node visits, 3 of them usually cached.
//!
//! Padding never creates a false positive: it only repeats a key that is really present.

use std::fmt::Debug;
use std::mem::size_of;

/// Keys per node.
pub(crate) const FAN: usize = 16;
/// Levels at most: 16^4 = 65,536 keys.
pub(crate) const MAX_LEVELS: usize = 4;
/// Keys per tree at most.
pub(crate) const MAX_KEYS: usize = 1 << 16;

/// One node: 16 keys, cache-line aligned.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, align(64))]
pub(crate) struct Node<T>([T; FAN]);

/// Key types a tree can hold.
pub(crate) trait Word: Copy + Ord + Default + Debug + Send + Sync + 'static {}
impl Word for u32 {}
impl Word for u64 {}

/// The tree. Invariants: `nodes` holds `levels` levels, root first, level `l` starting at
/// `starts[l]`; every node's last key is its largest; `len` ≥ 1 real keys in the leaves.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Tree<T> {
    nodes: Vec<Node<T>>,
    starts: [u32; MAX_LEVELS],
    levels: u8,
    len: u32,
}

impl<T: Word> Tree<T> {
    /// Builds the tree over `keys`, which must be strictly increasing; `None` if there are
    /// none or more than [`MAX_KEYS`].
    pub(crate) fn build(keys: &[T]) -> Option<Tree<T>> {
        let last = *keys.last()?;
        if keys.len() > MAX_KEYS {
            return None;
        }
        // Level sizes, leaves first.
        let mut sizes = [0usize; MAX_LEVELS];
        let mut levels = 0;
        let mut n = keys.len().div_ceil(FAN);
        loop {
            sizes[levels] = n;
            levels += 1;
            if n == 1 {
                break;
            }
            n = n.div_ceil(FAN);
        }
        // Root-first starts: level `l` from the top is `levels - 1 - l` from the bottom.
        let mut starts = [0u32; MAX_LEVELS];
        let mut at = 0usize;
        for (l, start) in starts.iter_mut().enumerate().take(levels) {
            *start = at as u32;
            at += sizes[levels - 1 - l];
        }
        // `vec!` allocates exactly `at` nodes, so capacity is honest for memory accounting.
        // Filling with the largest key is already the right padding: the last node of every
        // level is the rightmost one, whose largest key is the tree's.
        let mut nodes = vec![Node([last; FAN]); at];
        let leaf_start = starts[levels - 1] as usize;
        for (node, chunk) in nodes[leaf_start..].iter_mut().zip(keys.chunks(FAN)) {
            node.0[..chunk.len()].copy_from_slice(chunk);
        }
        for l in (0..levels - 1).rev() {
            let (parent_start, child_start) = (starts[l] as usize, starts[l + 1] as usize);
            let children = sizes[levels - 2 - l];
            for c in 0..children {
                let max = nodes[child_start + c].0[FAN - 1];
                nodes[parent_start + c / FAN].0[c % FAN] = max;
            }
        }
        Some(Tree {
            nodes,
            starts,
            levels: levels as u8,
            len: keys.len() as u32,
        })
    }

    /// True if `k` is one of the keys.
    #[inline]
    pub(crate) fn contains(&self, k: T) -> bool {
        let Some(root) = self.nodes.first() else {
            return false;
        };
        if k > root.0[FAN - 1] {
            return false;
        }
        // Invariant: the node visited has a largest key ≥ k, so `rank` < FAN and the child
        // it selects is a real one, never a padding copy.
        let leaf_level = usize::from(self.levels.saturating_sub(1));
        let mut idx = 0usize;
        for &start in &self.starts[..leaf_level] {
            let Some(node) = self.nodes.get(start as usize + idx) else {
                return false;
            };
            idx = idx * FAN + rank(node, k);
        }
        let leaf = self.starts[leaf_level] as usize + idx;
        self.nodes
            .get(leaf)
            .and_then(|node| node.0.get(rank(node, k)))
            .is_some_and(|&x| x == k)
    }

    /// Number of keys.
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// The keys in increasing order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = T> + '_ {
        let leaves = self.starts[usize::from(self.levels.saturating_sub(1))] as usize;
        self.nodes
            .get(leaves..)
            .unwrap_or(&[])
            .iter()
            .flat_map(|n| n.0.iter().copied())
            .take(self.len())
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * size_of::<Node<T>>()
    }
}

/// How many keys of `node` are below `k`. Written as a count rather than a search so it
/// compiles to branch-free compares: a mispredicted branch costs more than 16 compares.
#[inline]
fn rank<T: Word>(node: &Node<T>, k: T) -> usize {
    node.0.iter().filter(|&&x| x < k).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: Word + TryFrom<u64>>(n: usize) {
        // Keys 3, 6, 9, ...: present at multiples of 3, absent in between.
        let keys: Vec<T> = (1..=n as u64)
            .map(|i| T::try_from(3 * i).ok().unwrap())
            .collect();
        let t = Tree::build(&keys).unwrap();
        assert_eq!(t.len(), n);
        assert!(t.keys().eq(keys.iter().copied()), "keys of {n}");
        for i in 0..=(3 * n as u64 + 3) {
            let k = T::try_from(i).ok().unwrap();
            let listed = i % 3 == 0 && i > 0 && i <= 3 * n as u64;
            assert_eq!(t.contains(k), listed, "n {n} key {i}");
        }
    }

    #[test]
    fn every_size_around_level_boundaries() {
        for n in (1..=300).chain([4095, 4096, 4097, 65_535, 65_536]) {
            check::<u32>(n);
        }
        for n in [1, 15, 16, 17, 255, 256, 257, 1000] {
            check::<u64>(n);
        }
    }

    #[test]
    fn extremes_and_limits() {
        assert!(Tree::<u32>::build(&[]).is_none());
        let too_many: Vec<u32> = (0..=MAX_KEYS as u32).collect();
        assert!(Tree::build(&too_many).is_none());
        let t = Tree::build(&[0u64, u64::MAX]).unwrap();
        assert!(t.contains(0) && t.contains(u64::MAX) && !t.contains(1));
        let t = Tree::build(&[u32::MAX]).unwrap();
        assert!(t.contains(u32::MAX) && !t.contains(0));
    }

    #[test]
    fn nodes_are_cache_line_aligned() {
        assert_eq!(std::mem::align_of::<Node<u32>>(), 64);
        assert_eq!(size_of::<Node<u32>>(), 64);
        assert_eq!(size_of::<Node<u64>>(), 128);
        let t = Tree::build(&(0..1000u32).collect::<Vec<_>>()).unwrap();
        assert_eq!(t.nodes.as_ptr() as usize % 64, 0);
    }
}
