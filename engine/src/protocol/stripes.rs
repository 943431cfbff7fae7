//! Lock stripes (SPEC [W6]): every change to a name is made under the exclusive `flock` of its
//! stripe, `.dafstore/locks/<n>.lock`. A held stripe is a [`StripeGuard`]; functions that must
//! run under it take one.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use super::shared::{open_in, path_io, Shared};
use crate::error::{io_at, WriteError};
use crate::format::name::ArrayName;
use crate::fs::sys;
use crate::sync::lock;

/// A held lock stripe; released on drop (closing the file releases the `flock`, or, for a
/// stripe held shared through this process's open lock file ([`StripeFiles`]), the last reader
/// unlocks it). Registered so a child forked while it is held does not keep it (SPEC [P2]).
pub(crate) struct StripeGuard {
    pub(super) _file: Option<File>,
    pub(super) fork_slot: Option<usize>,
    /// Held shared through this process's open lock file of the stripe.
    cached: Option<Arc<OpenStripe>>,
    /// Whether `.dafstore/locks` was found at its path (one `lstat`) when the stripe was taken:
    /// then the container's path names the directory whose `.dafstore/` it is ([C5]).
    pub(crate) locks_current: bool,
}

impl StripeGuard {
    pub(super) fn held(file: File) -> StripeGuard {
        let fork_slot = sys::forget_in_forked_child(&file);
        StripeGuard {
            _file: Some(file),
            fork_slot,
            cached: None,
            locks_current: false,
        }
    }

    fn unlocked() -> StripeGuard {
        StripeGuard {
            _file: None,
            fork_slot: None,
            cached: None,
            locks_current: false,
        }
    }
}

impl StripeGuard {
    /// The stripe's change stamp read now ([W6]); `None` if it has none (or is not locked).
    pub(crate) fn stamp(&self) -> Option<u64> {
        match (&self._file, &self.cached) {
            (Some(f), _) => read_stamp(f),
            (None, Some(c)) => read_stamp(&c.file),
            (None, None) => None,
        }
    }

    /// Whether the stripe is really locked (a read-only handle that may not open the lock file
    /// goes without, see [`Shared::lock_stripe`]).
    pub(crate) fn is_locked(&self) -> bool {
        self._file.is_some() || self.cached.is_some()
    }
}

impl Drop for StripeGuard {
    fn drop(&mut self) {
        sys::release_fork_slot(self.fork_slot);
        if let Some(c) = self.cached.take() {
            c.release();
        }
    }
}

/// One stripe's lock file kept open by this process ([`StripeFiles`]): registered for its whole
/// life so a forked child never shares its open file description (which would keep a `flock`
/// taken through it after this process dies, [P2]); `readers` counts this process's shared
/// holders, the first locks it and the last unlocks it.
pub(crate) struct OpenStripe {
    file: File,
    fork_slot: usize,
    readers: Mutex<u64>,
    _kept: KeptOpen,
}

impl OpenStripe {
    /// Takes the stripe shared for one more reader of this process, blocking.
    fn acquire(&self) -> io::Result<()> {
        let mut n = lock(&self.readers);
        if *n == 0 {
            self.file.lock_shared()?;
        }
        *n += 1;
        Ok(())
    }

    fn release(&self) {
        let mut n = lock(&self.readers);
        *n -= 1;
        if *n == 0 && self.file.unlock().is_err() {
            // Cannot happen for a valid descriptor; should it, the lock would outlive its last
            // reader: keep counting it held rather than lock it again on top.
            *n = 1;
        }
    }
}

impl Drop for OpenStripe {
    fn drop(&mut self) {
        // Before the descriptor closes, so no fork meanwhile redirects a reused number.
        sys::release_fork_slot(Some(self.fork_slot));
    }
}

/// Lock files kept open in this process, over all containers: at most [`MAX_KEPT_OPEN`], so a
/// process with many containers open does not spend its descriptors on them (the others are
/// opened per lock, as before).
static KEPT_OPEN: AtomicU64 = AtomicU64::new(0);
const MAX_KEPT_OPEN: u64 = 128;

/// One lock file counted in [`KEPT_OPEN`]; uncounted when dropped.
struct KeptOpen;

