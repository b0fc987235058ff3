//! The host of inmoment-destination: the registry of linked handlers and the commands of
//! the `inmoment-destination` binary. A library so that tests and benches can drive it.

pub mod accept;
pub mod cli;
pub mod delivery;
pub mod handlers_cmd;
pub mod linked;
pub mod map_cmd;
pub mod mapper;
pub mod queue_cmd;
pub mod store;
