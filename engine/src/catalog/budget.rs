//! The cache's bookkeeping in the catalog (SPEC 9.7): the container's limits (`config`), the
//! reservations of bytes that writes in flight are staging (`reservations`), and the choice of
//! the unreferenced `cached` entries to evict, least recently released first. Every decision is
//! one `BEGIN IMMEDIATE` transaction, so concurrent writers never overshoot the capacity together.

use rusqlite::{params, Connection, OptionalExtension};

use super::{to_i64, Catalog, Lifecycle};
use crate::error::{CatalogError, HoldingSession, Occupant, Shortfall};
use crate::format::lifecycle::Limits;
use crate::format::name::name_key;

/// `config` key of the capacity in bytes.
const CAPACITY: &str = "capacity";
/// `config` key of the free space to keep on the file system, in bytes.
const MIN_FREE: &str = "min_free";

/// Bytes in a container by what may happen to them ([`crate::Container::usage`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Data files of every entry, in any state (what the capacity counts, with `reserved`).
    pub entries: u64,
    /// Reserved by writes in flight (their staged files).
    pub reserved: u64,
    /// Of `entries`: `cached` entries that nobody holds (what eviction can free).
    pub evictable: u64,
}

/// What [`Catalog::reserve`] decided.
#[derive(Debug)]
pub(crate) enum Reserve {
    /// Recorded (or no limit is set).
    Granted,
    /// Not yet: evict these entries (name, bytes) if nobody holds them ([E4]), then ask again.
    Evict(Vec<(String, u64)>),
    /// It does not fit even if every unreferenced `cached` entry went.
    Short(Box<Shortfall>),
}

