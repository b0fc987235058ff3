//! The request log (bounded, oldest dropped) and per-route counters (never
//! trimmed), so tests can assert what a client sent even under load.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One request as the sandbox saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// Arrival order, from 1.
    pub seq: u64,
    /// Sandbox clock at arrival, unix seconds.
    pub at: i64,
    /// Arrival in microseconds since the sandbox started, on a monotonic clock: for
    /// measuring the gap between two requests exactly.
    #[serde(default)]
    pub arrived_us: u64,
    /// HTTP method.
    pub method: String,
    /// Path as received (not decoded).
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Route name (`unknown` when none matched).
    pub route: String,
    /// Query and body parameters with their raw bracket keys; a key sent
    /// several times has an array of values.
    pub params: Map<String, Value>,
    /// Selected request headers (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// Status answered; 0 when the connection was dropped.
    pub status: u16,
    /// Account the request was attributed to, if any.
    pub account: Option<String>,
    /// Faults applied (`status`, `delay`, `drop`, `expire_tokens`).
    pub faults: Vec<String>,
}

/// Bounded log plus counters.
#[derive(Debug)]
pub struct RequestLog {
    cap: usize,
    entries: VecDeque<RecordedRequest>,
    counters: BTreeMap<String, u64>,
    total: u64,
}

impl RequestLog {
    /// An empty log keeping at most `cap` entries.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            entries: VecDeque::new(),
            counters: BTreeMap::new(),
            total: 0,
        }
    }

    /// Changes the cap, dropping the oldest entries beyond it.
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
        self.trim();
    }

    /// Records a finished request and counts it under its route.
    pub fn push(&mut self, entry: RecordedRequest) {
        *self.counters.entry(entry.route.clone()).or_default() += 1;
        self.total += 1;
        self.entries.push_back(entry);
        self.trim();
    }

    fn trim(&mut self) {
        while self.entries.len() > self.cap {
            self.entries.pop_front();
        }
    }

    /// Runs `f` on the kept entries in logging order, without copying them.
    pub fn with_entries<R>(&mut self, f: impl FnOnce(&[RecordedRequest]) -> R) -> R {
        f(self.entries.make_contiguous())
    }

    /// Kept entries in arrival (`seq`) order.
    pub fn entries(&self) -> Vec<RecordedRequest> {
        let mut all: Vec<RecordedRequest> = self.entries.iter().cloned().collect();
        all.sort_by_key(|e| e.seq);
        all
    }

    /// Requests counted for a route name; `*` gives the total.
    pub fn count(&self, route: &str) -> u64 {
        if route == "*" {
            return self.total;
        }
        self.counters.get(route).copied().unwrap_or(0)
    }

    /// `{"total":n,"routes":{"end_users.create":n,…}}`.
    pub fn counters_json(&self) -> Value {
        serde_json::json!({"total": self.total, "routes": self.counters})
    }

    /// Empties log and counters.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.counters.clear();
        self.total = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, route: &str) -> RecordedRequest {
        RecordedRequest {
            seq,
            arrived_us: 0,
            at: 0,
            method: "GET".into(),
            path: "/".into(),
            query: String::new(),
            route: route.into(),
            params: Map::new(),
            headers: BTreeMap::new(),
            status: 200,
            account: None,
            faults: Vec::new(),
        }
    }

    #[test]
    fn cap_drops_oldest_but_counters_keep_everything() {
        let mut log = RequestLog::new(2);
        for i in 1..=5 {
            log.push(entry(i, "end_users.list"));
        }
        let seqs: Vec<u64> = log.entries().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![4, 5]);
        assert_eq!(log.count("end_users.list"), 5);
        assert_eq!(log.count("*"), 5);
        assert_eq!(log.count("responses.create"), 0);
    }
}
