//! Partition leases: which partitions this node delivers.
//!
//! Each heartbeat a node marks itself alive, renews the leases it keeps (at most its fair
//! share: partitions divided by live nodes) and claims free or expired ones up to that
//! share. Leases it no longer wants are not released but left to lapse, so whatever it
//! still has in flight for them ends before another node may start them.
//!
//! Locally a lease counts only until `renewal sent + lease - attempt deadline - half a
//! heartbeat`: a delivery started before then ends (the engine cuts it at the attempt
//! deadline) before the lease in the database expires, which is the earliest another node
//! can claim it. If renewals fail (the database is unreachable) delivery stops on its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool_postgres::Object;

/// The partitions this node holds, as of its last successful heartbeat.
#[derive(Debug, Default)]
struct Held {
    /// Delivered from now on; sorted.
    partitions: Vec<i32>,
    /// Claimed, but delivery has not restarted its scan for them yet: until it does, a
    /// scan from its current cursor would meet a user's later rows before their earlier
    /// ones, so these are not delivered (nor read) yet.
    claimed: Vec<i32>,
    /// By partition number, for the per-user check.
    by_number: Vec<bool>,
    /// After this the leases no longer count locally (see the module docs).
    valid_until: Option<Instant>,
}

pub(crate) struct Leases {
    pub node: String,
    partitions: u32,
    ttl: Duration,
    /// How long after a renewal is sent its leases count locally.
    valid_for: Duration,
    held: Mutex<Held>,
    /// Set when a heartbeat claimed partitions (see [`Held::claimed`]).
    gained: AtomicBool,
}

/// What one heartbeat saw and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Beat {
    pub live_nodes: i64,
    pub held: usize,
    pub claimed: usize,
}

impl Leases {
    pub fn new(node: String, partitions: u32, ttl: Duration, valid_for: Duration) -> Leases {
        Leases {
            node,
            partitions,
            ttl,
            valid_for,
            held: Mutex::new(Held::default()),
            gained: AtomicBool::new(false),
        }
    }

    /// The partitions this node may start deliveries in now (none once its leases lapsed).
    pub fn held(&self) -> Vec<i32> {
        match self.held.lock() {
            Ok(held) if held.valid_until.is_some_and(|until| Instant::now() < until) => {
                held.partitions.clone()
            }
            _ => Vec::new(),
        }
    }

    /// Every partition this node holds a lease on now, claimed ones included (for
    /// metrics and `queue`; delivery reads [`Leases::held`]).
    pub fn leased(&self) -> Vec<i32> {
        match self.held.lock() {
            Ok(held) if held.valid_until.is_some_and(|until| Instant::now() < until) => {
                let mut all = [held.partitions.as_slice(), held.claimed.as_slice()].concat();
                all.sort_unstable();
                all
            }
            _ => Vec::new(),
        }
    }

    pub fn holds(&self, partition: i32) -> bool {
        let Ok(held) = self.held.lock() else {
            return false;
        };
        held.valid_until.is_some_and(|until| Instant::now() < until)
            && usize::try_from(partition)
                .ok()
                .and_then(|p| held.by_number.get(p).copied())
                .unwrap_or(false)
    }

    /// True once after a heartbeat claimed partitions; they are delivered from now on. The
    /// caller restarts its scan from the start before reading again.
    pub fn take_gained(&self) -> bool {
        if !self.gained.swap(false, Ordering::AcqRel) {
            return false;
        }
        let Ok(mut held) = self.held.lock() else {
            return false;
        };
        let claimed = std::mem::take(&mut held.claimed);
        for &p in &claimed {
            if let Some(slot) = usize::try_from(p)
                .ok()
                .and_then(|p| held.by_number.get_mut(p))
            {
                *slot = true;
            }
        }
        held.partitions.extend(claimed);
        held.partitions.sort_unstable();
        true
    }

