//! Durations in plugin configs — the same grammar as the host's YAML:
//! `"300ms"`, `"90s"`, `"5m"`, `"1h30m"`; a bare number is refused, because
//! `"300"` could mean seconds or milliseconds. (It is [humantime]'s, through
//! the `aetherius-duration` crate the host uses as well.)
//!
//! ```
//! use std::time::Duration;
//! use aetherius_sdk::duration;
//!
//! assert_eq!(duration::parse("5m"), Ok(Duration::from_secs(300)));
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     #[serde(deserialize_with = "duration::deserialize")]
//!     max_age: Duration,
//! }
//! let config: Config = serde_json::from_str(r#"{"max_age": "90s"}"#).unwrap();
//! assert_eq!(config.max_age, Duration::from_secs(90));
//! ```
//!
//! [humantime]: https://docs.rs/humantime

pub use aetherius_duration::{DurationError, deserialize, parse};
