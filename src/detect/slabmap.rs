//! A map for the detectors' per host-and-destination state: values live in
//! a block-grown [`Slab`] and a hash table holds only 4-byte slot numbers
//! (keys are compared in the slab), the layout of the flow table.
//!
//! With a `HashMap` the entries themselves sit in the open-addressed table,
//! whose load is between 7/16 and 7/8, so a third of the memory of the
//! largest detector state was empty slots; and growing it briefly needs the
//! old and the new table together. Here the slack is one block of entries
//! and the table's 5 bytes per slot, and growth copies only the slot
//! numbers. A lookup returns the slot, so a detector that finds or inserts
//! an entry and updates it later hashes the key once.

use crate::flow::slab::Slab;
use crate::time::Ts;
use hashbrown::HashTable;
use std::hash::Hash;

pub struct SlabMap<K, V> {
    index: HashTable<u32>,
    slab: Slab<Option<(K, V)>>,
    free: Vec<u32>,
    hasher: ahash::RandomState,
}

impl<K, V> Default for SlabMap<K, V> {
    fn default() -> Self {
        Self {
            index: HashTable::new(),
            slab: Slab::default(),
            free: Vec::new(),
            hasher: ahash::RandomState::new(),
        }
    }
}

impl<K: Hash + Eq, V> SlabMap<K, V> {
    #[must_use]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn key_at(slab: &Slab<Option<(K, V)>>, j: u32) -> Option<&K> {
        slab.get(j as usize)?.as_ref().map(|(k, _)| k)
    }

    /// The slot holding `k`.
    #[must_use]
    pub fn find(&self, k: &K) -> Option<u32> {
        let slab = &self.slab;
        self.index
            .find(self.hasher.hash_one(k), |&j| {
                Self::key_at(slab, j) == Some(k)
            })
            .copied()
    }

    #[must_use]
    pub fn contains_key(&self, k: &K) -> bool {
        self.find(k).is_some()
    }

    #[must_use]
    pub fn get(&self, k: &K) -> Option<&V> {
        self.find(k).and_then(|i| self.at(i))
    }

    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.find(k).and_then(|i| self.at_mut(i))
    }

    /// The value in slot `i` (from [`Self::find`] or
    /// [`Self::get_or_insert_with`], valid until that key is removed).
    #[must_use]
    pub fn at(&self, i: u32) -> Option<&V> {
        self.slab.get(i as usize)?.as_ref().map(|(_, v)| v)
    }

    pub fn at_mut(&mut self, i: u32) -> Option<&mut V> {
        self.slab.get_mut(i as usize)?.as_mut().map(|(_, v)| v)
    }

    /// The slot of `k`, inserting `f()` first if it is absent.
    pub fn get_or_insert_with(&mut self, k: K, f: impl FnOnce() -> V) -> u32 {
        match self.find(&k) {
            Some(i) => i,
            None => self.insert_new(k, f()),
        }
    }

    /// The slot of `k`, inserting `f()` first if it is absent; a map holding
    /// `cap` entries first evicts its oldest sixteenth by `age`
    /// ([`Self::evict_oldest`]). Returns the slot and how many were evicted.
    pub fn get_or_insert_capped(
        &mut self,
        k: K,
        cap: usize,
        age: impl Fn(&V) -> Ts,
        f: impl FnOnce() -> V,
    ) -> (u32, usize) {
        match self.find(&k) {
            Some(i) => (i, 0),
            None => self.insert_capped(k, cap, age, f),
        }
    }

    /// [`Self::get_or_insert_capped`] for a key the caller found absent.
    pub fn insert_capped(
        &mut self,
        k: K,
        cap: usize,
        age: impl Fn(&V) -> Ts,
        f: impl FnOnce() -> V,
    ) -> (u32, usize) {
        let evicted = if self.len() >= cap {
            self.evict_oldest(age)
        } else {
            0
        };
        (self.insert_new(k, f()), evicted)
    }

    /// Inserts a key the map does not hold.
    fn insert_new(&mut self, k: K, v: V) -> u32 {
        let hash = self.hasher.hash_one(&k);
        let e = Some((k, v));
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slab.get_mut(i as usize) {
                    *s = e;
                }
                i
            }
            // more than 4 G entries cannot happen: detectors cap their maps
            None => u32::try_from(self.slab.push(e)).unwrap_or(u32::MAX),
        };
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.index.insert_unique(hash, i, |&j| {
            Self::key_at(slab, j).map_or(0, |k| hasher.hash_one(k))
        });
        i
    }

    /// Removes `k`, returning its value.
    pub fn remove(&mut self, k: &K) -> Option<V> {
        let slab = &self.slab;
        let Ok(entry) = self.index.find_entry(self.hasher.hash_one(k), |&j| {
            Self::key_at(slab, j) == Some(k)
        }) else {
            return None;
        };
        let (i, _) = entry.remove();
        let old = self.slab.get_mut(i as usize).and_then(Option::take);
        self.free.push(i);
        old.map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.slab
            .iter()
            .filter_map(|e| e.as_ref().map(|(k, v)| (k, v)))
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }

    /// Every entry, emptying the map (for snapshots).
    pub fn take_all(&mut self) -> Vec<(K, V)> {
        let old = std::mem::take(self);
        old.slab.into_iter().flatten().collect()
    }

    /// Removes the sixteenth of the entries (at least one) that `age` says
    /// are oldest ([`super::oldest_sixteenth`]); returns how many.
    pub fn evict_oldest(&mut self, age: impl Fn(&V) -> Ts) -> usize {
        let mut v: Vec<(Ts, u32)> = Vec::with_capacity(self.len());
        for i in 0..self.slab.len() {
            if let Some(x) = self.at(i as u32) {
                v.push((age(x), i as u32));
            }
        }
        let old = super::oldest_sixteenth(v);
        for &(_, i) in &old {
            let hash = match Self::key_at(&self.slab, i) {
                Some(k) => self.hasher.hash_one(k),
                None => continue,
            };
            if let Ok(entry) = self.index.find_entry(hash, |&j| j == i) {
                entry.remove();
            }
            if let Some(s) = self.slab.get_mut(i as usize) {
                *s = None;
            }
            self.free.push(i);
        }
        old.len()
    }
}

