//! Refused requests and rejected events are logged, but a flood of bad requests must not
//! flood the log: at most a set number of lines a second, then one line that counts the
//! lines held back (every one of them is still counted in `/metrics`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A per-second allowance of log lines, shared by every request.
#[derive(Debug)]
pub struct LogBudget {
    per_second: u32,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    used: u32,
    held_back: u64,
}

impl LogBudget {
    pub fn new(per_second: u32) -> LogBudget {
        LogBudget {
            per_second,
            window: Mutex::new(Window {
                started: Instant::now(),
                used: 0,
                held_back: 0,
            }),
        }
    }

    /// Whether one more line may be written now. The first call of a new second first
    /// logs how many lines the last one held back.
    pub fn allow(&self) -> bool {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if window.started.elapsed() >= Duration::from_secs(1) {
            if window.held_back > 0 {
                tracing::info!(
                    held_back = window.held_back,
                    "Log lines about refused requests and rejected events were held back (see /metrics for every one)."
                );
            }
            *window = Window {
                started: Instant::now(),
                used: 0,
                held_back: 0,
            };
        }
        if window.used < self.per_second {
            window.used += 1;
            true
        } else {
            window.held_back += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_budget_then_holds_back() {
        let budget = LogBudget::new(3);
        let allowed = (0..10).filter(|_| budget.allow()).count();
        assert_eq!(allowed, 3);
    }
}
