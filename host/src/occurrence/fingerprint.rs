//! Stable identities: the fingerprint of a kind of problem, and the id of one
//! occurrence of it.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::event::Event;

/// Identifies "the same problem": cluster, namespace, involved kind and name,
/// and reason (the design document's definition). 128 bits of SHA-256, so it
/// is stable across restarts, versions and machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 16]);

impl Fingerprint {
    pub fn of(event: &Event) -> Self {
        Self(digest(&[
            &event.cluster,
            &event.namespace,
            &event.involved.kind,
            &event.involved.name,
            &event.reason,
        ]))
    }
}

/// The id of one occurrence: the Event object (uid, or namespace and name when
/// it has none) and its count. The same occurrence seen again after a relist, a
/// restart or on another replica gets the same id, which is what brokers
/// deduplicate on (JetStream `Nats-Msg-Id`). A UUID, as the design document's
/// ids are, but not a random one: version 8 (RFC 9562's custom UUID), from
/// 122 bits of the identity's SHA-256.
pub fn occurrence_id(event: &Event) -> String {
    let count = event.count.to_string();
    let bytes = if event.uid.is_empty() {
        digest(&[&event.cluster, &event.namespace, &event.name, &count])
    } else {
        digest(&[&event.cluster, &event.uid, &count])
    };
    uuid::Uuid::new_v8(bytes).hyphenated().to_string()
}

fn digest(parts: &[&str]) -> [u8; 16] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        // A separator that cannot occur in Kubernetes names keeps
        // ("ab", "c") and ("a", "bc") apart.
        hasher.update([0]);
    }
    let full = hasher.finalize();
    let mut out = [0; 16];
    out.copy_from_slice(&full[..16]);
    out
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::fixtures::warning;

    #[test]
    fn fingerprint_ignores_count_and_uid_but_not_reason() {
        let a = warning("BackOff", "web", "u1", 1, 0);
        let b = warning("BackOff", "web", "u2", 7, 60_000);
        let c = warning("Unhealthy", "web", "u1", 1, 0);
        assert_eq!(Fingerprint::of(&a), Fingerprint::of(&b));
        assert_ne!(Fingerprint::of(&a), Fingerprint::of(&c));
        assert_eq!(Fingerprint::of(&a).to_string().len(), 32);
    }

    #[test]
    fn occurrence_id_is_per_object_and_count() {
        let first = warning("BackOff", "web", "u1", 1, 0);
        let again = warning("BackOff", "web", "u1", 1, 5_000);
        let bumped = warning("BackOff", "web", "u1", 2, 5_000);
        assert_eq!(occurrence_id(&first), occurrence_id(&again));
        assert_ne!(occurrence_id(&first), occurrence_id(&bumped));
        let id = uuid::Uuid::parse_str(&occurrence_id(&first)).expect("a UUID");
        assert_eq!(id.get_version_num(), 8);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
    }
}
