//! Progress while sending: a bar with rate and ETA on a terminal, otherwise a plain line
//! on stderr every few seconds (for logs and CI, where a redrawn bar is noise).

use std::fmt;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

use super::tally::Tally;

/// How often the plain line is printed.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Shows how far the run is; `total` is the number of events when known (a file).
pub enum Progress {
    Bar {
        bar: ProgressBar,
        failed: u64,
    },
    Plain {
        total: Option<u64>,
        started: Instant,
        last: Instant,
    },
}

impl Progress {
    /// A bar when stderr is a terminal, else plain lines.
    pub fn new(total: Option<u64>) -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::bar(total)
        } else {
            let now = Instant::now();
            Progress::Plain {
                total,
                started: now,
                last: now,
            }
        }
    }

    fn bar(total: Option<u64>) -> Progress {
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::new(total),
                "{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} events, {rate} events/s, ETA {eta} {msg}",
            ),
            None => (
                ProgressBar::new_spinner(),
                "{spinner} {elapsed_precise} {pos} events, {rate} events/s {msg}",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            let rate = |state: &ProgressState, out: &mut dyn fmt::Write| {
                let _ = write!(out, "{:.0}", state.per_sec());
            };
            bar.set_style(style.with_key("rate", rate).progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress::Bar { bar, failed: 0 }
    }

    /// After each settled event.
    pub fn update(&mut self, tally: &Tally) {
        match self {
            Progress::Bar { bar, failed } => {
                bar.set_position(tally.events);
                if tally.failed != *failed {
                    *failed = tally.failed;
                    bar.set_message(format!("({failed} failed)"));
                }
            }
            Progress::Plain {
                total,
                started,
                last,
            } => {
                if last.elapsed() < PLAIN_EVERY {
                    return;
                }
                *last = Instant::now();
                eprintln!("{}", plain_line(tally, *total, started.elapsed()));
            }
        }
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Progress::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

/// `send: 5000/10000 events (4990 delivered, 10 failed), 980 events/s, ETA 5 s`.
fn plain_line(tally: &Tally, total: Option<u64>, elapsed: Duration) -> String {
    let rate = tally.events as f64 / elapsed.as_secs_f64().max(0.001);
    let done = match total {
        Some(total) => format!("{}/{total}", tally.events),
        None => tally.events.to_string(),
    };
    let eta = match total {
        Some(total) if rate > 0.0 => {
            let left = total.saturating_sub(tally.events) as f64 / rate;
            format!(", ETA {left:.0} s")
        }
        _ => String::new(),
    };
    format!(
        "send: {done} events ({} delivered, {} failed), {rate:.0} events/s{eta}",
        tally.delivered, tally.failed
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::outcome::{Answers, Verdict};

    #[test]
    fn the_plain_line_has_counts_rate_and_eta() {
        let mut tally = Tally::default();
        for line in 1..=100 {
            tally.add(line, &Verdict::Delivered, Answers::default());
        }
        assert_eq!(
            plain_line(&tally, Some(300), Duration::from_secs(2)),
            "send: 100/300 events (100 delivered, 0 failed), 50 events/s, ETA 4 s"
        );
        assert_eq!(
            plain_line(&tally, None, Duration::from_secs(2)),
            "send: 100 events (100 delivered, 0 failed), 50 events/s"
        );
    }
}
