//! The occurrence core: decides which events are new occurrences, suppresses
//! duplicates, and escalates problems that keep repeating.
//!
//! The rules, per fingerprint (cluster/namespace/kind/name/reason) remembered
//! for `dedup.ttl` after it was last seen, within its current window — with
//! `dedup.window: fixed` (the design document's, the default) `dedup.ttl`
//! from the sighting that opened it, so that a problem that keeps recurring
//! is published again every window as a reminder; with `sliding`, for as
//! long as it keeps recurring:
//!
//! - the first event of a fingerprint is a new occurrence;
//! - the same Event object again with a higher `count` is a new occurrence
//!   (the kubelet bumps the count instead of creating a new object);
//! - the same object with the same or a lower count (a relist, a restart, an
//!   update of another field) is a duplicate, never published twice;
//! - another object with the same fingerprint within the TTL is a duplicate
//!   too, but its count adds to the fingerprint's occurrences;
//! - once a fingerprint has `repeat_threshold` occurrences, every occurrence
//!   published for it is escalated (severity at least `high`, label
//!   `repeated_count`), and a duplicate that crosses the threshold is published
//!   after all, as the escalation;
//! - a new window starts as a first sighting would, except that an object at
//!   a count already published stays a duplicate (never published twice).

mod cache;
mod fingerprint;

use std::sync::Arc;

use serde::Deserialize;

use crate::clock::SharedClock;
use crate::event::{Event, Millis};
use crate::units::HumanDuration;

use cache::TtlCache;
pub use fingerprint::{Fingerprint, occurrence_id};

/// `dedup:` — the occurrence core's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// How long a fingerprint suppresses duplicates (default 5m, the design
    /// document's TTL): see `window`.
    pub ttl: HumanDuration,
    /// `fixed` (default, the design document's): `ttl` from the first
    /// sighting, then a new window — a problem that keeps recurring is
    /// published again every `ttl`. `sliding`: `ttl` from the last sighting —
    /// a problem that keeps recurring is published once (and escalated).
    pub window: DedupWindow,
    /// Most fingerprints remembered at once; the least recently seen are
    /// forgotten first. 100k fingerprints take about 20 MiB.
    pub max_entries: usize,
    /// At this many occurrences of one fingerprint the occurrence is escalated
    /// to `high` and labelled `repeated_count` (default 5). 0 disables it.
    pub repeat_threshold: u32,
}

impl DedupConfig {
    /// What is wrong with this section.
    pub fn problems(&self) -> Vec<String> {
        if self.max_entries == 0 {
            vec!["at `dedup.max_entries`: must be at least 1".to_owned()]
        } else {
            Vec::new()
        }
    }
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            ttl: HumanDuration::from_secs(300),
            window: DedupWindow::Fixed,
            max_entries: 100_000,
            repeat_threshold: 5,
        }
    }
}

/// What a dedup window counts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DedupWindow {
    /// From the first sighting of a fingerprint.
    #[default]
    Fixed,
    /// From its last sighting.
    Sliding,
}

/// At most this many Event objects are tracked per fingerprint; older ones are
/// forgotten first (their later count bumps then count as new objects).
const OBJECTS_PER_FINGERPRINT: usize = 4;

/// An event the core decided to publish.
#[derive(Debug, Clone)]
pub struct Occurrence {
    pub event: Event,
    pub fingerprint: Fingerprint,
    /// Stable per Event object and count; see [`occurrence_id`].
    pub id: String,
    /// Occurrences of this fingerprint within the TTL, when that reached the
    /// repeat threshold: the occurrence is escalated.
    pub repeated_count: Option<u32>,
}

/// What the core made of one event.
#[derive(Debug)]
pub enum Admission {
    /// Shared, because every chain and sink that takes it reads it.
    New(Arc<Occurrence>),
    /// Already published (or a repeat within the TTL), not published again.
    Duplicate,
}

