//! The host's current batch, read a column at a time: the first read of a
//! field fetches that field of every event of the batch in one host call
//! (contract 0.1.2's `batch.texts`, `times`, `counts`, `severities`), and
//! every later read in the same batch slices that one copy. (A filter's
//! verdicts go back in one value too: [`crate::Verdicts`].)

use std::cell::OnceCell;
use std::fmt;
use std::rc::Rc;

use crate::bindings::filter::aetherius::plugin::batch::{self, TextColumn};
use crate::types::{Severity, Timestamp};

pub(crate) use batch::{TextField as Text, TimeField as Time};

const TEXT_FIELDS: usize = Text::ReportingController as usize + 1;
const TIME_FIELDS: usize = Time::SeriesLastObserved as usize + 1;

/// The columns of one batch fetched so far. Lives for one stage call.
pub struct Batch {
    len: u32,
    texts: [OnceCell<TextColumn>; TEXT_FIELDS],
    times: [OnceCell<Vec<Option<Timestamp>>>; TIME_FIELDS],
    counts: OnceCell<Vec<u32>>,
    severities: OnceCell<Vec<Severity>>,
}

impl Batch {
    /// The host's current batch of `len` events; nothing is fetched yet.
    pub fn new(len: u32) -> Self {
        Batch {
            len,
            texts: [const { OnceCell::new() }; TEXT_FIELDS],
            times: [const { OnceCell::new() }; TIME_FIELDS],
            counts: OnceCell::new(),
            severities: OnceCell::new(),
        }
    }

    /// A view of each event, in order; each keeps the batch alive.
    pub fn events(self) -> Vec<crate::Event> {
        let batch = Rc::new(self);
        (0..batch.len)
            .map(|index| crate::Event::at(Rc::clone(&batch), index))
            .collect()
    }

    pub(crate) fn text(&self, field: Text, index: u32) -> &str {
        let column = self.texts[field as usize].get_or_init(|| batch::texts(field));
        crate::verdicts::packed_text(&column.ends, &column.text, index)
    }

    pub(crate) fn time(&self, field: Time, index: u32) -> Option<Timestamp> {
        self.times[field as usize].get_or_init(|| batch::times(field))[index as usize]
    }

    pub(crate) fn count(&self, index: u32) -> u32 {
        self.counts.get_or_init(batch::counts)[index as usize]
    }

    pub(crate) fn severity(&self, index: u32) -> Severity {
        self.severities.get_or_init(batch::severities)[index as usize]
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch").field("len", &self.len).finish()
    }
}
