//! A filter whose `init` fails for every config, `null` included.

use aetherius_sdk::{Event, Filter, Verdict};
use serde::de::IgnoredAny;

/// Never gets past `init`.
pub struct RejectConfig;

impl Filter for RejectConfig {
    type Config = IgnoredAny;

    fn new(_config: IgnoredAny) -> Result<Self, String> {
        Err("this plugin rejects every config".to_owned())
    }

    fn filter(&mut self, _event: &Event) -> Verdict {
        Verdict::Keep
    }
}

aetherius_sdk::export_filter!(RejectConfig);
