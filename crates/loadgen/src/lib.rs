//! A fixed number of keep-alive connections sending a fixed total of requests, with latency
//! percentiles: the same generator drives the bare server and `serve`, so their figures can
//! be compared as a ratio measured in the same run.

mod latency;
mod run;

pub use latency::Percentiles;
pub use run::{run, LoadConfig, LoadReport};
