//! The cache's protocol (SPEC 9.7): reserving room for a write before its bytes are staged,
//! evicting the least recently released unreferenced `cached` entries to make it, and the
//! lifecycle of what this process is loading ([`crate::Container::open_or_load`]).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use std::sync::OnceLock;

use super::clock::Stamps;
use super::shared::Shared;
use crate::catalog::{HeldByKey, Holds, Lifecycle, Reserve};
use crate::error::WriteError;
use crate::failpoint::failpoint;
use crate::format::name::ArrayName;

/// How often a write that waits for room looks again (and collects garbage again).
const ROOM_POLL: Duration = Duration::from_millis(20);
const ROOM_CLEAN_EVERY: Duration = Duration::from_secs(1);

impl Shared {
    /// Reserves `total` bytes (all of the write's staged files together; a reservation only
    /// grows) for the staged files `stem` of a write of `name`, before they are written (SPEC
    /// 9.7). If that would go over the container's limits, evicts what it must and asks again;
    /// if it cannot fit even then, collects garbage once (dead writers' reservations, unfinished
    /// removals) and asks again, then waits for room as long as this handle was told to
    /// ([`crate::Container::wait_for_room`]), or fails with [`WriteError::Capacity`]. Without
    /// limits it costs one catalog read.
    pub(crate) fn make_room(
        &self,
        name: &ArrayName,
        stem: &str,
        total: u64,
    ) -> Result<(), WriteError> {
        if !self.catalog().limits()?.any() {
            return Ok(());
        }
        let staging = format!("{}/{stem}", self.session_id());
        let deadline = self.room_wait().map(|d| Instant::now() + d);
        let mut cleaned: Option<Instant> = None;
        // Picked entries that could not be evicted (held meanwhile, no longer evictable): not
        // picked again until this write waits, so every round evicts something or ends.
        let mut failed: HashSet<String> = HashSet::new();
        loop {
            let fs_free = crate::fs::sys::fs_space(&self.root)
                .ok()
                .map(|(free, _)| free);
            let holds = LazyHolds::new(self).skipping(&failed);
            let decision =
                self.catalog()
                    .reserve(self.session_id(), &staging, total, fs_free, &holds)?;
            drop(holds);
            match decision {
                Reserve::Granted => return Ok(()),
                Reserve::Evict(picked) => {
                    let evicted = self.finish_evictions(&picked)?;
                    for (n, _) in picked {
                        if !evicted.iter().any(|(e, _)| *e == n) {
                            failed.insert(n);
                        }
                    }
                }
                Reserve::Short(shortfall) => {
                    if cleaned.is_none_or(|t| t.elapsed() >= ROOM_CLEAN_EVERY) {
                        // Dead writers' reservations and removals others left unfinished
                        // count until collected.
                        let _ = self.gc();
                        cleaned = Some(Instant::now());
                        // Once more with what could not go before: a holder may be gone.
                        failed.clear();
                        continue;
                    }
                    if deadline.is_some_and(|d| Instant::now() < d) {
                        std::thread::sleep(ROOM_POLL);
                        failed.clear(); // their holders may be gone by now
                        continue;
                    }
                    return Err(WriteError::Capacity {
                        container: self.root.clone(),
                        name: name.to_string(),
                        shortfall,
                    });
                }
            }
        }
    }

    /// Evicts the entries picked for eviction ([E4]): each under its exclusive stripe, only if
    /// no live session holds it then ([P3]) and it is still evictable. Returns those evicted.
    pub(crate) fn finish_evictions(
        &self,
        picked: &[(String, u64)],
    ) -> Result<Vec<(String, u64)>, WriteError> {
        let mut evicted = Vec::new();
        for (n, bytes) in picked {
            let Ok(name) = ArrayName::new(n) else {
                continue;
            };
            failpoint!("evict.before_stripe");
            let held = self.lock_name(&name).map_err(self.lock_err(&name))?;
            // No opener runs between its record and its read of the row while we hold the
            // stripe exclusively ([P4]): whoever holds the name now has a record.
            if self.live_holders_w(&name)? > 0 || !self.catalog().mark_evicted(name.as_str())? {
                continue;
            }
            self.finish_due_remove(&held)?;
            failpoint!("evict.after_remove");
            evicted.push((n.clone(), *bytes));
        }
        Ok(evicted)
    }

    /// Evicts what must go for the container to be within its limits now (or everything
    /// evictable, if that is not enough); returns what was evicted (name, bytes).
    pub(crate) fn trim(&self) -> Result<Vec<(String, u64)>, WriteError> {
        self.writable()?;
        let fs_free = crate::fs::sys::fs_space(&self.root)
            .ok()
            .map(|(free, _)| free);
        let holds = LazyHolds::new(self);
        let picked = self.catalog().trim(fs_free, &holds)?;
        self.finish_evictions(&picked)
    }

