//! A slab that grows in fixed blocks instead of doubling one vector.
//!
//! A `Vec` of flow entries doubles when full: right after it grows, up to
//! half of it is capacity no flow uses, and while it copies, the old and the
//! new buffer are both resident (three times the live size at that moment).
//! On a sensor whose memory budget is counted per tracked flow that is the
//! largest single overhead. Here entries live in blocks of [`BLOCK`] that
//! never move: growth allocates one more block, so at most one block is
//! slack and nothing is copied. Indexing costs one extra load (the block
//! pointer, which stays in cache: a million entries are a thousand blocks).

use std::ops::{Index, IndexMut};

/// Entries per block (a power of two).
pub const BLOCK: usize = 1024;
const SHIFT: u32 = BLOCK.trailing_zeros();

pub struct Slab<T> {
    blocks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            blocks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `v`; returns its index.
    pub fn push(&mut self, v: T) -> usize {
        if self.len & (BLOCK - 1) == 0 {
            // `with_capacity` allocates exactly BLOCK entries
            self.blocks.push(Vec::with_capacity(BLOCK));
        }
        let i = self.len;
        if let Some(b) = self.blocks.last_mut() {
            b.push(v);
        }
        self.len += 1;
        i
    }

    #[inline]
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&T> {
        self.blocks.get(i >> SHIFT)?.get(i & (BLOCK - 1))
    }

    #[inline]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.blocks.get_mut(i >> SHIFT)?.get_mut(i & (BLOCK - 1))
    }

    /// Every entry, in index order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.blocks.iter().flatten()
    }

    /// Bytes allocated for entries (whole blocks).
    #[must_use]
    pub fn allocated_bytes(&self) -> usize {
        self.blocks.len() * BLOCK * std::mem::size_of::<T>()
    }
}

impl<T> IntoIterator for Slab<T> {
    type Item = T;
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<Vec<T>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.blocks.into_iter().flatten()
    }
}

impl<T> Index<usize> for Slab<T> {
    type Output = T;
    #[inline]
    fn index(&self, i: usize) -> &T {
        &self.blocks[i >> SHIFT][i & (BLOCK - 1)]
    }
}

impl<T> IndexMut<usize> for Slab<T> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.blocks[i >> SHIFT][i & (BLOCK - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_across_blocks_and_grows_by_whole_blocks() {
        let mut s = Slab::default();
        assert!(s.is_empty() && s.get(0).is_none());
        for i in 0..(3 * BLOCK + 5) {
            assert_eq!(s.push(i as u64 * 7), i);
        }
        assert_eq!(s.len(), 3 * BLOCK + 5);
        assert_eq!(s.allocated_bytes(), 4 * BLOCK * 8);
        for i in [0, 1, BLOCK - 1, BLOCK, 2 * BLOCK + 3, 3 * BLOCK + 4] {
            assert_eq!(s[i], i as u64 * 7);
            assert_eq!(s.get(i), Some(&(i as u64 * 7)));
        }
        assert!(s.get(3 * BLOCK + 5).is_none());
        s[BLOCK] = 1;
        *s.get_mut(2 * BLOCK).unwrap() += 1;
        assert_eq!((s[BLOCK], s[2 * BLOCK]), (1, 2 * BLOCK as u64 * 7 + 1));
        // blocks never move: a reference's address is stable across growth
        let a = std::ptr::from_ref(&s[5]) as usize;
        for i in 0..(4 * BLOCK) {
            s.push(i as u64);
        }
        assert_eq!(std::ptr::from_ref(&s[5]) as usize, a);
    }
}
