//! Counters and histograms for `GET /metrics`, rendered by hand in the Prometheus text
//! format. Every dropped or rejected event is counted with its reason, because silent
//! drops are what users of Segment destinations complain about most.
//!
//! One [`Metrics`] value is shared (`Arc`) by ingest and delivery; nothing is global.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds (seconds) of the latency histograms.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A counter per combination of label values. The combinations are few (event types by
/// fate, routes by status), so they are found by a scan that needs no allocation: counting
/// runs for every event of every request.
struct Family<const N: usize> {
    name: &'static str,
    help: &'static str,
    labels: [&'static str; N],
    values: Mutex<Vec<([String; N], u64)>>,
}

impl<const N: usize> Family<N> {
    const fn new(name: &'static str, help: &'static str, labels: [&'static str; N]) -> Self {
        Family {
            name,
            help,
            labels,
            values: Mutex::new(Vec::new()),
        }
    }

    fn add(&self, values: [&str; N], n: u64) {
        let Ok(mut counts) = self.values.lock() else {
            return;
        };
        let known = counts
            .iter_mut()
            .find(|(key, _)| key.iter().zip(values).all(|(a, b)| a == b));
        match known {
            Some((_, count)) => *count += n,
            None => counts.push((values.map(str::to_string), n)),
        }
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} counter", self.name);
        let Ok(counts) = self.values.lock() else {
            return;
        };
        let mut sorted: Vec<&([String; N], u64)> = counts.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (values, count) in sorted {
            let labels: Vec<String> = self
                .labels
                .iter()
                .zip(values)
                .map(|(label, value)| format!("{label}=\"{}\"", escape(value)))
                .collect();
            let _ = writeln!(out, "{}{{{}}} {count}", self.name, labels.join(","));
        }
    }
}

/// A histogram with fixed buckets, all atomics.
struct Histogram {
    name: &'static str,
    help: &'static str,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(name: &'static str, help: &'static str) -> Self {
        Histogram {
            name,
            help,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, seconds: f64) {
        let seconds = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        // Saturating float-to-int conversion; microseconds are precise enough here.
        let micros = (seconds * 1e6) as u64;
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        let name = self.name;
        let _ = writeln!(out, "# HELP {name} {}", self.help);
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let n = bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {value}");
}

/// All metrics of the process. Ingest calls the `event_*` and `request` methods; the
/// delivery code calls [`Metrics::delivery`], [`Metrics::queue_depth`],
/// [`Metrics::dead_letters`] and [`Metrics::delivery_latency`].
pub struct Metrics {
    received: Family<1>,
    accepted: Family<1>,
    duplicate: Family<1>,
    rejected: Family<2>,
    skipped: Family<2>,
    requests: Family<2>,
    handler_errors: Family<1>,
    request_latency: Histogram,
    deliveries: Family<3>,
    eligibility: Family<1>,
    email_surveys: Family<1>,
    delivery_latency: Histogram,
    queue_depth: AtomicU64,
    dead_letters: AtomicU64,
    /// Partitions this node delivers, on a shared store (none: not rendered).
    partitions_held: Mutex<Option<u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            received: Family::new(
                "inmoment_events_received_total",
                "Events received, by type.",
                ["type"],
            ),
            accepted: Family::new(
                "inmoment_events_accepted_total",
                "Events stored for delivery, by type.",
                ["type"],
            ),
            duplicate: Family::new(
                "inmoment_events_duplicate_total",
                "Events answered as success but not stored again (repeated messageId).",
                ["type"],
            ),
            rejected: Family::new(
                "inmoment_events_rejected_total",
                "Events refused, by type and reason.",
                ["type", "reason"],
            ),
            skipped: Family::new(
                "inmoment_events_skipped_total",
                "Events accepted that produce no InMoment call, by type and reason.",
                ["type", "reason"],
            ),
            requests: Family::new(
                "inmoment_http_requests_total",
                "HTTP requests, by route and status.",
                ["route", "status"],
            ),
            handler_errors: Family::new(
                "inmoment_handler_errors_total",
                "Requests that failed as a whole on our side (timeout, overload, store unavailable), by reason.",
                ["reason"],
            ),
            request_latency: Histogram::new(
                "inmoment_http_request_duration_seconds",
                "Time from request to answer.",
            ),
            deliveries: Family::new(
                "inmoment_deliveries_total",
                "InMoment calls attempted, by call kind, outcome and HTTP status.",
                ["kind", "outcome", "status"],
            ),
            eligibility: Family::new(
                "inmoment_eligibility_answers_total",
                "Answers of InMoment's eligibility server to delivered checks.",
                ["eligible"],
            ),
            email_surveys: Family::new(
                "inmoment_email_survey_decisions_total",
                "Email survey decisions after eligibility answers: sent, or why not.",
                ["decision"],
            ),
            delivery_latency: Histogram::new(
                "inmoment_delivery_latency_seconds",
                "Time from acceptance of the event to InMoment's success answer.",
            ),
            queue_depth: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            partitions_held: Mutex::new(None),
        }
    }

    /// An event arrived (counted once per event, whatever becomes of it).
    pub fn event_received(&self, event_type: &str) {
        self.received.add([event_type], 1);
    }