    /// Drops the reservations (SPEC 9.7) of dead sessions whose staged files are gone (after
    /// [`Shared::remove_dead_staging`]); an unfinished publish's stays until recovery's `live`
    /// flip. `reserving`: the sessions that have reservations, if the caller read them (else they
    /// are read here).
    pub(crate) fn drop_dead_reservations(
        &self,
        reserving: Option<Vec<String>>,
    ) -> Result<(), crate::error::ContainerError> {
        let sessions = match reserving {
            Some(s) => s,
            None => self.catalog().reserving_sessions()?,
        };
        for s in sessions {
            if self.session_alive(&s) || matches!(self.staging_of(&s), Ok(Some(_))) {
                continue;
            }
            self.catalog().drop_dead_reservations(&s)?;
        }
        Ok(())
    }

    /// How long this handle's writes wait for room under the limits (`None`: they do not).
    pub(crate) fn room_wait(&self) -> Option<Duration> {
        *crate::sync::lock(&self.room_wait)
    }

    /// Marks `name` as being loaded by this process with `lifecycle`, until
    /// [`Shared::end_loading`]: a publish of it that gives no lifecycle takes this one, and is
    /// held by this process in the transaction that makes it live (SPEC [E6]), so no eviction
    /// falls between the publish and the loader's open.
    pub(crate) fn begin_loading(&self, name: &str, lifecycle: Lifecycle) {
        crate::sync::lock(&self.loading).insert(
            name.to_string(),
            Loading {
                pid: std::process::id(),
                lifecycle,
                held: false,
            },
        );
    }

    /// Ends the load of `name` ([`Shared::begin_loading`]); returns whether its publish took a
    /// reference for this process, which the caller must give back (after opening it).
    pub(crate) fn end_loading(&self, name: &str) -> bool {
        crate::sync::lock(&self.loading)
            .remove(name)
            .is_some_and(|l| l.held && l.pid == std::process::id())
    }

    /// The lifecycle a publish of `name` takes, and whether this process is loading it.
    pub(crate) fn publish_lifecycle(
        &self,
        name: &str,
        explicit: Option<Lifecycle>,
    ) -> (Lifecycle, bool) {
        let loading = crate::sync::lock(&self.loading)
            .get(name)
            .filter(|l| l.pid == std::process::id())
            .map(|l| l.lifecycle);
        match (explicit, loading) {
            (Some(l), loading) => (l, loading.is_some()),
            (None, Some(l)) => (l, true),
            (None, None) => (Lifecycle::Persistent, false),
        }
    }

    /// Notes that the publish of `name`, which this process is loading, took this process's
    /// reference with its `live` flip.
    pub(crate) fn loaded_held(&self, name: &str) {
        if let Some(l) = crate::sync::lock(&self.loading).get_mut(name) {
            l.held = true;
        }
    }
}

/// [`Holds`] read at first use: every live session's references, and the release clock.
pub(crate) struct LazyHolds<'a> {
    shared: &'a Shared,
    held: OnceLock<Option<HeldByKey>>,
    stamps: Stamps,
    skip: Option<&'a HashSet<String>>,
}

impl<'a> LazyHolds<'a> {
    pub(crate) fn new(shared: &'a Shared) -> LazyHolds<'a> {
        LazyHolds {
            shared,
            held: OnceLock::new(),
            stamps: Stamps::default(),
            skip: None,
        }
    }

    /// Also not picking the names in `skip` ([`Holds::skipped`]).
    fn skipping(mut self, skip: &'a HashSet<String>) -> LazyHolds<'a> {
        self.skip = Some(skip);
        self
    }
}

impl Holds for LazyHolds<'_> {
    fn held(&self) -> Option<&HeldByKey> {
        self.held
            .get_or_init(|| self.shared.scan_holders().ok().map(|h| h.by_key))
            .as_ref()
    }

    fn released(&self, key: u64) -> i64 {
        self.stamps.get(&self.shared.root, key)
    }

    fn skipped(&self, name: &str) -> bool {
        self.skip.is_some_and(|s| s.contains(name))
    }
}

/// A name this process is loading ([`Shared::begin_loading`]).
pub(crate) struct Loading {
    /// The loading process (a forked child is not loading what its parent was).
    pid: u32,
    /// The lifecycle its publish takes when the loader gives none.
    lifecycle: Lifecycle,
    /// Whether its publish took a reference for this process that the loader's caller must
    /// give back once it has opened the entry.
    held: bool,
}
