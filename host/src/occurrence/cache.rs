//! A map whose entries expire a fixed time after they were last touched and
//! whose size is bounded. Time is passed in, so tests need no sleeping.
//!
//! Written here rather than taken from a crate (moka, lru, cached): those
//! read the system clock themselves or expire on background threads, while
//! duplicate suppression must follow the clock it is given — the replay's
//! event-time clock, the tests' manual one — and evict deterministically
//! (the golden replay depends on it), on the one pipeline thread.

use std::collections::{BTreeMap, VecDeque};

use crate::event::Millis;

/// A TTL map with a size bound. Expiry is lazy: `get_mut` ignores expired
/// entries, and `sweep` (called on every insert) removes them in roughly
/// least-recently-seen order. When full, the least recently inserted or
/// refreshed entry is evicted first.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    entries: BTreeMap<K, Slot<V>>,
    /// Keys in the order they were (re)queued, with the time recorded then.
    queue: VecDeque<(K, Millis)>,
    ttl: Millis,
    capacity: usize,
}

#[derive(Debug)]
struct Slot<V> {
    value: V,
    last_seen: Millis,
}

impl<K: Ord + Copy, V> TtlCache<K, V> {
    pub fn new(ttl: Millis, capacity: usize) -> Self {
        // A B-tree, not a hash table: an open-addressing table collects
        // tombstones under eviction churn and, at the bound, doubles to get
        // rid of them (19.3 MiB for 100k fingerprints after 100k more went
        // through, against 11.1 MiB before; benches/dedup.rs), and a table
        // sized for the bound up front is all resident after a few thousand
        // inserts, keys hashing all over it. A B-tree holds what is live,
        // in nodes freed as they empty. The queue fills in order, so the
        // pages reserved for the bound are touched only as it fills.
        Self {
            entries: BTreeMap::new(),
            queue: VecDeque::with_capacity(capacity.min(1 << 20)),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// The live entry for `key`, marked as seen at `now`.
    pub fn get_mut(&mut self, key: &K, now: Millis) -> Option<&mut V> {
        let ttl = self.ttl;
        let slot = self.entries.get_mut(key)?;
        if now - slot.last_seen > ttl {
            return None;
        }
        slot.last_seen = slot.last_seen.max(now);
        Some(&mut slot.value)
    }

    /// Inserts or replaces `key`, seen at `now`.
    pub fn insert(&mut self, key: K, value: V, now: Millis) {
        self.sweep(now);
        while self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            match self.queue.pop_front() {
                Some((old, _)) => {
                    self.entries.remove(&old);
                }
                None => break,
            }
        }
        let previous = self.entries.insert(
            key,
            Slot {
                value,
                last_seen: now,
            },
        );
        if previous.is_none() {
            self.queue.push_back((key, now));
        }
    }

    /// Removes entries not seen for longer than the TTL.
    pub fn sweep(&mut self, now: Millis) {
        while let Some(&(key, queued_at)) = self.queue.front() {
            if now - queued_at <= self.ttl {
                break;
            }
            self.queue.pop_front();
            let Some(slot) = self.entries.get(&key) else {
                continue;
            };
            if now - slot.last_seen > self.ttl {
                self.entries.remove(&key);
            } else {
                // Seen since it was queued: give it another turn.
                self.queue.push_back((key, slot.last_seen));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_ttl_since_last_seen() {
        let mut cache = TtlCache::new(300, 10);
        cache.insert(1, "a", 0);
        assert!(
            cache.get_mut(&1, 200).is_some(),
            "refreshes last-seen to 200"
        );
        assert!(cache.get_mut(&1, 450).is_some(), "250 after the refresh");
        assert!(
            cache.get_mut(&1, 751).is_none(),
            "301 after the last refresh"
        );
        cache.insert(2, "b", 1_000);
        assert_eq!(cache.len(), 1, "the expired entry was swept");
    }

    #[test]
    fn refreshed_entries_survive_a_sweep() {
        let mut cache = TtlCache::new(100, 10);
        cache.insert(1, (), 0);
        cache.insert(2, (), 50);
        cache.get_mut(&1, 90);
        cache.sweep(120);
        assert_eq!(cache.len(), 2, "1 was refreshed, 2 is still young");
        cache.sweep(195);
        assert!(cache.is_empty(), "both unseen for over 100");
    }

    #[test]
    fn capacity_evicts_the_oldest() {
        let mut cache = TtlCache::new(1_000, 2);
        cache.insert(1, (), 0);
        cache.insert(2, (), 1);
        cache.insert(3, (), 2);
        assert_eq!(cache.len(), 2);
        assert!(cache.get_mut(&1, 3).is_none());
        assert!(cache.get_mut(&3, 3).is_some());
    }
}