    pub fn event_accepted(&self, event_type: &str) {
        self.accepted.add([event_type], 1);
    }

    pub fn event_duplicate(&self, event_type: &str) {
        self.duplicate.add([event_type], 1);
    }

    pub fn event_rejected(&self, event_type: &str, reason: &str) {
        self.rejected.add([event_type, reason], 1);
    }

    pub fn event_skipped(&self, event_type: &str, reason: &str) {
        self.skipped.add([event_type, reason], 1);
    }

    /// One HTTP request answered, with its latency.
    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        self.requests.add([route, &status.to_string()], 1);
        self.request_latency.observe(seconds);
    }

    /// A request failed as a whole on our side (e.g. `overloaded`, `unavailable`).
    pub fn handler_error(&self, reason: &str) {
        self.handler_errors.add([reason], 1);
    }

    /// One InMoment call attempt ended: `kind` of call, `outcome` (e.g. `delivered`,
    /// `retry`, `rejected`) and the HTTP status (`None` for a network error).
    pub fn delivery(&self, kind: &str, outcome: &str, status: Option<u16>) {
        let status = status.map_or_else(|| "none".to_string(), |s| s.to_string());
        self.deliveries.add([kind, outcome, &status], 1);
    }

    /// Calls waiting for delivery now.
    pub fn queue_depth(&self, n: u64) {
        self.queue_depth.store(n, Ordering::Relaxed);
    }

    /// Calls parked in the dead-letter store now.
    pub fn dead_letters(&self, n: u64) {
        self.dead_letters.store(n, Ordering::Relaxed);
    }

    /// Partitions of a shared store this node holds the lease of now.
    pub fn partitions_held(&self, n: u64) {
        if let Ok(mut held) = self.partitions_held.lock() {
            *held = Some(n);
        }
    }

    /// An eligibility check was answered (whether InMoment would survey the user now).
    pub fn eligibility(&self, eligible: bool) {
        self.eligibility
            .add([if eligible { "true" } else { "false" }], 1);
    }

    /// An email survey was decided after an eligibility answer (`sent` or why not).
    pub fn email_survey(&self, decision: &str) {
        self.email_surveys.add([decision], 1);
    }

    /// Time from acceptance to delivery of one call.
    pub fn delivery_latency(&self, seconds: f64) {
        self.delivery_latency.observe(seconds);
    }

    /// Everything in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.received.render(&mut out);
        self.accepted.render(&mut out);
        self.duplicate.render(&mut out);
        self.rejected.render(&mut out);
        self.skipped.render(&mut out);
        self.requests.render(&mut out);
        self.handler_errors.render(&mut out);
        self.request_latency.render(&mut out);
        self.deliveries.render(&mut out);
        self.eligibility.render(&mut out);
        self.email_surveys.render(&mut out);
        self.delivery_latency.render(&mut out);
        gauge(
            &mut out,
            "inmoment_queue_depth",
            "Calls waiting for delivery.",
            self.queue_depth.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "inmoment_dead_letters",
            "Calls parked in the dead-letter store.",
            self.dead_letters.load(Ordering::Relaxed),
        );
        if let Some(held) = self.partitions_held.lock().ok().and_then(|held| *held) {
            gauge(
                &mut out,
                "inmoment_partitions_held",
                "Partitions of the shared store this node delivers.",
                held,
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_counters_gauges_and_histograms() {
        let metrics = Metrics::new();
        metrics.event_received("track");
        metrics.event_received("track");
        metrics.event_rejected("track", "invalid_event");
        metrics.delivery("end_user", "delivered", Some(200));
        metrics.delivery("end_user", "retry", None);
        metrics.queue_depth(7);
        metrics.delivery_latency(0.02);
        let text = metrics.render();
        assert!(text.contains("inmoment_events_received_total{type=\"track\"} 2\n"));
        assert!(text.contains(
            "inmoment_events_rejected_total{type=\"track\",reason=\"invalid_event\"} 1\n"
        ));
        assert!(text.contains(
            "inmoment_deliveries_total{kind=\"end_user\",outcome=\"retry\",status=\"none\"} 1\n"
        ));
        assert!(text.contains("inmoment_queue_depth 7\n"));
        assert!(
            !text.contains("inmoment_partitions_held"),
            "shown without a shared store"
        );
        metrics.partitions_held(21);
        assert!(metrics.render().contains("inmoment_partitions_held 21\n"));
        metrics.eligibility(true);
        metrics.eligibility(false);
        metrics.eligibility(true);
        let text = metrics.render();
        assert!(text.contains("inmoment_eligibility_answers_total{eligible=\"true\"} 2\n"));
        assert!(text.contains("inmoment_delivery_latency_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(text.contains("inmoment_delivery_latency_seconds_bucket{le=\"0.01\"} 0\n"));
        assert!(text.contains("inmoment_delivery_latency_seconds_count 1\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::new();
        metrics.handler_error("a\"b\\c");
        assert!(metrics
            .render()
            .contains("inmoment_handler_errors_total{reason=\"a\\\"b\\\\c\"} 1"));
    }
}