/// What the core remembers of one fingerprint: 32 bytes, so that the bound
/// (`dedup.max_entries`, 100k by default) stays within a few MiB.
#[derive(Debug)]
struct FingerprintState {
    /// The first object seen (nearly always the only one), inline: the hash
    /// of its uid and the highest count seen for it.
    object: u64,
    count: u32,
    /// Occurrences counted within the TTL, and in the top bit whether an
    /// escalated occurrence has been published.
    tally: u32,
    /// Further objects, oldest first, up to `OBJECTS_PER_FINGERPRINT` in all.
    /// Boxed: 8 bytes in every entry instead of a `Vec`'s 24, for the few
    /// fingerprints that have more than one object.
    #[allow(clippy::box_collection)]
    more: Option<Box<Vec<(u64, u32)>>>,
    /// When the current window opened (fixed windows).
    window_start: Millis,
}

/// The bit of `FingerprintState::tally` that says "escalated".
const ESCALATED: u32 = 1 << 31;
/// The most occurrences a tally counts.
const MAX_OCCURRENCES: u32 = ESCALATED - 1;

impl FingerprintState {
    fn new(object: u64, count: u32, escalated: bool, now: Millis) -> Self {
        let mut state = Self {
            object,
            count,
            tally: 0,
            more: None,
            window_start: now,
        };
        state.set_tally(count, escalated);
        state
    }

    fn occurrences(&self) -> u32 {
        self.tally & MAX_OCCURRENCES
    }

    fn escalated(&self) -> bool {
        self.tally & ESCALATED != 0
    }

    /// Sets the occurrences (at most [`MAX_OCCURRENCES`]) and the escalation.
    fn set_tally(&mut self, occurrences: u32, escalated: bool) {
        self.tally = occurrences.min(MAX_OCCURRENCES) | if escalated { ESCALATED } else { 0 };
    }

    /// The highest count seen for `object`.
    fn seen(&self, object: u64) -> Option<u32> {
        if self.object == object {
            return Some(self.count);
        }
        self.more
            .as_ref()?
            .iter()
            .find(|(key, _)| *key == object)
            .map(|(_, count)| *count)
    }

    /// Records `count` as the highest for `object`, adding the object if it
    /// is new (and forgetting the oldest when full).
    fn see(&mut self, object: u64, count: u32) {
        if self.object == object {
            self.count = count;
            return;
        }
        let more = self.more.get_or_insert_default();
        if let Some(seen) = more.iter_mut().find(|(key, _)| *key == object) {
            seen.1 = count;
            return;
        }
        if more.len() + 1 == OBJECTS_PER_FINGERPRINT {
            (self.object, self.count) = more.remove(0);
        }
        more.push((object, count));
    }
}

/// Fingerprint TTL dedup with count-bump and repeat escalation.
#[derive(Debug)]
pub struct OccurrenceCore {
    cache: TtlCache<Fingerprint, FingerprintState>,
    repeat_threshold: u32,
    /// A fixed window's length; `None`: sliding.
    fixed_window: Option<Millis>,
    clock: SharedClock,
}

impl OccurrenceCore {
    pub fn new(config: DedupConfig, clock: SharedClock) -> Self {
        Self {
            cache: TtlCache::new(config.ttl.as_millis_i64(), config.max_entries),
            repeat_threshold: config.repeat_threshold,
            fixed_window: (config.window == DedupWindow::Fixed).then(|| config.ttl.as_millis_i64()),
            clock,
        }
    }

