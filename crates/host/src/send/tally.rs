//! Counts settled events and renders the summary printed at the end of `send`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::outcome::{Answers, Verdict};

/// Distinct failure reasons kept; further ones are counted together, so a file of events
/// that each fail differently cannot grow memory without bound.
pub const MAX_REASONS: usize = 100;

/// What `OTHER_REASONS` failures are listed under.
const OTHER_REASONS: &str = "other reasons (not listed)";

/// Running counts while events settle.
#[derive(Debug, Default)]
pub struct Tally {
    pub events: u64,
    pub delivered: u64,
    pub skipped: u64,
    pub failed: u64,
    answers: Answers,
    reasons: HashMap<String, Failures>,
}

/// How often one reason made an event fail, and where first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failures {
    pub reason: String,
    pub count: u64,
    pub first_line: u64,
}

/// The end-of-run summary (also printed as JSON with `--summary-json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Non-blank lines read.
    pub events: u64,
    pub delivered: u64,
    pub skipped: u64,
    pub failed: u64,
    /// InMoment calls that succeeded (an event makes one to three).
    pub calls_delivered: u64,
    /// Eligibility answers: InMoment would survey the user now, or would not.
    pub eligible: u64,
    pub not_eligible: u64,
    /// Email surveys sent after eligible answers (`survey_channel = "email"`).
    pub email_surveys: u64,
    pub elapsed_secs: f64,
    pub events_per_sec: f64,
    /// Most frequent first.
    pub failures: Vec<Failures>,
}

impl Tally {
    /// Counts one settled event at `line`.
    pub fn add(&mut self, line: u64, verdict: &Verdict, answers: Answers) {
        self.events += 1;
        self.answers.calls += answers.calls;
        self.answers.eligible += answers.eligible;
        self.answers.not_eligible += answers.not_eligible;
        self.answers.surveys += answers.surveys;
        match verdict {
            Verdict::Delivered => self.delivered += 1,
            Verdict::Skipped => self.skipped += 1,
            Verdict::Failed(reason) => {
                self.failed += 1;
                self.count_reason(line, reason);
            }
        }
    }

    fn count_reason(&mut self, line: u64, reason: &str) {
        let key = if self.reasons.contains_key(reason) || self.reasons.len() < MAX_REASONS {
            reason
        } else {
            OTHER_REASONS
        };
        let entry = self
            .reasons
            .entry(key.to_string())
            .or_insert_with(|| Failures {
                reason: key.to_string(),
                count: 0,
                first_line: line,
            });
        entry.count += 1;
        entry.first_line = entry.first_line.min(line);
    }

    pub fn finish(self, elapsed: Duration) -> Summary {
        let mut failures: Vec<Failures> = self.reasons.into_values().collect();
        failures.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_line.cmp(&b.first_line)));
        let secs = elapsed.as_secs_f64();
        Summary {
            events: self.events,
            delivered: self.delivered,
            skipped: self.skipped,
            failed: self.failed,
            calls_delivered: self.answers.calls,
            eligible: self.answers.eligible,
            not_eligible: self.answers.not_eligible,
            email_surveys: self.answers.surveys,
            elapsed_secs: secs,
            events_per_sec: if secs > 0.0 {
                self.events as f64 / secs
            } else {
                0.0
            },
            failures,
        }
    }
}

impl Summary {
    /// The summary for people; `failed_file` is where `--failed` wrote the failed lines.
    pub fn text(&self, failed_file: Option<&Path>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} events in {:.1} s ({:.0} events/s): {} delivered, {} skipped, {} failed",
            self.events,
            self.elapsed_secs,
            self.events_per_sec,
            self.delivered,
            self.skipped,
            self.failed
        );
        let _ = writeln!(
            out,
            "InMoment calls delivered: {}; eligibility answers: {} eligible, {} not eligible",
            self.calls_delivered, self.eligible, self.not_eligible
        );
        if self.email_surveys > 0 {
            let _ = writeln!(out, "Email surveys sent: {}", self.email_surveys);
        }
        if self.failures.is_empty() {
            return out;
        }
        out.push_str("Failed events by reason:\n");
        for failure in &self.failures {
            let _ = writeln!(
                out,
                "  {:>7}  {} (first at line {})",
                failure.count, failure.reason, failure.first_line
            );
        }
        match failed_file {
            Some(path) => {
                let _ = writeln!(
                    out,
                    "The failed events' lines are in {}: fix the cause, then send that file.",
                    path.display()
                );
            }
            None => {
                out.push_str("Pass --failed FILE to keep the failed events' lines for a re-run.\n")
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_grouped_by_reason_most_frequent_first() {
        let mut tally = Tally::default();
        let ok = Answers {
            calls: 2,
            eligible: 1,
            not_eligible: 0,
            surveys: 0,
        };
        tally.add(1, &Verdict::Delivered, ok);
        tally.add(2, &Verdict::Failed("a".into()), Answers::default());
        tally.add(3, &Verdict::Failed("b".into()), Answers::default());
        tally.add(4, &Verdict::Failed("b".into()), Answers::default());
        tally.add(5, &Verdict::Skipped, Answers::default());
        let summary = tally.finish(Duration::from_secs(2));
        assert_eq!(
            (
                summary.events,
                summary.delivered,
                summary.failed,
                summary.skipped
            ),
            (5, 1, 3, 1)
        );
        assert_eq!(summary.calls_delivered, 2);
        assert_eq!(summary.events_per_sec, 2.5);
        let reasons: Vec<(&str, u64, u64)> = summary
            .failures
            .iter()
            .map(|f| (f.reason.as_str(), f.count, f.first_line))
            .collect();
        assert_eq!(reasons, [("b", 2, 3), ("a", 1, 2)]);
        let text = summary.text(None);
        assert!(text.contains("5 events in 2.0 s"), "{text}");
        assert!(text.contains("--failed FILE"), "{text}");
    }

    #[test]
    fn reasons_beyond_the_cap_are_counted_together() {
        let mut tally = Tally::default();
        for n in 0..(MAX_REASONS as u64 + 5) {
            tally.add(n + 1, &Verdict::Failed(format!("r{n}")), Answers::default());
        }
        let summary = tally.finish(Duration::from_secs(1));
        assert_eq!(summary.failures.len(), MAX_REASONS + 1);
        assert_eq!(summary.failures[0].reason, OTHER_REASONS);
        assert_eq!(summary.failures[0].count, 5);
    }
}
