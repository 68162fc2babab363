//! Timestamps: a wall-clock time for display and a monotonic one for ages.
//! Both read the vDSO clock: no allocation, no lock.

use std::time::{Duration, Instant, SystemTime};

/// When something happened, on both clocks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timestamp {
    pub(crate) wall: SystemTime,
    pub(crate) mono: Instant,
}

impl Timestamp {
    /// Now.
    pub(crate) fn now() -> Timestamp {
        Timestamp {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }

    /// Age of this timestamp as of `now` (zero if `now` is earlier).
    pub(crate) fn age_at(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.mono)
    }
}
