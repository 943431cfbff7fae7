//! Rows of holding and removal (SPEC 9.3, [W8], [P5], [P6]): an entry's first holder, whether
//! its removal is due, eviction marks, the start of a removal, lifecycles, reaping dead sessions
//! and the listing of holders.

use rusqlite::{params, OptionalExtension};

use super::sql::now_ms;
use super::{Catalog, Lifecycle};
use crate::error::CatalogError;
use crate::failpoint::hit_sql;

/// What [`Catalog::reap_dead`] found.
pub(crate) struct Reaped {
    /// Dead sessions reaped.
    pub(crate) sessions: Vec<String>,
    /// Arrays whose deletion may be due (`deleting`, or scratch and held before): each is
    /// removed under its stripe if no live session holds it ([P5]).
    pub(crate) due: Vec<String>,
    /// Arrays whose last in-place writer was reaped (checksums to recompute).
    pub(crate) writers_gone: Vec<String>,
}

/// What a gc reads first, in one statement of one snapshot ([`Catalog::gc_rows`]).
#[derive(Debug, Default)]
pub(crate) struct GcRows {
    /// Interrupted publishes and removes, as [`Catalog::unfinished`] lists them.
    pub(crate) unfinished: Vec<String>,
    /// Every session with a row (registered, or with in-place writer rows): what
    /// [`Catalog::reap_dead`] would look at.
    pub(crate) sessions: Vec<String>,
    /// Entries whose removal may be due, as [`Reaped::due`] lists them.
    pub(crate) due: Vec<String>,
    /// Sessions that have reservations, as [`Catalog::reserving_sessions`] lists them.
    pub(crate) reserving: Vec<String>,
}

/// Result of starting a remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RemoveStart {
    /// No live holder: the row is `removing`; finish it now.
    Now,
    /// Live holders were seen: the row is `deleting`.
    Deferred,
    /// No such array.
    NotFound,
}

/// A holder as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderRow {
    /// Session id.
    pub session: String,
    /// Process id at session start (display only).
    pub pid: Option<u32>,
    /// Session start, ms since the epoch.
    pub started_at_ms: Option<i64>,
    /// Arrays held, with the time each reference was taken (ms since the epoch).
    pub arrays: Vec<(String, i64)>,
}

/// The rows of interrupted publishes and removes (`state <> 'live'`: the term of the partial
/// index `arrays_not_live`). The conditions below are `WHERE` terms, so a query that reads
/// several of them stays one flat compound select.
const UNFINISHED: &str = "state <> 'live' AND state IN ('publishing', 'removing')";

/// The rows of removals deferred while held ([W8]), through `arrays_not_live`: one half of
/// [`DUE`].
const DEFERRED: &str = "state <> 'live' AND state = 'deleting'";

/// The held scratch rows ([P6]), through `arrays_held_scratch`: the other half of [`DUE`].
const HELD_SCRATCH: &str = "scratch = 1 AND ever_held = 1 AND state = 'live'";

/// The condition under which an entry nobody holds is removed ([W8] deferred, [P6] scratch).
pub(super) const DUE: &str =
    "(state = 'deleting' OR (state = 'live' AND scratch = 1 AND ever_held = 1))";

impl Catalog {
    /// Records that `name` has been held ([P6]; once per entry, not per reference).
    pub(crate) fn mark_ever_held(&mut self, name: &str) -> Result<(), CatalogError> {
        self.set_sync(false)?;
        self.immediate("record an entry's first holder", |tx| {
            tx.prepare_cached("UPDATE arrays SET ever_held = 1 WHERE name = ?1")?
                .execute([name])?;
            Ok(())
        })
    }