    /// Fingerprints currently remembered.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Decides whether `event` is a new occurrence.
    pub fn admit(&mut self, event: Event) -> Admission {
        let now = self.clock.now_ms();
        let fingerprint = Fingerprint::of(&event);
        let object = object_key(&event);
        let count = event.count;
        let threshold = self.repeat_threshold;
        let reached = |n: u32| threshold > 0 && n >= threshold;
        let fixed_window = self.fixed_window;

        let publish_as = match self.cache.get_mut(&fingerprint, now) {
            None => {
                let state = FingerprintState::new(object, count, reached(count), now);
                let repeated = reached(count).then(|| state.occurrences());
                self.cache.insert(fingerprint, state, now);
                Some(repeated)
            }
            Some(state) if fixed_window.is_some_and(|w| now - state.window_start > w) => {
                match state.seen(object) {
                    Some(seen) if count <= seen => None,
                    _ => {
                        state.see(object, count);
                        state.window_start = now;
                        state.set_tally(count, reached(count));
                        Some(reached(count).then(|| state.occurrences()))
                    }
                }
            }
            Some(state) => match state.seen(object) {
                Some(seen) if count > seen => {
                    let occurrences = state.occurrences().saturating_add(count - seen);
                    state.see(object, count);
                    state.set_tally(occurrences, state.escalated() || reached(occurrences));
                    Some(reached(occurrences).then(|| state.occurrences()))
                }
                Some(_) => None,
                None => {
                    state.see(object, count);
                    let occurrences = state.occurrences().saturating_add(count);
                    let escalate = reached(occurrences) && !state.escalated();
                    state.set_tally(occurrences, state.escalated() || escalate);
                    escalate.then(|| Some(state.occurrences()))
                }
            },
        };
        match publish_as {
            None => Admission::Duplicate,
            Some(repeated_count) => Admission::New(Arc::new(Occurrence {
                id: occurrence_id(&event),
                fingerprint,
                repeated_count,
                event,
            })),
        }
    }
}

