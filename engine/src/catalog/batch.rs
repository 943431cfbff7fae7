//! The two transactions of a batch publish (SPEC [W11]): every entry's intent in one (the commit
//! point of all of them), every entry's `live` flip in one.

use rusqlite::params;

use super::{intent_tx, now_ms, to_i64, Catalog, FileRecord, Lifecycle};
use crate::error::CatalogError;
use crate::failpoint::hit_sql;
use crate::format::meta::ArrayMeta;

/// One entry of a batch's intent ([W11] step 3).
pub(crate) struct IntentRow<'a> {
    pub(crate) name: &'a str,
    pub(crate) meta: &'a ArrayMeta,
    pub(crate) files: &'a [FileRecord],
    /// `<session>/<n>`: where its staged files are (SPEC 9.1).
    pub(crate) staging: &'a str,
    pub(crate) lifecycle: Lifecycle,
}

impl Catalog {
    /// Records the intent of every entry of a batch in one committed transaction ([W11] step 3,
    /// the batch's commit point): each row in state `publishing` as [W3] step 1. With a
    /// `reservation` (the batch's `<session>/<n>`, [E3]), the same transaction sets it to the
    /// bytes of the generations the batch replaces, whose files stay in place until renamed
    /// over. Like a single intent, it never uses the space reserve ([Q3]).
    pub(crate) fn begin_publish_batch(
        &mut self,
        rows: &[IntentRow<'_>],
        reservation: Option<&str>,
    ) -> Result<(), CatalogError> {
        self.set_sync(true)?;
        self.immediate_growing("record batch publish intent", |tx| {
            let mut replaced: u64 = 0;
            for (i, r) in rows.iter().enumerate() {
                if reservation.is_some() {
                    let old: i64 = tx
                        .prepare_cached(
                            "SELECT COALESCE(SUM(size), 0) FROM array_files WHERE name = ?1",
                        )?
                        .query_row([r.name], |row| row.get(0))?;
                    replaced = replaced.saturating_add(u64::try_from(old).unwrap_or(0));
                }
                intent_tx(tx, r.name, r.meta, r.files, r.staging, r.lifecycle, false)?;
                if i == 0 {
                    // Between the first entry's rows and the others': all or none ([W11]).
                    hit_sql("batch.intent_mid_tx")?;
                }
            }
            if let Some(staging) = reservation {
                tx.prepare_cached("UPDATE reservations SET bytes = ?2 WHERE staging = ?1")?
                    .execute(params![staging, to_i64(replaced)])?;
            }
            Ok(())
        })
    }

    /// Marks every row of a batch `live` in one committed transaction ([W11] step 6), ends the
    /// batch's reservation in it ([E3]), and marks held each entry with a `hold` session (a
    /// loader's publish, [E6], whose record the loader wrote before).
    pub(crate) fn set_live_batch(
        &mut self,
        rows: &[(&str, Option<&str>)],
        reservation: Option<&str>,
    ) -> Result<(), CatalogError> {
        self.set_sync(true)?;
        self.immediate("mark batch live", |tx| {
            let now = now_ms();
            for (name, hold) in rows {
                if hold.is_some() {
                    // The loader's reference is already in its session file ([P3], [E6]).
                    tx.prepare_cached("UPDATE arrays SET ever_held = 1 WHERE name = ?1")?
                        .execute([name])?;
                }
                tx.prepare_cached(
                    "UPDATE arrays SET state = 'live', staging = NULL, updated_at = ?2
                     WHERE name = ?1",
                )?
                .execute(params![name, now])?;
            }
            if let Some(staging) = reservation {
                tx.prepare_cached("DELETE FROM reservations WHERE staging = ?1")?
                    .execute([staging])?;
            }
            Ok(())
        })
    }
}
