//! Lock stripes (SPEC [W6]): every change to a name is made under the exclusive `flock` of its
//! stripe, `.dafstore/locks/<n>.lock`. A held stripe is a [`StripeGuard`]; functions that must
//! run under it take one.

use std::fs::File;
use std::io::{self};
use std::path::PathBuf;

use super::shared::Shared;
use crate::error::{io_at, WriteError};
use crate::format::name::ArrayName;
use crate::fs::sys;

/// A held lock stripe; released on drop (closing the file releases the `flock`). Registered so a
/// child forked while it is held does not keep it (SPEC [P2]).
pub(crate) struct StripeGuard {
    pub(super) _file: Option<File>,
    pub(super) fork_slot: Option<usize>,
}

impl StripeGuard {
    pub(super) fn held(file: File) -> StripeGuard {
        let fork_slot = sys::forget_in_forked_child(&file);
        StripeGuard {
            _file: Some(file),
            fork_slot,
        }
    }
}

impl StripeGuard {
    /// Whether the stripe is really locked (a read-only handle that may not open the lock file
    /// goes without, see [`Shared::lock_stripe`]).
    pub(crate) fn is_locked(&self) -> bool {
        self._file.is_some()
    }
}

impl Drop for StripeGuard {
    fn drop(&mut self) {
        sys::release_fork_slot(self.fork_slot);
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

    /// Takes `name`'s stripe exclusively if no one holds it.
    pub(crate) fn try_lock_name(&self, name: &ArrayName) -> Option<NameLock> {
        Some(NameLock {
            name: name.clone(),
            _stripe: self.try_lock_stripe(name)?,
        })
    }

    pub(super) fn stripe_file(&self, name: &ArrayName) -> io::Result<File> {
        let leaf = format!("{:02}.lock", name.stripe());
        // Through the descriptor of `locks/` opened once while its path still names it; else (or
        // if that open fails) the walk from the root, which says why.
        if let Some(dir) = self.locks_dir() {
            if let Ok(Some((f, _))) = dir.open_file(std::ffi::OsStr::new(&leaf), false) {
                return Ok(f);
            }
        }
        self.reserved_file("locks", &leaf)
    }

    pub(crate) fn stripe_path(&self, name: &ArrayName) -> PathBuf {
        self.dir
            .join("locks")
            .join(format!("{:02}.lock", name.stripe()))
    }

    /// Takes `name`'s stripe shared, blocking: readers hold it while they tie a catalog row to
    /// the files they open, so no publish renames files between the two ([W6]).
    pub(crate) fn lock_stripe_shared(&self, name: &ArrayName) -> io::Result<StripeGuard> {
        self.lock_stripe(name, false)
    }

    /// Takes the stripe of `name`, blocking. Read-only handles on media without lock files go
    /// without (nobody can write there).
    fn lock_stripe(&self, name: &ArrayName, exclusive: bool) -> io::Result<StripeGuard> {
        let file = match self.stripe_file(name) {
            Ok(f) => f,
            Err(_) if self.readonly => {
                return Ok(StripeGuard {
                    _file: None,
                    fork_slot: None,
                })
            }
            Err(e) => return Err(e),
        };
        if exclusive {
            file.lock()?;
        } else {
            file.lock_shared()?;
        }
        Ok(StripeGuard::held(file))
    }

    fn try_lock_stripe(&self, name: &ArrayName) -> Option<StripeGuard> {
        let file = self.stripe_file(name).ok()?;
        file.try_lock().ok()?;
        Some(StripeGuard::held(file))
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
