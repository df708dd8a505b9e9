//! Time, injectable for tests.

use std::fmt::Debug;

use jiff::Timestamp;

/// Where the [`TokenManager`](crate::TokenManager) reads the time. Tests inject a
/// controllable clock (the `testing` feature has `ManualClock`).
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Truncates to whole microseconds: the precision every store keeps (PostgreSQL's
/// `timestamptz` included), so a record reads back exactly as it was written.
pub(crate) fn truncate_to_micros(at: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(at.as_microsecond()).unwrap_or(at)
}
