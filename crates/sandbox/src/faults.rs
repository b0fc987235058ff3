//! Fault injection: fail, slow down or drop chosen requests, or expire every
//! token when a chosen request arrives. Requests are chosen with the
//! [`crate::routes::Matcher`] syntax.

use axum::http::{header, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::reply::{status, Reply, ReplyBody};
use crate::routes::Matcher;

/// One injected fault.
///
/// JSON (`POST /_sandbox/faults`):
/// `{"route":"POST /v1/end_users/*/responses","times":2,"after":0,"kind":"status","status":503,"body":{"error":"x"},"retry_after":5}`;
/// other kinds: `{"kind":"delay","ms":50}`, `{"kind":"drop"}`, `{"kind":"expire_tokens"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Which requests (matcher syntax: `*`, a route name, `METHOD /path/*`).
    pub route: String,
    /// How many matching requests it applies to; `null` = until reset.
    #[serde(default = "once")]
    pub times: Option<u32>,
    /// Matching requests let through untouched before it starts applying.
    #[serde(default)]
    pub after: u32,
    /// What happens.
    #[serde(flatten)]
    pub action: FaultAction,
}

fn once() -> Option<u32> {
    Some(1)
}

/// What a fault does to a matching request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this status instead of handling the request. A JSON
    /// string body is sent as `text/plain`; the default body is
    /// `{"error":"<reason>","status":<code>}`.
    Status {
        /// HTTP status.
        status: u16,
        /// Body (default as above).
        #[serde(default)]
        body: Option<Value>,
        /// Adds `Retry-After: <secs>`.
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Wait this long, then handle the request normally.
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// Abort the connection without a complete answer.
    Drop,
    /// Expire every access token, then handle the request (which then fails
    /// its token check if it needs one).
    ExpireTokens,
}

impl Fault {
    /// Answer the next matching request with `status`.
    pub fn status(route: impl Into<String>, status: u16) -> Self {
        Self::new(
            route,
            FaultAction::Status {
                status,
                body: None,
                retry_after: None,
            },
        )
    }

    /// Delay the next matching request by `ms`.
    pub fn delay(route: impl Into<String>, ms: u64) -> Self {
        Self::new(route, FaultAction::Delay { ms })
    }

    /// Drop the connection of the next matching request.
    pub fn drop_connection(route: impl Into<String>) -> Self {
        Self::new(route, FaultAction::Drop)
    }

    /// Expire all tokens when the next matching request arrives.
    pub fn expire_tokens(route: impl Into<String>) -> Self {
        Self::new(route, FaultAction::ExpireTokens)
    }

    /// A fault applying once.
    pub fn new(route: impl Into<String>, action: FaultAction) -> Self {
        Self {
            route: route.into(),
            times: Some(1),
            after: 0,
            action,
        }
    }

    /// Applies to `n` matching requests (`None`: until reset).
    pub fn times(mut self, n: Option<u32>) -> Self {
        self.times = n;
        self
    }

    /// Lets `n` matching requests through first.
    pub fn after(mut self, n: u32) -> Self {
        self.after = n;
        self
    }

    /// Sets the body of a status fault.
    pub fn body(mut self, value: Value) -> Self {
        if let FaultAction::Status { body, .. } = &mut self.action {
            *body = Some(value);
        }
        self
    }

    /// Sets `Retry-After` on a status fault.
    pub fn retry_after(mut self, secs: u64) -> Self {
        if let FaultAction::Status { retry_after, .. } = &mut self.action {
            *retry_after = Some(secs);
        }
        self
    }
}

/// Pending faults, in the order they were added.
#[derive(Debug, Default)]
pub struct Faults {
    pending: Vec<Fault>,
}

/// What the faults decided for one request.
#[derive(Debug, Default)]
pub struct Plan {
    /// Total delay before going on.
    pub delay_ms: u64,
    /// Expire tokens before going on.
    pub expire_tokens: bool,
    /// Answer instead of handling (status or drop).
    pub answer: Option<Reply>,
    /// Kinds applied, for the request log.
    pub applied: Vec<&'static str>,
}