    /// Under `name`'s exclusive stripe, once no live session was seen holding it: marks it
    /// `removing` if its removal is due (`deleting`, or scratch and held before). Returns whether
    /// it did; the caller then finishes the removal ([W8]).
    pub(crate) fn mark_removing_if_due(&mut self, name: &str) -> Result<bool, CatalogError> {
        self.set_sync(true)?;
        self.immediate("mark a due removal", |tx| {
            let n = tx
                .prepare_cached(&format!(
                    "UPDATE arrays SET state = 'removing', updated_at = ?2 WHERE name = ?1 AND {DUE}"
                ))?
                .execute(params![name, now_ms()])?;
            hit_sql("settle.mark_mid_tx")?;
            Ok(n > 0)
        })
    }

    /// Under `name`'s exclusive stripe, once no live session was seen holding it: marks it
    /// `removing` if it is still evictable (`cached`, `live`, no in-place writer; [E4]). Returns
    /// whether it did; the caller then finishes the removal.
    pub(crate) fn mark_evicted(&mut self, name: &str) -> Result<bool, CatalogError> {
        self.set_sync(true)?;
        self.immediate("mark an eviction", |tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE arrays SET state = 'removing', updated_at = ?2
                     WHERE name = ?1 AND cached = 1 AND state = 'live'
                       AND NOT EXISTS (SELECT 1 FROM inplace_writers w WHERE w.name = ?1)",
                )?
                .execute(params![name, now_ms()])?;
            crate::failpoint::hit_sql("evict.mark_mid_tx")?;
            Ok(n > 0)
        })
    }

    /// Starts a remove (SPEC [W8]) under the exclusive stripe: with no live holder seen
    /// (`holders` = 0) marks the row `removing`, else `deleting`.
    pub(crate) fn begin_remove(
        &mut self,
        name: &str,
        holders: usize,
    ) -> Result<RemoveStart, CatalogError> {
        self.set_sync(true)?;
        self.immediate("start a remove", |tx| {
            let state: Option<String> = tx
                .prepare_cached("SELECT state FROM arrays WHERE name = ?1")?
                .query_row([name], |r| r.get(0))
                .optional()?;
            if !matches!(state.as_deref(), Some("live" | "deleting")) {
                return Ok(RemoveStart::NotFound);
            }
            let next = if holders > 0 { "deleting" } else { "removing" };
            tx.prepare_cached("UPDATE arrays SET state = ?2, updated_at = ?3 WHERE name = ?1")?
                .execute(params![name, next, now_ms()])?;
            hit_sql("remove.mark_mid_tx")?;
            Ok(if holders > 0 {
                RemoveStart::Deferred
            } else {
                RemoveStart::Now
            })
        })
    }

    /// Sets the lifecycle of live `name` (under its exclusive stripe); `held` says whether a
    /// live session holds it now: becoming scratch while held counts as held while scratch
    /// ([P6]). `None` if there is no such live entry, else whether its removal is due once
    /// nobody holds it (scratch and held before).
    pub(crate) fn set_lifecycle(
        &mut self,
        name: &str,
        lifecycle: Lifecycle,
        held: bool,
    ) -> Result<Option<bool>, CatalogError> {
        self.set_sync(true)?;
        let (on, cached) = lifecycle.columns();
        self.immediate("set the lifecycle", |tx| {
            let n = tx.execute(
                "UPDATE arrays SET scratch = ?2, cached = ?3,
                        ever_held = CASE WHEN ?2 = 1 AND ?4 THEN 1 ELSE ever_held END
                 WHERE name = ?1 AND state = 'live'",
                params![name, on, cached, held],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let ever_held: i64 = tx.query_row(
                "SELECT ever_held FROM arrays WHERE name = ?1",
                [name],
                |r| r.get(0),
            )?;
            Ok(Some(on && ever_held != 0))
        })
    }

    /// Reaps every dead session (SPEC [P5]): its catalog rows (the session, its in-place writer
    /// registrations). Returns the reaped session ids, the entries whose removal may be due
    /// (each removed under its stripe if nobody holds it), and the names whose last in-place
    /// writer was reaped (their checksums need recomputing).
    pub(crate) fn reap_dead(
        &mut self,
        alive: &dyn Fn(&str) -> bool,
    ) -> Result<Reaped, CatalogError> {
        self.set_sync(true)?;
        self.immediate("reap dead holders", |tx| {
            let ids: Vec<String> = tx
                .prepare("SELECT id FROM sessions UNION SELECT session FROM inplace_writers")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut reaped = Vec::new();
            let mut writers_gone = Vec::new();
            for id in ids {
                if alive(&id) {
                    continue;
                }
                for n in super::end_session_tx(tx, &id)? {
                    if !writers_gone.contains(&n) {
                        writers_gone.push(n);
                    }
                }
                reaped.push(id);
            }
            hit_sql("gc.reap_mid_tx")?;
            let due = tx
                .prepare(&format!(
                    // Two halves, each through a partial index (`ensure_schema_form`), so this does
                    // not scan every row.
                    "SELECT name FROM arrays WHERE {DEFERRED}
                     UNION SELECT name FROM arrays WHERE {HELD_SCRATCH} ORDER BY name"
                ))?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(Reaped {
                sessions: reaped,
                due,
                writers_gone,
            })
        })
    }

    /// Names of interrupted publishes and removes (`publishing`, `removing`). A `deleting` row is
    /// not unfinished: its removal waits for live holders ([W8]); see [`Catalog::deferred`].
    pub(crate) fn unfinished(&mut self) -> Result<Vec<String>, CatalogError> {
        self.read("list unfinished", |tx| {
            tx.prepare(&format!(
                "SELECT name FROM arrays WHERE {UNFINISHED} ORDER BY name"
            ))?
            .query_map([], |r| r.get(0))?
            .collect()
        })
    }

    /// The rows a gc starts from ([`GcRows`]), in one statement (one snapshot, no `BEGIN` and
    /// `COMMIT`): what [`Catalog::unfinished`], [`Catalog::reap_dead`] and
    /// [`Catalog::reserving_sessions`] read, through the same conditions, each row tagged with
    /// the list it fills.
    pub(crate) fn gc_rows(&mut self) -> Result<GcRows, CatalogError> {
        // Schema 3 added `reservations`; a read-write open migrates older catalogs first.
        let reservations = if self.schema >= 3 {
            "UNION ALL SELECT 3, session FROM reservations"
        } else {
            ""
        };
        let sql = format!(
            "SELECT 0, name FROM arrays WHERE {UNFINISHED}
             UNION ALL SELECT 1, id FROM sessions
             UNION ALL SELECT 1, session FROM inplace_writers
             UNION ALL SELECT 2, name FROM arrays WHERE {DEFERRED}
             UNION ALL SELECT 2, name FROM arrays WHERE {HELD_SCRATCH}
             {reservations}"
        );
        let rows: Vec<(i64, String)> = self.read_one("list what gc may have to do", |conn| {
            conn.prepare_cached(&sql)?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })?;
        let mut out = GcRows::default();
        for (part, name) in rows {
            let list = match part {
                0 => &mut out.unfinished,
                1 => &mut out.sessions,
                2 => &mut out.due,
                _ => &mut out.reserving,
            };
            list.push(name);
        }
        for list in [
            &mut out.unfinished,
            &mut out.sessions,
            &mut out.due,
            &mut out.reserving,
        ] {
            list.sort_unstable();
            list.dedup();
        }
        Ok(out)
    }

    /// Every registered session (its id, pid and start); what each holds is in its session
    /// file ([P3]).
    pub fn holders(&mut self) -> Result<Vec<HolderRow>, CatalogError> {
        self.read("list holders", |tx| {
            tx.prepare("SELECT id, pid, started_at FROM sessions ORDER BY 1")?
                .query_map([], |r| {
                    Ok(HolderRow {
                        session: r.get(0)?,
                        pid: r
                            .get::<_, Option<i64>>(1)?
                            .and_then(|p| u32::try_from(p).ok()),
                        started_at_ms: r.get(2)?,
                        arrays: Vec::new(),
                    })
                })?
                .collect::<Result<_, _>>()
        })
    }
}
