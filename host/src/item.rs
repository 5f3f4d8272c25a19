//! What the pipeline carries between its stages: an occurrence on its way
//! through a chain ([`Processed`]), a stage's failure on it ([`Failure`]),
//! and an occurrence handed to the dead-letter sinks ([`DeadLetter`]). A
//! leaf: the plugin runtime, the chains, the encoders and the sinks all use
//! these and none of them is needed to define them.

use std::fmt;
use std::sync::Arc;

use crate::event::Severity;
use crate::occurrence::Occurrence;

/// The name of the pseudo-chain that carries dead-lettered events.
pub const DEAD_LETTER_CHAIN: &str = "dead-letter";

/// An event on its way through a chain, and what the chain made of it.
#[derive(Debug, Clone)]
pub struct Processed {
    pub occurrence: Arc<Occurrence>,
    pub severity: Severity,
    /// Replaces the event's message when a stage redacted it.
    pub message: Option<String>,
    /// Labels added by the occurrence core and enrichers, in order of
    /// addition; a later value for a key overrides an earlier one.
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    /// Position of the occurrence in the pipeline's batch, for bookkeeping
    /// across chains.
    pub slot: usize,
}

impl Processed {
    /// The starting point for an occurrence: the base severity, raised to
    /// `high` and labelled when the occurrence core escalated it.
    pub fn new(occurrence: Arc<Occurrence>, slot: usize) -> Self {
        let mut severity = occurrence.event.base_severity();
        let mut labels = Vec::new();
        if let Some(count) = occurrence.repeated_count {
            severity = severity.max(Severity::High);
            labels.push(("repeated_count".to_owned(), count.to_string()));
        }
        Self {
            occurrence,
            severity,
            message: None,
            labels,
            annotations: Vec::new(),
            slot,
        }
    }

    /// No stage may lower an escalated occurrence below `high`.
    pub fn severity_floor(&self) -> Severity {
        if self.occurrence.repeated_count.is_some() {
            Severity::High
        } else {
            Severity::Info
        }
    }

    /// The message as it stands: redacted if a stage redacted it.
    pub fn message(&self) -> &str {
        self.message
            .as_deref()
            .unwrap_or(&self.occurrence.event.message)
    }
}

/// An event a stage failed on, under the `dead-letter` policy.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub event: Processed,
    pub chain: String,
    pub stage: String,
    pub failure: Failure,
}

/// Why a stage failed on an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: FailureKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Used up its fuel (CPU limit).
    OutOfFuel,
    /// Tried to grow its memory past the cap.
    OutOfMemory,
    /// Did not return within its deadline (`limits.timeout`), or tried to
    /// wait (sleep or poll), which plugins may not do.
    Timeout,
    /// Trapped (a panic, `unreachable`, an out-of-bounds access...).
    Trap,
    /// Returned something the host refuses (bad label key, wrong length...).
    InvalidOutput,
    /// Skipped: the circuit breaker is open.
    BreakerOpen,
}

impl FailureKind {
    pub const ALL: [Self; 6] = [
        Self::OutOfFuel,
        Self::OutOfMemory,
        Self::Timeout,
        Self::Trap,
        Self::InvalidOutput,
        Self::BreakerOpen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OutOfFuel => "out_of_fuel",
            Self::OutOfMemory => "out_of_memory",
            Self::Timeout => "timeout",
            Self::Trap => "trap",
            Self::InvalidOutput => "invalid_output",
            Self::BreakerOpen => "breaker_open",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.detail)
    }
}
