//! The host of inmoment-destination: the registry of linked handlers, the commands of the
//! `inmoment-destination` binary, and [`service`], which wires the pipeline together:
//! HTTP ingest (`inmoment-ingest`) → the journal (`inmoment-store`) → delivery to InMoment
//! (`inmoment-delivery`). A library so that tests and benches can drive it.

pub mod cli;
/// The configuration (the `inmoment-config` crate), kept at this path for `crate::config::…`.
pub mod config;
pub mod demo;
pub mod handler_deps;
pub mod handlers_cmd;
pub mod linked;
pub mod logging;
pub mod map_cmd;
pub mod mapper;
pub mod queue_cmd;
pub mod queue_shared;
pub mod remap_cmd;
pub mod remap_store;
pub mod send;
pub mod service;
pub mod source_args;
