pub use inmoment_config::*;
