//! How one event ended, handed from the senders to the tally, the progress and `--failed`.

use tokio::sync::OwnedSemaphorePermit;

/// The end of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every call of the event succeeded.
    Delivered,
    /// The event makes no InMoment call (e.g. a screen, or InMoment switched off for it).
    Skipped,
    /// The event could not be read or mapped, or one of its calls failed; why.
    Failed(String),
}

/// What InMoment answered to the calls of one event that went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answers {
    pub calls: u64,
    pub eligible: u64,
    pub not_eligible: u64,
    /// Email surveys sent after an eligible answer.
    pub surveys: u64,
}

/// One settled event. Its `slot` in the read-ahead window frees when this is dropped, so
/// the reader never runs further ahead than the window.
#[derive(Debug)]
pub struct Settled {
    /// Line number in the input, from 1.
    pub line: u64,
    /// The line as read (without its newline), for `--failed`.
    pub text: Vec<u8>,
    pub verdict: Verdict,
    pub answers: Answers,
    pub slot: OwnedSemaphorePermit,
}