/// The Event object's identity, hashed to keep the cache small.
fn object_key(event: &Event) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    if event.uid.is_empty() {
        (&event.namespace, &event.name).hash(&mut hasher);
    } else {
        event.uid.hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::HumanDuration;
    use crate::event::fixtures::warning;

    const MINUTE: i64 = 60_000;

    fn core(clock: &ManualClock) -> OccurrenceCore {
        OccurrenceCore::new(DedupConfig::default(), Arc::new(clock.clone()))
    }

    fn published(admission: Admission) -> Option<Option<u32>> {
        match admission {
            Admission::New(occurrence) => Some(occurrence.repeated_count),
            Admission::Duplicate => None,
        }
    }

    #[test]
    fn a_remembered_fingerprint_is_small() {
        // With its 16-byte key and the cache's last-seen time: 56 bytes an
        // entry (benches/dedup.rs measures what 100k cost with the B-tree's
        // slack and the expiry queue).
        assert_eq!(std::mem::size_of::<FingerprintState>(), 32);
    }

    #[test]
    fn relisted_event_is_not_published_twice() {
        let clock = ManualClock::new(0);
        let mut core = core(&clock);
        assert_eq!(
            published(core.admit(warning("BackOff", "web", "u1", 1, 0))),
            Some(None)
        );
        clock.advance_by(MINUTE);
        assert_eq!(
            published(core.admit(warning("BackOff", "web", "u1", 1, 0))),
            None
        );
    }

    #[test]
    fn count_bumps_are_occurrences_and_escalate_at_five() {
        let clock = ManualClock::new(0);
        let mut core = core(&clock);
        let mut seen = Vec::new();
        for count in 1..=7 {
            clock.advance_by(10_000);
            seen.push(published(
                core.admit(warning("BackOff", "web", "u1", count, 0)),
            ));
        }
        assert_eq!(
            seen,
            vec![
                Some(None),
                Some(None),
                Some(None),
                Some(None),
                Some(Some(5)),
                Some(Some(6)),
                Some(Some(7))
            ]
        );
        // An older count arriving late changes nothing.
        assert_eq!(
            published(core.admit(warning("BackOff", "web", "u1", 6, 0))),
            None
        );
    }

    #[test]
    fn other_objects_with_the_same_fingerprint_are_suppressed_until_they_escalate() {
        let clock = ManualClock::new(0);
        let mut core = core(&clock);
        assert!(published(core.admit(warning("FailedMount", "db", "a", 1, 0))).is_some());
        for uid in ["b", "c", "d"] {
            clock.advance_by(MINUTE);
            assert_eq!(
                published(core.admit(warning("FailedMount", "db", uid, 1, 0))),
                None
            );
        }
        clock.advance_by(MINUTE);
        assert_eq!(
            published(core.admit(warning("FailedMount", "db", "e", 1, 0))),
            Some(Some(5)),
            "the fifth occurrence is published as the escalation"
        );
        clock.advance_by(MINUTE);
        assert_eq!(
            published(core.admit(warning("FailedMount", "db", "f", 1, 0))),
            None
        );
    }

    #[test]
    fn fingerprints_are_forgotten_after_the_ttl() {
        let clock = ManualClock::new(0);
        let config = DedupConfig {
            window: DedupWindow::Sliding,
            ..DedupConfig::default()
        };
        let mut core = OccurrenceCore::new(config, Arc::new(clock.clone()));
        assert!(published(core.admit(warning("BackOff", "web", "u1", 1, 0))).is_some());
        clock.advance_by(4 * MINUTE);
        assert_eq!(
            published(core.admit(warning("BackOff", "web", "u2", 1, 0))),
            None
        );
        // The TTL counts from the last sighting, not the first.
        clock.advance_by(4 * MINUTE);
        assert_eq!(
            published(core.admit(warning("BackOff", "web", "u3", 1, 0))),
            None
        );
        clock.advance_by(5 * MINUTE + 1);
        assert_eq!(
            published(core.admit(warning("BackOff", "web", "u4", 1, 0))),
            Some(None),
            "a new problem after a quiet TTL"
        );
        assert_eq!(core.len(), 1);
    }

    #[test]
    fn a_fixed_window_publishes_a_recurring_problem_again_as_a_reminder() {
        let clock = ManualClock::new(0);
        let mut core = core(&clock);
        assert_eq!(
            published(core.admit(warning("BackOff", "web", "u1", 1, 0))),
            Some(None)
        );
        for uid in ["u2", "u3"] {
            clock.advance_by(2 * MINUTE);
            assert_eq!(
                published(core.admit(warning("BackOff", "web", uid, 1, 0))),
                None,
                "within the window"
            );
        }
        // 6 minutes after the first sighting, though 2 after the last: a
        // new window, and the reminder.
        clock.advance_by(2 * MINUTE);
        assert_eq!(
            published(core.admit(warning("BackOff", "web", "u4", 1, 0))),
            Some(None)
        );
        clock.advance_by(2 * MINUTE);
        assert_eq!(
            published(core.admit(warning("BackOff", "web", "u5", 1, 0))),
            None
        );
        // A relisted object at a count already published stays a duplicate
        // after its window (while the fingerprint is remembered: within
        // `ttl` of its last sighting).
        clock.advance_by(4 * MINUTE);
        assert_eq!(
            published(core.admit(warning("BackOff", "web", "u4", 1, 0))),
            None
        );
        // A count bump opens the next window, escalated at its count.
        assert_eq!(
            published(core.admit(warning("BackOff", "web", "u4", 7, 0))),
            Some(Some(7))
        );
        assert_eq!(
            published(core.admit(warning("BackOff", "web", "u6", 1, 0))),
            None
        );
    }

    #[test]
    fn first_sighting_with_a_high_count_is_escalated() {
        let clock = ManualClock::new(0);
        let mut core = core(&clock);
        assert_eq!(
            published(core.admit(warning("BackOff", "web", "u1", 9, 0))),
            Some(Some(9))
        );
    }

    #[test]
    fn threshold_zero_disables_escalation_and_size_is_bounded() {
        let clock = ManualClock::new(0);
        let config = DedupConfig {
            ttl: HumanDuration::from_secs(300),
            window: DedupWindow::Fixed,
            max_entries: 3,
            repeat_threshold: 0,
        };
        let mut core = OccurrenceCore::new(config, Arc::new(clock.clone()));
        assert_eq!(
            published(core.admit(warning("BackOff", "web", "u1", 50, 0))),
            Some(None)
        );
        for pod in ["a", "b", "c", "d", "e"] {
            core.admit(warning("BackOff", pod, pod, 1, 0));
        }
        assert_eq!(core.len(), 3);
    }
}
