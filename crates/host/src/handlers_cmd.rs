//! `inmoment-destination handlers`: what this binary can map.

use std::io::{self, Write};

use inmoment_core::Registry;

/// Writes one aligned line per handler: event type, crate, version.
pub fn run(registry: &Registry, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{:<10} {:<24} VERSION", "EVENT", "CRATE")?;
    for registration in registry.iter() {
        writeln!(
            out,
            "{:<10} {:<24} {}",
            registration.event_type.as_str(),
            registration.crate_name,
            registration.crate_version
        )?;
    }
    Ok(())
}