    /// One heartbeat: alive, renew, claim. On error nothing local changes, so the leases
    /// run out locally when they would in the database.
    pub async fn beat(&self, client: &Object) -> Result<Beat, tokio_postgres::Error> {
        let sent = Instant::now();
        let ttl = self.ttl.as_secs_f64();
        client
            .execute(
                "INSERT INTO nodes (node, started_at, seen_at) VALUES ($1, now(), now())
                 ON CONFLICT (node) DO UPDATE SET seen_at = now()",
                &[&self.node],
            )
            .await?;
        let live: i64 = client
            .query_one(
                "SELECT count(*) FROM nodes WHERE seen_at > now() - make_interval(secs => $1)",
                &[&ttl],
            )
            .await?
            .get(0);
        let live = live.max(1);
        let share = usize::try_from((i64::from(self.partitions) + live - 1) / live).unwrap_or(0);
        let mut keep = self.held_in_db_order();
        keep.truncate(share);
        let renewed: Vec<i32> = client
            .query(
                "UPDATE partitions SET lease_until = now() + make_interval(secs => $2)
                 WHERE owner = $1 AND lease_until > now() AND partition = ANY($3)
                 RETURNING partition",
                &[&self.node, &ttl, &keep],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let want = i64::try_from(share.saturating_sub(renewed.len())).unwrap_or(0);
        let mut claimed = Vec::new();
        if want > 0 {
            claimed = client
                .query(
                    "UPDATE partitions SET owner = $1, lease_until = now() + make_interval(secs => $2),
                            epoch = epoch + 1
                     WHERE partition IN (
                         SELECT partition FROM partitions
                         WHERE owner IS NULL OR lease_until IS NULL OR lease_until <= now()
                         ORDER BY partition LIMIT $3 FOR UPDATE SKIP LOCKED)
                     RETURNING partition",
                    &[&self.node, &ttl, &want],
                )
                .await?
                .iter()
                .map(|row| row.get::<_, i32>(0))
                .collect();
        }
        let held = renewed.len() + claimed.len();
        let newly = claimed.len();
        self.set_held(renewed, claimed, sent + self.valid_for);
        if newly > 0 {
            self.gained.store(true, Ordering::Release);
        }
        Ok(Beat {
            live_nodes: live,
            held,
            claimed: newly,
        })
    }

    /// Gives every lease back at once (a clean shutdown, after delivery stopped), so the
    /// other nodes take over at their next heartbeat instead of after the lease.
    pub async fn release(&self, client: &Object) -> Result<(), tokio_postgres::Error> {
        self.set_held(Vec::new(), Vec::new(), Instant::now());
        client
            .execute(
                "UPDATE partitions SET owner = NULL, lease_until = NULL WHERE owner = $1",
                &[&self.node],
            )
            .await?;
        client
            .execute("DELETE FROM nodes WHERE node = $1", &[&self.node])
            .await?;
        Ok(())
    }

    /// The partitions held, claimed ones too, whatever their local validity (renewal
    /// decides in the database); sorted.
    fn held_in_db_order(&self) -> Vec<i32> {
        let mut all = self
            .held
            .lock()
            .map(|held| [held.partitions.as_slice(), held.claimed.as_slice()].concat())
            .unwrap_or_default();
        all.sort_unstable();
        all
    }

    /// Records a heartbeat's leases: `renewed` stay as they were (delivered, or still
    /// waiting for delivery's rescan), `claimed` wait for it.
    fn set_held(&self, renewed: Vec<i32>, claimed: Vec<i32>, valid_until: Instant) {
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        let mut waiting: Vec<i32> = renewed
            .iter()
            .copied()
            .filter(|p| held.claimed.contains(p))
            .collect();
        waiting.extend(claimed);
        let mut partitions: Vec<i32> = renewed
            .into_iter()
            .filter(|p| !waiting.contains(p))
            .collect();
        partitions.sort_unstable();
        let mut by_number = vec![false; usize::try_from(self.partitions).unwrap_or(0)];
        for &p in &partitions {
            if let Some(slot) = usize::try_from(p).ok().and_then(|p| by_number.get_mut(p)) {
                *slot = true;
            }
        }
        *held = Held {
            partitions,
            claimed: waiting,
            by_number,
            valid_until: Some(valid_until),
        };
    }
}
