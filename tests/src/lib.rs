//! Whole-service suites live in `tests/tests/`: the service (HTTP ingest, durable store and
//! delivery) runs in-process against the InMoment sandbox over real HTTP on 127.0.0.1.
//! Suites that drive the `inmoment-destination` binary itself (crash tests, real Segment
//! clients, CLI commands) live beside the binary in `crates/host/tests/`.