/// Both limits in one statement (one snapshot: [`Catalog::limits`] needs no transaction around
/// it).
fn limits_tx(tx: &Connection) -> rusqlite::Result<Limits> {
    let (capacity, min_free): (Option<i64>, Option<i64>) = tx
        .prepare_cached(
            "SELECT (SELECT value FROM config WHERE key = ?1),
                    (SELECT value FROM config WHERE key = ?2)",
        )?
        .query_row([CAPACITY, MIN_FREE], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let size = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
    Ok(Limits {
        capacity: size(capacity),
        min_free: size(min_free),
    })
}

fn sum(tx: &Connection, sql: &str) -> rusqlite::Result<u64> {
    let v: i64 = tx.prepare_cached(sql)?.query_row([], |r| r.get(0))?;
    Ok(u64::try_from(v).unwrap_or(0))
}

fn entries_bytes(tx: &Connection) -> rusqlite::Result<u64> {
    sum(tx, "SELECT COALESCE(SUM(size), 0) FROM array_files")
}

fn reserved_bytes(tx: &Connection) -> rusqlite::Result<u64> {
    sum(tx, "SELECT COALESCE(SUM(bytes), 0) FROM reservations")
}

/// What eviction must know that the catalog does not record (SPEC [P3], [E5]): which names live
/// sessions hold and when each name was last released. Read lazily: a write that fits needs
/// neither.
/// Key → the live sessions holding it, with when each took it ([P3]).
pub(crate) type HeldByKey = std::collections::HashMap<u64, Vec<(String, i64)>>;

pub(crate) trait Holds {
    /// Key → live sessions holding it; `None` if the references could not be read (then
    /// nothing is evictable).
    fn held(&self) -> Option<&HeldByKey>;
    /// The release clock of a key (ms since the epoch; 0 if never stamped).
    fn released(&self, key: u64) -> i64;
    /// Whether `name` is not to be picked again: the caller already tried to evict it and could
    /// not (held meanwhile, no longer evictable), so a write that must make room makes progress.
    fn skipped(&self, _name: &str) -> bool {
        false
    }
}

/// The unreferenced `cached` live entries with their bytes, least recently released first
/// (the later of the catalog's `released_at` and the release clock, then the name): what
/// eviction may take, in its order.
fn evictable(tx: &Connection, holds: &dyn Holds) -> rusqlite::Result<Vec<(String, u64)>> {
    let rows: Vec<(String, u64, i64)> = tx
        .prepare_cached(
            "SELECT a.name, (SELECT COALESCE(SUM(size), 0) FROM array_files f WHERE f.name = a.name),
                    COALESCE(a.released_at, 0)
             FROM arrays a
             WHERE a.cached = 1 AND a.state = 'live'
               AND NOT EXISTS (SELECT 1 FROM inplace_writers w WHERE w.name = a.name)",
        )?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let Some(held) = holds.held() else {
        return Ok(Vec::new());
    };
    let mut keyed: Vec<(i64, String, u64)> = rows
        .into_iter()
        .filter_map(|(name, bytes, at)| {
            let key = name_key(&name);
            // A row whose name the engine refuses (a damaged catalog) cannot be evicted through
            // its stripe: never picked, so a write never waits on it.
            let can = !held.contains_key(&key)
                && !holds.skipped(&name)
                && crate::format::name::ArrayName::new(&name).is_ok();
            can.then(|| (at.max(holds.released(key)), name, bytes))
        })
        .collect();
    keyed.sort();
    Ok(keyed.into_iter().map(|(_, n, b)| (n, b)).collect())
}

/// The largest entries eviction may not take, with the live sessions holding each.
fn occupants(tx: &Connection, holds: &dyn Holds) -> rusqlite::Result<Vec<Occupant>> {
    let rows: Vec<(String, i64, i64, i64, String, i64)> = tx
        .prepare(
            "SELECT a.name, (SELECT COALESCE(SUM(size), 0) FROM array_files f WHERE f.name = a.name) AS b,
                    a.scratch, a.cached, a.state,
                    EXISTS (SELECT 1 FROM inplace_writers w WHERE w.name = a.name)
             FROM arrays a ORDER BY b DESC, a.name",
        )?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (name, bytes, scratch, cached, state, writers) in rows {
        let sessions = holds.held().and_then(|h| h.get(&name_key(&name)));
        if cached == 1
            && state == "live"
            && writers == 0
            && holds.held().is_some()
            && sessions.is_none()
            && !holds.skipped(&name)
            && crate::format::name::ArrayName::new(&name).is_ok()
        {
            continue; // evictable
        }
        let mut holders = Vec::new();
        for (session, _) in sessions.into_iter().flatten() {
            let pid: Option<i64> = tx
                .prepare_cached("SELECT pid FROM sessions WHERE id = ?1")?
                .query_row([session], |r| r.get(0))
                .optional()?;
            holders.push(HoldingSession {
                session: session.clone(),
                pid: pid.and_then(|p| u32::try_from(p).ok()),
            });
        }
        holders.sort();
        out.push(Occupant {
            name,
            bytes: u64::try_from(bytes).unwrap_or(0),
            lifecycle: Lifecycle::of_columns(scratch, cached),
            holders,
        });
        if out.len() == 10 {
            break;
        }
    }
    Ok(out)
}

/// The sum of the bytes of `entries`, saturating (a damaged catalog can hold any sizes).
fn sum_bytes(entries: &[(String, u64)]) -> u64 {
    entries.iter().fold(0u64, |t, (_, b)| t.saturating_add(*b))
}

/// The least recently released evictable entries that free `need` bytes, or `None` if all of
/// them would not free enough. Nothing is marked here: each is removed under its exclusive
/// stripe once no live session is seen holding it ([E4]).
fn evict_pick(
    tx: &Connection,
    holds: &dyn Holds,
    need: u64,
) -> rusqlite::Result<Option<Vec<(String, u64)>>> {
    let mut picked = Vec::new();
    let mut freed = 0u64;
    for (name, bytes) in evictable(tx, holds)? {
        if freed >= need {
            break;
        }
        freed = freed.saturating_add(bytes);
        picked.push((name, bytes));
    }
    if freed < need {
        return Ok(None);
    }
    Ok(Some(picked))
}

/// The bytes over the limits if `extra` more were added: over the capacity, or under the free
/// space floor (`fs_free` as measured by the caller).
fn over(limits: Limits, used: u64, extra: u64, fs_free: Option<u64>) -> u64 {
    let cap = limits
        .capacity
        .map_or(0, |c| used.saturating_add(extra).saturating_sub(c));
    let floor = match (limits.min_free, fs_free) {
        (Some(m), Some(f)) => extra.saturating_add(m).saturating_sub(f),
        _ => 0,
    };
    cap.max(floor)
}

impl Catalog {
    /// The container's limits (none in a catalog older than schema 3).
    pub(crate) fn limits(&mut self) -> Result<Limits, CatalogError> {
        if self.schema < 3 {
            return Ok(Limits::default());
        }
        self.read_one("read the container's limits", limits_tx)
    }

    /// Sets (or with `None` clears) the capacity and the free space floor.
    pub(crate) fn set_limits(&mut self, limits: Limits) -> Result<(), CatalogError> {
        self.set_sync(true)?;
        self.immediate("set the container's limits", |tx| {
            for (key, value) in [(CAPACITY, limits.capacity), (MIN_FREE, limits.min_free)] {
                match value {
                    Some(v) => tx
                        .prepare_cached(
                            "INSERT INTO config(key, value) VALUES (?1, ?2)
                               ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        )?
                        .execute(params![key, to_i64(v)])?,
                    None => tx
                        .prepare_cached("DELETE FROM config WHERE key = ?1")?
                        .execute([key])?,
                };
            }
            Ok(())
        })
    }

    /// Bytes by what may happen to them.
    pub(crate) fn usage(&mut self, holds: &dyn Holds) -> Result<Usage, CatalogError> {
        if self.schema < 3 {
            let entries = self.read("sum the entries' bytes", entries_bytes)?;
            return Ok(Usage {
                entries,
                ..Usage::default()
            });
        }
        self.read("sum the entries' bytes", |tx| {
            Ok(Usage {
                entries: entries_bytes(tx)?,
                reserved: reserved_bytes(tx)?,
                evictable: sum_bytes(&evictable(tx, holds)?),
            })
        })
    }

    /// Reserves `total` bytes for the staged files `staging` (`<session>/<n>`) of `session`,
    /// all of them together (a reservation only grows). If that would go over the limits,
    /// picks the least recently released unreferenced `cached` entries that make room, which
    /// the caller evicts ([E4]) before it asks again; nothing is picked if
    /// even all of them would not make room. `fs_free`: the file system's free bytes now (for
    /// a `min_free`).
    pub(crate) fn reserve(
        &mut self,
        session: &str,
        staging: &str,
        total: u64,
        fs_free: Option<u64>,
        holds: &dyn Holds,
    ) -> Result<Reserve, CatalogError> {
        self.set_sync(false)?;
        self.immediate_growing("reserve room for a write", |tx| {
            let limits = limits_tx(tx)?;
            if !limits.any() {
                return Ok(Reserve::Granted);
            }
            let own: i64 = tx
                .prepare_cached(
                    "SELECT COALESCE(MAX(bytes), 0) FROM reservations WHERE staging = ?1",
                )?
                .query_row([staging], |r| r.get(0))?;
            let extra = total.saturating_sub(u64::try_from(own).unwrap_or(0));
            if extra == 0 {
                return Ok(Reserve::Granted);
            }
            let reserved = reserved_bytes(tx)?;
            let used = entries_bytes(tx)?.saturating_add(reserved);
            let need = over(limits, used, extra, fs_free);
            if need == 0 {
                tx.prepare_cached(
                    "INSERT INTO reservations(staging, session, bytes) VALUES (?1, ?2, ?3)
                       ON CONFLICT(staging) DO UPDATE SET bytes = excluded.bytes",
                )?
                .execute(params![staging, session, to_i64(total)])?;
                crate::failpoint::hit_sql("reserve.mid_tx")?;
                return Ok(Reserve::Granted);
            }
            if let Some(picked) = evict_pick(tx, holds, need)? {
                return Ok(Reserve::Evict(picked));
            }
            Ok(Reserve::Short(Box::new(Shortfall {
                needed: extra,
                limits,
                used,
                reserved,
                evictable: sum_bytes(&evictable(tx, holds)?),
                fs_free,
                largest: occupants(tx, holds)?,
            })))
        })
    }

    /// Evicts what must go for the container to be within its limits now (`dafctl gc --evict`):
    /// picks the least recently released unreferenced `cached` entries needed, or as many as
    /// there are if that is not enough, for the caller to evict. Returns them (name, bytes).
    pub(crate) fn trim(
        &mut self,
        fs_free: Option<u64>,
        holds: &dyn Holds,
    ) -> Result<Vec<(String, u64)>, CatalogError> {
        if self.schema < 3 {
            return Ok(Vec::new());
        }
        self.read("choose what to evict to the container's limits", |tx| {
            let limits = limits_tx(tx)?;
            let used = entries_bytes(tx)?.saturating_add(reserved_bytes(tx)?);
            let need = over(limits, used, 0, fs_free);
            if need == 0 {
                return Ok(Vec::new());
            }
            let all = sum_bytes(&evictable(tx, holds)?);
            Ok(evict_pick(tx, holds, need.min(all))?.unwrap_or_default())
        })
    }

    /// Drops the reservation of staged files `staging` (a write that published nothing).
    pub(crate) fn unreserve(&mut self, staging: &str) -> Result<(), CatalogError> {
        if self.schema < 3 {
            return Ok(());
        }
        self.set_sync(false)?;
        self.immediate("drop a reservation", |tx| {
            tx.prepare_cached("DELETE FROM reservations WHERE staging = ?1")?
                .execute([staging])?;
            Ok(())
        })
    }

    /// Sessions that have reservations.
    pub(crate) fn reserving_sessions(&mut self) -> Result<Vec<String>, CatalogError> {
        if self.schema < 3 {
            return Ok(Vec::new());
        }
        self.read("list reservations", |tx| {
            tx.prepare_cached("SELECT DISTINCT session FROM reservations ORDER BY session")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
    }

    /// Drops the reservations of dead session `session` whose staged files are gone, except
    /// those of an unfinished publish (recovery's `live` flip drops them).
    pub(crate) fn drop_dead_reservations(&mut self, session: &str) -> Result<(), CatalogError> {
        self.set_sync(false)?;
        self.immediate("drop a dead session's reservations", |tx| {
            tx.prepare_cached(
                "DELETE FROM reservations WHERE session = ?1
                   AND staging NOT IN (SELECT staging FROM arrays
                                       WHERE state <> 'live' AND state = 'publishing'
                                         AND staging IS NOT NULL)",
            )?
            .execute([session])?;
            Ok(())
        })
    }
}
