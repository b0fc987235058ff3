//! `inmoment-destination queue --store postgres://…`: the same commands on the shared
//! journal of several nodes, plus who delivers which partitions (`queue remap` goes
//! through `remap_store.rs` for both stores).

use std::io::{self, Write};

use inmoment_postgres::PgAdmin;
use inmoment_store::{Replayed, Selection};

use crate::cli::{DeadCommand, QueueCommand};
use crate::config::{parse_duration, DURATION_HINT};

/// Runs one queue command against the journal at `url`; `Ok(false)` when some selected
/// dead letter did not exist.
pub fn run(url: &str, command: &QueueCommand, out: &mut impl Write) -> Result<bool, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let mut admin = PgAdmin::connect(url).await.map_err(|e| e.to_string())?;
        match command {
            QueueCommand::Stats => stats(&admin, out).await.map(|()| true),
            QueueCommand::Dead { command } => dead(&mut admin, command, out).await,
            QueueCommand::Remap(_) => Err("queue remap is run by remap_cmd".into()),
        }
    })
}

/// One JSON line per source (as for the embedded store), then one per node holding
/// partitions (`"node": "(none)"` for partitions nobody holds) with their lag.
async fn stats(admin: &PgAdmin, out: &mut impl Write) -> Result<(), String> {
    let now = chrono::Utc::now().timestamp_millis();
    for source in admin.stats(now).await? {
        line(out, &source)?;
    }
    for node in admin.owners(now).await? {
        line(out, &node)?;
    }
    Ok(())
}

async fn dead(
    admin: &mut PgAdmin,
    command: &DeadCommand,
    out: &mut impl Write,
) -> Result<bool, String> {
    match command {
        DeadCommand::List { limit } => {
            for letter in admin.dead_letters(*limit).await? {
                line(out, &letter)?;
            }
            Ok(true)
        }
        DeadCommand::Replay { all, ids } => {
            if !all && ids.is_empty() {
                return Err("dead replay: name dead letter ids or pass --all".into());
            }
            let selection = if *all {
                Selection::All
            } else {
                Selection::Ids(ids.clone())
            };
            let Replayed { moved, unknown } = admin.replay(&selection).await?;
            eprintln!("{moved} dead letter(s) back to pending");
            if unknown.is_empty() {
                return Ok(true);
            }
            let ids: Vec<String> = unknown.iter().map(i64::to_string).collect();
            eprintln!(
                "no dead letter with id {} (see `queue dead list`)",
                ids.join(", ")
            );
            Ok(false)
        }
        DeadCommand::Purge { older_than } => {
            let age = parse_duration(older_than)
                .ok_or_else(|| format!("--older-than `{older_than}`: expected {DURATION_HINT}"))?;
            let cutoff = chrono::Utc::now().timestamp_millis()
                - i64::try_from(age.as_millis()).unwrap_or(i64::MAX / 2);
            let purged = admin.purge_older_than(cutoff).await?;
            eprintln!("{purged} dead letter(s) deleted");
            Ok(true)
        }
    }
}

fn line(out: &mut impl Write, value: &impl serde::Serialize) -> Result<(), String> {
    let write = |out: &mut dyn Write| -> io::Result<()> {
        serde_json::to_writer(&mut *out, value).map_err(io::Error::from)?;
        out.write_all(b"\n")
    };
    write(out).map_err(|e| format!("writing output: {e}"))
}
