//! Sends [`inmoment_core::InMomentCall`]s to InMoment (formerly Wootric).
//!
//! Handlers describe calls; this crate delivers them: the token's regional hosts, OAuth
//! client credentials with a shared token cache, end-user id resolution with a cache,
//! one classification table for answers, a client-side limiter that follows InMoment's
//! rate-limit headers, and the tower stack (rate limit, concurrency, retry, per-attempt
//! timeout) in [`delivery_stack`].

mod classify;
mod config;
mod end_users;
mod error;
mod exchange;
mod headers;
mod limiter;
mod oauth;
mod outcome;
mod request;
mod retry;
mod service;
mod stack;

pub use classify::{classify, classify_transport, excerpt, Verdict, MAX_BODY_EXCERPT};
pub use config::{
    ClientConfig, ClientSecret, RetryConfig, StackConfig, WallClock, DEFAULT_REST_PREFIX,
};
pub use error::{ConfigError, DeliveryError};
pub use headers::{rate_limit_remaining, rate_limit_reset, retry_after};
pub use outcome::{Delivered, EligibilityAnswer};
pub use request::{form_encode, Endpoints, WireRequest};
pub use retry::DeliveryPolicy;
pub use service::{http_client, http_client_builder, InMomentClient};
pub use stack::{delivery_stack, DeliveryStack};
