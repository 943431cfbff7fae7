//! A process forked from one that uses a container (SPEC [P2]): its first use makes its own state
//! (its heir), which re-takes under its own session the references its inherited handles stand
//! for; inherited references and in-place writers end without touching the parent's.

use std::sync::Mutex;

use super::refs::Counts;
use super::shared::{OpenArrays, Proc, Shared};
use crate::catalog::ArrayState;
use crate::format::name::ArrayName;
use crate::fs::sys;
use crate::sync::lock;

/// What a forked child inherited from its parent's state: the references its handles stand for.
pub(super) struct Inherited {
    pub(super) counts: Counts,
    pub(super) unheld: Counts,
    pub(super) arrays: OpenArrays,
    pub(super) writers: Counts,
    pub(super) unheld_writers: Counts,
}

/// Takes one from `name`'s count (removing it at zero); whether there was one.
pub(crate) fn decrement_count(counts: &mut Counts, name: &str) -> bool {
    match counts.get_mut(name) {
        Some(c) if *c > 1 => {
            *c -= 1;
            true
        }
        Some(_) => {
            counts.remove(name);
            true
        }
        None => false,
    }
}

/// Takes one from `name`'s count in `m` (a forked child's copy); whether there was one. Never
/// blocks for long on a lock a vanished thread of the parent may hold.
pub(super) fn decrement(m: &Mutex<Counts>, name: &str) -> bool {
    for _ in 0..100 {
        match m.try_lock() {
            Ok(mut counts) => return decrement_count(&mut counts, name),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
    false
}

/// A copy of what `m` guards, inherited through fork(). A thread of the parent may have held the
/// lock at fork(); that thread does not exist in the child, so never block on it: `None` then.
pub(super) fn clone_unblocked<T: Clone>(m: &Mutex<T>) -> Option<T> {
    for _ in 0..100 {
        match m.try_lock() {
            Ok(g) => return Some(g.clone()),
            Err(std::sync::TryLockError::Poisoned(e)) => return Some(e.into_inner().clone()),
            Err(std::sync::TryLockError::WouldBlock) => {
                std::thread::sleep(std::time::Duration::from_millis(1))
            }
        }
    }
    None
}

impl Shared {
    /// This process's state: the opener's, or (in a forked child) its own heir, made on first
    /// use ([P2]). One atomic load when nothing was forked. If a forked child cannot start its
    /// own session, a state whose catalog says why (and the next use tries again).
    pub(crate) fn here(&self) -> &Proc {
        let now = sys::fork_epoch();
        let mut p = &self.origin;
        while p.epoch != now {
            if let Some(h) = p.heir.get() {
                p = h;
                continue;
            }
            let g = lock(&self.heir_lock);
            if p.heir.get().is_none() {
                match self.heir_of(p) {
                    Ok(h) => {
                        let _ = p.heir.set(Box::new(h));
                        drop(g);
                        self.unstamp_inherited_writers();
                    }
                    Err(why) => return self.broken_here(why),
                }
            }
        }
        p
    }

    /// Once a forked child's heir is installed: the arrays whose first in-place writer it
    /// registered again lose the checksums in their metadata file ([W7]), as at a first open
    /// for in-place writing. A failure leaves them stale in the catalog (fsck says so).
    pub(super) fn unstamp_inherited_writers(&self) {
        let names = std::mem::take(&mut *lock(&self.here().unstamp));
        for n in names {
            let Ok(name) = ArrayName::new(&n) else {
                continue;
            };
            let Ok(held) = self.lock_name(&name) else {
                continue;
            };
            if let Ok(Some(rec)) = self.catalog().get(name.as_str()) {
                if rec.state == ArrayState::Live && rec.checksum_stale {
                    let _ = self.rewrite_yaml(&held, &rec.meta, None);
                }
            }
        }
    }

    /// The state that reports a forked child's failure to start its own session.
    pub(super) fn broken_here(&self, why: String) -> &Proc {
        let b = self
            .broken
            .get_or_init(|| Box::new(Proc::broken(&self.dir, why.clone())));
        lock(&b.catalog).set_unusable(why);
        b
    }

    /// This process's state if it has one already (never makes an heir); otherwise the last
    /// state it inherited.
    pub(super) fn here_if_started(&self) -> Result<&Proc, &Proc> {
        let now = sys::fork_epoch();
        let mut p = &self.origin;
        while p.epoch != now {
            match p.heir.get() {
                Some(h) => p = h,
                None => return Err(p),
            }
        }
        Ok(p)
    }

    /// The state of a forked child, from the state `parent` it inherited (under `heir_lock`): its
    /// own catalog connection and session, and, under that session, a reference for every one
    /// the inherited handles stand for that is still live. The inherited catalog connections
    /// are discarded first, without closing them through SQLite (SPEC [P2]): SQLite tracks its
    /// POSIX locks per process and file, so a new connection in the child would otherwise take
    /// the parent's locks (which a child does not hold) for its own.
    pub(super) fn heir_of(&self, parent: &Proc) -> Result<Proc, String> {
        let mut p = &self.origin;
        loop {
            if let Ok(mut c) = p.catalog.try_lock() {
                c.discard_inherited();
            }
            match p.heir.get() {
                Some(h) => p = h,
                None => break,
            }
        }
        let inherited = Inherited {
            counts: clone_unblocked(&parent.counts).unwrap_or_default(),
            unheld: clone_unblocked(&parent.unheld).unwrap_or_default(),
            arrays: clone_unblocked(&parent.arrays).unwrap_or_default(),
            writers: clone_unblocked(&parent.writers).unwrap_or_default(),
            unheld_writers: clone_unblocked(&parent.unheld_writers).unwrap_or_default(),
        };
        Proc::start(&self.dir, self.access, self.readonly, Some(inherited))
            .map_err(|e| e.to_string())
    }
}

impl Shared {
    /// Closes, in a forked child, an in-place writer inherited through fork ([P2]). Returns
    /// false if this process registered it again (its heir did): then it closes as its own.
    pub(crate) fn close_inherited_writer(&self, name: &str) -> bool {
        self.end_inherited(name, |p| &p.unheld_writers, |p| &p.writers)
    }

    /// Releases, in a forked child, one reference that a handle inherited through fork stood
    /// for ([P2]). Returns false if it is an ordinary reference of this process's own state.
    pub(crate) fn release_inherited(&self, name: &str) -> bool {
        self.end_inherited(name, |p| &p.unheld, |p| &p.counts)
    }

    /// Ends, in a forked child, one use of `name` (a reference, an in-place writer) that an
    /// inherited handle stood for: one that this process could not take again (`unheld`) ends
    /// with nothing else touched; one counted in this process's own state (`held` of its heir)
    /// is an ordinary end (returns false); while the child has not used the container it holds
    /// nothing in the catalog, and the inherited count is forgotten so its heir does not take it.
    pub(super) fn end_inherited(
        &self,
        name: &str,
        unheld: fn(&Proc) -> &Mutex<Counts>,
        held: fn(&Proc) -> &Mutex<Counts>,
    ) -> bool {
        let _g = lock(&self.heir_lock);
        let (p, started) = match self.here_if_started() {
            Ok(p) => (p, true),
            Err(p) => (p, false),
        };
        if decrement(unheld(p), name) {
            return true;
        }
        if started {
            return false;
        }
        decrement(held(p), name);
        true
    }
}
