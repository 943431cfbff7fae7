//! Reference records in session files (SPEC [P3]): each process writes the names it holds into
//! its own session file, so taking and dropping a reference costs a `pwrite`, never a catalog
//! write. Whoever must know that nobody holds a name (a removal, an eviction, a scratch entry's
//! last release) reads the records of every live session under the name's exclusive stripe.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{fence, Ordering};

use super::shared::Shared;
use crate::format::is_session_id;
use crate::fs::beneath;

/// Bytes of one record: the name's key, then the time the reference was taken (ms since the
/// epoch), both little-endian u64 ([P3]).
pub(crate) const RECORD: u64 = 16;

/// Records a session file holds from its start (one page: taking a reference then needs no new
/// room on the file system).
pub(crate) const PREALLOCATED: u64 = 4096 / RECORD;

/// This process's records in its session file: which record holds which name, and the free ones.
#[derive(Default)]
pub(crate) struct Slots {
    by_name: HashMap<String, u64>,
    free: Vec<u64>,
    next: u64,
    /// For each name held: the removal counter when its reference was taken, if it could be
    /// read and the row was not scratch then (its release may skip reading the row, [P4]).
    quiet: HashMap<String, u64>,
}

impl Slots {
    /// Writes a record for `name`: its key (bytes 0–7), then the time (bytes 8–15), in one
    /// `pwrite` ([P3]; a reader may see it torn, and counts any non-zero key as held).
    pub(crate) fn take(
        &mut self,
        file: &File,
        name: &str,
        key: u64,
        now_ms: i64,
    ) -> io::Result<()> {
        if self.by_name.contains_key(name) {
            return Ok(());
        }
        let index = self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        });
        let mut rec = [0u8; RECORD as usize];
        rec[..8].copy_from_slice(&key.to_le_bytes());
        rec[8..].copy_from_slice(&now_ms.to_le_bytes());
        if let Err(e) = file.write_all_at(&rec, index * RECORD) {
            self.free.push(index);
            return Err(e);
        }
        // The record is written before the catalog is read ([P4]); SQLite's own barriers order
        // it too, this says so.
        fence(Ordering::SeqCst);
        self.by_name.insert(name.to_string(), index);
        Ok(())
    }

    /// Notes the removal counter read when `name`'s reference was taken ([P4]).
    pub(crate) fn note_quiet(&mut self, name: &str, removals: u64) {
        self.quiet.insert(name.to_string(), removals);
    }

    /// The removal counter noted for `name` ([`Slots::note_quiet`]), forgotten.
    pub(crate) fn take_quiet(&mut self, name: &str) -> Option<u64> {
        self.quiet.remove(name)
    }

    /// Zeroes `name`'s record (its key): the reference is dropped for every reader.
    pub(crate) fn clear(&mut self, file: &File, name: &str) -> io::Result<()> {
        let Some(index) = self.by_name.remove(name) else {
            return Ok(());
        };
        let r = file.write_all_at(&[0u8; 8], index * RECORD);
        fence(Ordering::SeqCst);
        match r {
            Ok(()) => {
                self.free.push(index);
                Ok(())
            }
            Err(e) => {
                // Still on file: keep counting it as ours so a later clear retries it.
                self.by_name.insert(name.to_string(), index);
                Err(e)
            }
        }
    }

    /// Forgets every record (the file was emptied).
    pub(crate) fn forget_all(&mut self) {
        *self = Slots::default();
    }
}

/// Zeroed records for a new session file ([`PREALLOCATED`]).
pub(crate) fn preallocate(file: &File) -> io::Result<()> {
    file.write_all_at(&[0u8; (PREALLOCATED * RECORD) as usize], 0)
}

/// The held records of a session file: (key, since ms), keys not 0. A trailing partial record is
/// ignored.
pub(crate) fn read_records(file: &File) -> io::Result<Vec<(u64, i64)>> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = file.read_at(&mut chunk, buf.len() as u64)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf
        .chunks_exact(RECORD as usize)
        .filter_map(|r| {
            let key = u64::from_le_bytes(r[..8].try_into().ok()?);
            let since = i64::from_le_bytes(r[8..].try_into().ok()?);
            (key != 0).then_some((key, since))
        })
        .collect())
}

/// The references of every live session, as read now ([`Shared::scan_holders`]).
#[derive(Default, Debug)]
pub(crate) struct Held {
    /// Key → the live sessions with a record of it, with the time each took it.
    pub(crate) by_key: crate::catalog::HeldByKey,
    /// Live sessions whose records were read, with the records.
    pub(crate) sessions: Vec<(String, Vec<(u64, i64)>)>,
    /// With [`Shared::scan_records`]`(true)`: dead sessions whose files are still there, with
    /// the records they left (for display: they count for nothing).
    pub(crate) dead: Vec<(String, Vec<(u64, i64)>)>,
}

impl Held {
    /// Live sessions holding `key`.
    pub(crate) fn holders(&self, key: u64) -> usize {
        self.by_key.get(&key).map_or(0, Vec::len)
    }
}

impl Shared {
    /// Reads the reference records of every live session ([P3]): a session file that another
    /// process can lock is dead and counts for nothing ([P1], [P5]). This process's own records
    /// are read from its file like the others'. Used under a name's exclusive stripe to decide
    /// that nobody holds it, and for display.
    pub(crate) fn scan_holders(&self) -> io::Result<Held> {
        self.scan_records(false)
    }

    /// [`Shared::scan_holders`]; with `dead`, also what dead sessions' files still hold.
    pub(crate) fn scan_records(&self, dead: bool) -> io::Result<Held> {
        // Our store (a release's zeroing) is ordered before these reads ([P4]).
        fence(Ordering::SeqCst);
        let dir = beneath::reserved(&self.root, "sessions").map_err(super::shared::path_io)?;
        let own = self.session_id().to_string();
        let mut held = Held::default();
        for leaf in dir.names().map_err(super::shared::path_io)? {
            let leaf_s = leaf.to_string_lossy();
            let Some(id) = leaf_s.strip_suffix(".lock") else {
                continue;
            };
            if !is_session_id(id) {
                continue;
            }
            let records = if id == own {
                match &self.here().session {
                    Some(s) => read_records(&s._lock)?,
                    None => continue,
                }
            } else {
                let file = match dir.open_file(&leaf, false) {
                    Ok(Some((f, _))) => f,
                    Ok(None) => continue, // gone: the session ended
                    Err(e) => return Err(super::shared::path_io(e)),
                };
                if file.try_lock().is_ok() {
                    // Dead: its records count for nothing.
                    if dead {
                        held.dead.push((id.to_string(), read_records(&file)?));
                    }
                    continue;
                }
                read_records(&file)?
            };
            for &(key, since) in &records {
                held.by_key
                    .entry(key)
                    .or_default()
                    .push((id.to_string(), since));
            }
            held.sessions.push((id.to_string(), records));
        }
        Ok(held)
    }

    /// Live sessions holding `name` now ([`Shared::scan_holders`]).
    pub(crate) fn live_holders(&self, name: &crate::format::name::ArrayName) -> io::Result<usize> {
        Ok(self.scan_holders()?.holders(name.key()))
    }
}