impl<K: Hash + Eq, V> FromIterator<(K, V)> for SlabMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(it: I) -> Self {
        let mut m = Self::default();
        for (k, v) in it {
            let mut v = Some(v);
            let i = m.get_or_insert_with(k, || v.take().unwrap_or_else(|| unreachable!()));
            // a repeated key: the later value wins, as in a HashMap
            if let (Some(v), Some(slot)) = (v, m.at_mut(i)) {
                *slot = v;
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::SlabMap;
    use std::collections::HashMap;

    #[test]
    fn agrees_with_a_hashmap_through_inserts_removals_and_evictions() {
        let mut m: SlabMap<u32, i64> = SlabMap::default();
        let mut model: HashMap<u32, i64> = HashMap::new();
        let mut x: u64 = 0x1234_5678;
        for step in 0..20_000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = (x % 3000) as u32;
            match x % 7 {
                0 => assert_eq!(m.remove(&k), model.remove(&k)),
                1 if step % 500 == 0 => {
                    // the sixteenth with the smallest values goes
                    let n = m.evict_oldest(|v| *v);
                    let mut ages: Vec<i64> = model.values().copied().collect();
                    ages.sort_unstable();
                    let cut = ages[n - 1];
                    let before = model.len();
                    let kept: HashMap<u32, i64> = m.iter().map(|(k, v)| (*k, *v)).collect();
                    assert_eq!(kept.len(), before - n);
                    for (k, v) in &model {
                        if !kept.contains_key(k) {
                            assert!(*v <= cut);
                        }
                    }
                    model = kept;
                }
                _ => {
                    let i = m.get_or_insert_with(k, || step);
                    *m.at_mut(i).unwrap() += 1;
                    *model.entry(k).or_insert(step) += 1;
                }
            }
            assert_eq!(m.len(), model.len());
        }
        for (k, v) in &model {
            assert_eq!(m.get(k), Some(v));
        }
        let all = m.take_all();
        assert!(m.is_empty());
        let back: SlabMap<u32, i64> = all.into_iter().collect();
        assert_eq!(back.len(), model.len());
        assert!(model.iter().all(|(k, v)| back.get(k) == Some(v)));
    }
}