impl Faults {
    /// Adds a fault.
    pub fn add(&mut self, fault: Fault) {
        self.pending.push(fault);
    }

    /// Faults still pending.
    pub fn list(&self) -> &[Fault] {
        &self.pending
    }

    /// Consumes the faults matching this request and says what to do.
    pub fn take(&mut self, method: &str, path: &str, route: &str) -> Plan {
        let mut plan = Plan::default();
        for fault in &mut self.pending {
            if !Matcher::new(fault.route.as_str()).matches(method, path, route) {
                continue;
            }
            let answers = matches!(fault.action, FaultAction::Status { .. } | FaultAction::Drop);
            if answers && plan.answer.is_some() {
                continue;
            }
            if fault.after > 0 {
                fault.after -= 1;
                continue;
            }
            apply(&fault.action, &mut plan);
            if let Some(n) = &mut fault.times {
                *n = n.saturating_sub(1);
            }
        }
        self.pending.retain(|f| f.times != Some(0));
        plan
    }
}

fn apply(action: &FaultAction, plan: &mut Plan) {
    match action {
        FaultAction::Status {
            status: code,
            body,
            retry_after,
        } => {
            let code = status(*code);
            let mut reply = match body {
                Some(Value::String(text)) => Reply::text(code, "text/plain", text),
                Some(value) => Reply::json(code, value.clone()),
                None => Reply::json(
                    code,
                    json!({
                        "error": code.canonical_reason().unwrap_or("Error"),
                        "status": code.as_u16()
                    }),
                ),
            };
            if let Some(secs) = retry_after {
                reply = reply.with_header(header::RETRY_AFTER, secs.to_string());
            }
            plan.answer = Some(reply);
            plan.applied.push("status");
        }
        FaultAction::Delay { ms } => {
            plan.delay_ms = plan.delay_ms.saturating_add(*ms);
            plan.applied.push("delay");
        }
        FaultAction::Drop => {
            plan.answer = Some(Reply {
                status: StatusCode::OK,
                headers: Vec::new(),
                body: ReplyBody::Drop,
            });
            plan.applied.push("drop");
        }
        FaultAction::ExpireTokens => {
            plan.expire_tokens = true;
            plan.applied.push("expire_tokens");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fault_applies_n_times_after_skipping() {
        let mut f = Faults::default();
        f.add(
            Fault::status("responses.create", 503)
                .times(Some(2))
                .after(1),
        );
        let take = |f: &mut Faults| f.take("POST", "/v1/end_users/1/responses", "responses.create");
        assert!(take(&mut f).answer.is_none());
        assert!(take(&mut f).answer.is_some());
        assert!(take(&mut f).answer.is_some());
        assert!(take(&mut f).answer.is_none());
        assert!(f.list().is_empty());
    }

    #[test]
    fn non_matching_requests_do_not_consume() {
        let mut f = Faults::default();
        f.add(Fault::drop_connection("POST /v1/end_users"));
        assert!(f
            .take("GET", "/v1/end_users", "end_users.list")
            .answer
            .is_none());
        assert_eq!(f.list().len(), 1);
    }

    #[test]
    fn delays_add_up_and_only_one_answer_is_used() {
        let mut f = Faults::default();
        f.add(Fault::delay("*", 3));
        f.add(Fault::delay("*", 4));
        f.add(Fault::status("*", 500));
        f.add(Fault::status("*", 502));
        let plan = f.take("GET", "/", "unknown");
        assert_eq!(plan.delay_ms, 7);
        assert_eq!(plan.answer.map(|r| r.status.as_u16()), Some(500));
        assert_eq!(f.list().len(), 1);
    }

    #[test]
    fn json_format_round_trips() {
        let f: Fault = serde_json::from_value(json!({
            "route": "POST /v1/end_users/*/responses",
            "kind": "status", "status": 503, "retry_after": 5
        }))
        .unwrap();
        assert_eq!(
            f,
            Fault::status("POST /v1/end_users/*/responses", 503).retry_after(5)
        );
        let forever: Fault =
            serde_json::from_value(json!({"route": "*", "kind": "drop", "times": null})).unwrap();
        assert_eq!(forever.times, None);
    }
}