impl KeptOpen {
    /// Counts one more, unless [`MAX_KEPT_OPEN`] are kept open already.
    fn count() -> Option<KeptOpen> {
        if KEPT_OPEN.fetch_add(1, Ordering::Relaxed) >= MAX_KEPT_OPEN {
            KEPT_OPEN.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(KeptOpen)
    }
}

impl Drop for KeptOpen {
    fn drop(&mut self) {
        KEPT_OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// This process's open lock files, by stripe, for taking stripes shared on the open path without
/// opening, checking and closing the lock file each time ([W6]: lock files are made with the
/// container and never replaced). Only used while `.dafstore/locks` is still the directory they
/// were opened in. A stripe gets none if no fork slot is free (it is then opened per lock).
#[derive(Default)]
pub(crate) struct StripeFiles {
    open: Mutex<HashMap<u32, Arc<OpenStripe>>>,
}

impl StripeFiles {
    fn get(&self, stripe: u32, open: impl FnOnce() -> io::Result<File>) -> Option<Arc<OpenStripe>> {
        let mut map = lock(&self.open);
        if let Some(s) = map.get(&stripe) {
            return Some(s.clone());
        }
        let kept = KeptOpen::count()?;
        let file = open().ok()?;
        let fork_slot = sys::forget_in_forked_child(&file)?;
        let s = Arc::new(OpenStripe {
            file,
            fork_slot,
            readers: Mutex::new(0),
            _kept: kept,
        });
        map.insert(stripe, s.clone());
        Some(s)
    }
}

/// `name`'s stripe held exclusively: every change to `name`'s files or catalog row runs under it
/// ([W6]), and the functions that make one take it as their first argument.
pub(crate) struct NameLock {
    name: ArrayName,
    _stripe: StripeGuard,
}

impl NameLock {
    /// The name whose stripe is held.
    pub(crate) fn name(&self) -> &ArrayName {
        &self.name
    }
}

impl Shared {
    /// Takes `name`'s stripe exclusively, blocking.
    pub(crate) fn lock_name(&self, name: &ArrayName) -> io::Result<NameLock> {
        Ok(NameLock {
            name: name.clone(),
            _stripe: self.lock_stripe(name, true)?,
        })
    }

    /// Takes `name`'s stripe exclusively if no one holds it: `Ok(None)` if someone does, an
    /// error if its lock file cannot be opened for writing or its change stamp written ([W6]).
    pub(crate) fn try_lock_name(&self, name: &ArrayName) -> io::Result<Option<NameLock>> {
        Ok(self.try_lock_stripe(name)?.map(|stripe| NameLock {
            name: name.clone(),
            _stripe: stripe,
        }))
    }

    /// The lock file of `name`'s stripe, open for writing too with `write` (an exclusive
    /// holder writes the change stamp).
    pub(super) fn stripe_file(&self, name: &ArrayName, write: bool) -> io::Result<File> {
        let leaf = stripe_leaf(name);
        // Through the descriptor of `locks/` opened once while its path still names it; else (or
        // if that open fails) the walk from the root, which says why.
        if let Some(dir) = self.locks_dir() {
            if let Ok(f) = open_in(dir, &leaf, write) {
                return Ok(f);
            }
        }
        let dir = crate::fs::beneath::reserved(&self.root, "locks").map_err(path_io)?;
        open_in(&dir, &leaf, write)
    }

    pub(crate) fn stripe_path(&self, name: &ArrayName) -> PathBuf {
        self.dir.join("locks").join(stripe_leaf(name))
    }

    /// Takes `name`'s stripe shared, blocking: readers hold it while they tie a catalog row to
    /// the files they open, so no publish renames files between the two ([W6]).
    pub(crate) fn lock_stripe_shared(&self, name: &ArrayName) -> io::Result<StripeGuard> {
        self.lock_stripe(name, false)
    }

    /// Takes the stripe of `name`, blocking. Read-only handles on media without lock files go
    /// without (nobody can write there). Shared, through this process's open lock file of the
    /// stripe while `.dafstore/locks` is still the directory it was opened in.
    fn lock_stripe(&self, name: &ArrayName, exclusive: bool) -> io::Result<StripeGuard> {
        if !exclusive {
            if let Some(dir) = self.locks_dir() {
                let open = || open_in(dir, &stripe_leaf(name), false);
                if let Some(s) = self.here().stripes.get(name.stripe(), open) {
                    s.acquire()?;
                    return Ok(StripeGuard {
                        _file: None,
                        fork_slot: None,
                        cached: Some(s),
                        locks_current: true,
                    });
                }
            }
        }
        let file = match self.stripe_file(name, exclusive) {
            Ok(f) => f,
            Err(_) if self.readonly => return Ok(StripeGuard::unlocked()),
            Err(e) => return Err(e),
        };
        if exclusive {
            file.lock()?;
            // Before anything changes under it; if the stamp cannot be written, nothing does.
            restamp(&file)?;
        } else {
            file.lock_shared()?;
        }
        Ok(StripeGuard::held(file))
    }

    fn try_lock_stripe(&self, name: &ArrayName) -> io::Result<Option<StripeGuard>> {
        let file = self.stripe_file(name, true)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        restamp(&file)?;
        Ok(Some(StripeGuard::held(file)))
    }

    /// Whether nobody holds `name`'s stripe now: a probe that takes it exclusively and gives it
    /// up at once, writing nothing (so no change stamp, [W6]; works without write access).
    pub(crate) fn stripe_free(&self, name: &ArrayName) -> bool {
        match self.stripe_file(name, false) {
            Ok(file) => file.try_lock().is_ok(),
            Err(_) => false,
        }
    }

    pub(crate) fn lock_err(&self, name: &ArrayName) -> impl FnOnce(io::Error) -> WriteError {
        io_at(self.stripe_path(name), "lock", WriteError::io)
    }
}

/// The exclusive stripes of all the names of a batch publish ([W11]): each stripe taken once, in
/// increasing stripe number, so two batches (or a batch and a single publish, which takes one
/// stripe) never wait for each other in a cycle. Released on drop.
pub(crate) struct StripeSet {
    held: Vec<(u32, StripeGuard)>,
}

impl StripeSet {
    /// A [`NameLock`] for `name`, whose stripe this set holds (`None` if it does not): a second
    /// descriptor of the same locked open file. A `flock` belongs to the open file description,
    /// so the lock stays the set's and is held until the set's descriptor is closed too; dropping
    /// the `NameLock` releases nothing.
    pub(crate) fn name_lock(&self, name: &ArrayName) -> io::Result<Option<NameLock>> {
        let Ok(i) = self.held.binary_search_by_key(&name.stripe(), |(s, _)| *s) else {
            return Ok(None);
        };
        let Some(file) = &self.held[i].1._file else {
            return Ok(None);
        };
        Ok(Some(NameLock {
            name: name.clone(),
            _stripe: StripeGuard::held(file.try_clone()?),
        }))
    }
}

impl Shared {
    /// Takes the exclusive stripes of all `names` ([W11]), blocking: each stripe once, in
    /// increasing stripe number.
    pub(crate) fn lock_stripes<'a>(
        &self,
        names: impl IntoIterator<Item = &'a ArrayName>,
    ) -> Result<StripeSet, WriteError> {
        let mut firsts: Vec<(u32, &ArrayName)> =
            names.into_iter().map(|n| (n.stripe(), n)).collect();
        firsts.sort_by_key(|(s, _)| *s);
        firsts.dedup_by_key(|(s, _)| *s);
        let mut held = Vec::with_capacity(firsts.len());
        for (stripe, name) in firsts {
            let guard = self.lock_stripe(name, true).map_err(self.lock_err(name))?;
            held.push((stripe, guard));
        }
        Ok(StripeSet { held })
    }
}

/// The file name of `name`'s stripe in `.dafstore/locks`.
pub(super) fn stripe_leaf(name: &ArrayName) -> String {
    format!("{:02}.lock", name.stripe())
}

/// The change stamp of a stripe ([W6]): bytes 0–7 of its lock file, little-endian; `None` if the
/// file is shorter or they are 0 (no stamp: nothing may be kept against it).
pub(crate) fn read_stamp(file: &File) -> Option<u64> {
    let mut b = [0u8; 8];
    match file.read_at(&mut b, 0) {
        Ok(8) => Some(u64::from_le_bytes(b)).filter(|&v| v != 0),
        _ => None,
    }
}

/// Writes a new change stamp into a stripe's lock file, held exclusively ([W6]): a pseudo-random
/// value, never 0 nor the one there, so a lock file recreated or shortened never brings back a
/// stamp some process kept a row against.
pub(crate) fn restamp(file: &File) -> io::Result<()> {
    let old = read_stamp(file).unwrap_or(0);
    file.write_all_at(&next_stamp(old).to_le_bytes(), 0)
}

/// A fresh stamp: this process's random seed, its pid, the time and a sequence, mixed.
pub(crate) fn next_stamp(old: u64) -> u64 {
    static SEED: LazyLock<u64> = LazyLock::new(|| {
        let mut b = [0u8; 8];
        let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| {
            use std::io::Read;
            f.read_exact(&mut b)
        });
        u64::from_le_bytes(b)
    });
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = *SEED ^ (u64::from(std::process::id()) << 32) ^ nanos;
    loop {
        x = splitmix64(x ^ SEQ.fetch_add(1, Ordering::Relaxed));
        if x != 0 && x != old {
            return x;
        }
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
