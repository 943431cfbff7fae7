//! The catalog's schema (SPEC 9.1): its version, the SQL that creates it and that migrations
//! run (`Catalog::migrate`), and the check of a catalog's version. The migration tests.

use std::path::Path;

use super::sql::damaged;
use crate::error::CatalogError;

/// Catalog schema version (`PRAGMA user_version`). 2 adds tables: `kind` may be `table` and the
/// column `tab` holds a table's rows, columns and types (JSON). 3 adds the cache (SPEC 9.7): the
/// columns `cached` and `released_at` of `arrays`, and the tables `config` and `reservations`.
/// 4 moves references out of the catalog into session files (SPEC [P3]): the table `refs` is
/// gone. An older catalog is migrated by the first read-write open, and read as it is by
/// read-only ones.
pub const SCHEMA_VERSION: i64 = 5;

/// What schema 4 changes in a schema-3 catalog (also run when a catalog is created): references
/// are records in session files ([P3]).
pub(super) const SCHEMA_V4: &str = "
DROP INDEX IF EXISTS refs_by_name;
DROP TABLE IF EXISTS refs;
";

/// What schema 3 adds to a schema-2 catalog (also run when a catalog is created).
pub(super) const SCHEMA_V3: &str = "
ALTER TABLE arrays ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE arrays ADD COLUMN released_at INTEGER;
CREATE TABLE config(
  key TEXT PRIMARY KEY NOT NULL,
  value INTEGER
) STRICT;
CREATE TABLE reservations(
  staging TEXT PRIMARY KEY NOT NULL,
  session TEXT NOT NULL,
  bytes INTEGER NOT NULL
) STRICT;
CREATE INDEX arrays_cached ON arrays(released_at) WHERE cached = 1;
";

/// The `arrays` table of schema version 2; `{name}` is the table's name.
pub(super) const ARRAYS_V2: &str = "
CREATE TABLE {name}(
  name TEXT PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('dense', 'sparse', 'table')),
  layout TEXT CHECK (layout IN ('rows', 'columns')),
  dtype TEXT NOT NULL,
  indices_dtype TEXT,
  indptr_dtype TEXT,
  shape TEXT NOT NULL,
  nnz INTEGER,
  state TEXT NOT NULL CHECK (state IN ('publishing', 'live', 'deleting', 'removing')),
  generation INTEGER NOT NULL,
  checksum_stale INTEGER NOT NULL DEFAULT 0,
  scratch INTEGER NOT NULL DEFAULT 0,
  ever_held INTEGER NOT NULL DEFAULT 0,
  staging TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  tab TEXT
) STRICT;
";

/// Columns of `arrays` common to versions 1 and 2 (what a migration copies).
pub(super) const ARRAYS_V1_COLUMNS: &str =
    "name, kind, layout, dtype, indices_dtype, indptr_dtype, shape, nnz, \
     state, generation, checksum_stale, scratch, ever_held, staging, created_at, updated_at";

/// The rest of the schema (unchanged since version 1).
pub(super) const SCHEMA: &str = "
CREATE TABLE array_files(
  name TEXT NOT NULL REFERENCES arrays(name) ON DELETE CASCADE,
  suffix TEXT NOT NULL,
  size INTEGER NOT NULL,
  crc32c INTEGER,
  PRIMARY KEY (name, suffix)
) STRICT;
CREATE TABLE sessions(
  id TEXT PRIMARY KEY NOT NULL,
  pid INTEGER NOT NULL,
  started_at INTEGER NOT NULL
) STRICT;
CREATE TABLE refs(
  session TEXT NOT NULL,
  name TEXT NOT NULL,
  since INTEGER NOT NULL,
  PRIMARY KEY (session, name)
) STRICT;
CREATE INDEX refs_by_name ON refs(name);
CREATE TABLE inplace_writers(
  session TEXT NOT NULL,
  name TEXT NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (session, name)
) STRICT;
";

/// Refuses a schema newer than this engine's, or none (SPEC 9.1, [Q2]).
pub(super) fn check_schema_version(path: &Path, version: i64) -> Result<(), CatalogError> {
    if version > SCHEMA_VERSION {
        return Err(CatalogError::SchemaTooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version < 1 {
        return Err(damaged(
            path,
            "it has no schema (user_version 0): it is not a dafstore catalog".into(),
        ));
    }
    Ok(())
}

/// The `arrays` table of schema version 1, kept to test the migration.
#[cfg(test)]
const SCHEMA_V1_ARRAYS: &str = "
CREATE TABLE arrays(
  name TEXT PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('dense', 'sparse')),
  layout TEXT CHECK (layout IN ('rows', 'columns')),
  dtype TEXT NOT NULL,
  indices_dtype TEXT,
  indptr_dtype TEXT,
  shape TEXT NOT NULL,
  nnz INTEGER,
  state TEXT NOT NULL CHECK (state IN ('publishing', 'live', 'deleting', 'removing')),
  generation INTEGER NOT NULL,
  checksum_stale INTEGER NOT NULL DEFAULT 0,
  scratch INTEGER NOT NULL DEFAULT 0,
  ever_held INTEGER NOT NULL DEFAULT 0,
  staging TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
";

#[cfg(test)]
mod migration_tests {
    use super::super::*;
    use super::*;
    use crate::format::meta::TableMeta;

    #[test]
    fn a_version_2_catalog_gains_the_cache_with_rows_persistent_and_no_limits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&ARRAYS_V2.replace("{name}", "arrays"))
                .unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute_batch(
                "INSERT INTO arrays(name, kind, dtype, shape, state, generation, created_at, updated_at, scratch)
                   VALUES ('x', 'dense', 'int8', '[3]', 'live', 2, 0, 0, 1);
                 INSERT INTO array_files VALUES ('x', 'array', 3, 7);
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        }
        // Read-only: read as it is, no cache columns.
        let mut ro = Catalog::open(&path, Access::ReadOnly).unwrap();
        let x = ro.get("x").unwrap().unwrap();
        assert_eq!((x.lifecycle, x.released_at), (Lifecycle::Scratch, None));
        assert_eq!(
            ro.limits().unwrap(),
            crate::format::lifecycle::Limits::default()
        );
        drop(ro);
        let mut cat = Catalog::open(&path, Access::ReadWrite).unwrap();
        let x = cat.get("x").unwrap().unwrap();
        assert_eq!(
            (x.lifecycle, x.generation, x.bytes),
            (Lifecycle::Scratch, 2, 3)
        );
        cat.set_limits(crate::format::lifecycle::Limits {
            capacity: Some(5),
            min_free: None,
        })
        .unwrap();
        assert_eq!(cat.limits().unwrap().capacity, Some(5));
        struct NoHolds(HeldByKey);
        impl Holds for NoHolds {
            fn held(&self) -> Option<&HeldByKey> {
                Some(&self.0)
            }
            fn released(&self, _: u64) -> i64 {
                0
            }
        }
        let holds = NoHolds(Default::default());
        assert_eq!(cat.usage(&holds).unwrap().entries, 3);
        let v: i64 = cat
            .conn()
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let refs: i64 = cat
            .conn()
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'refs'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(refs, 0, "schema 4: references live in session files ([P3])");
    }

    #[test]
    fn a_version_1_catalog_is_migrated_by_a_read_write_open_keeping_rows_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA_V1_ARRAYS).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute_batch(
                "INSERT INTO arrays(name, kind, dtype, shape, state, generation, created_at, updated_at)
                   VALUES ('x', 'dense', 'int8', '[3]', 'live', 4, 0, 0);
                 INSERT INTO array_files VALUES ('x', 'array', 3, 7);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        // A read-only open reads it as it is.
        let mut ro = Catalog::open(&path, Access::ReadOnly).unwrap();
        assert_eq!(ro.get("x").unwrap().unwrap().files[0].crc32c, Some(7));
        drop(ro);
        let mut cat = Catalog::open(&path, Access::ReadWrite).unwrap();
        let x = cat.get("x").unwrap().unwrap();
        assert_eq!((x.generation, x.bytes, x.files[0].crc32c), (4, 3, Some(7)));
        let meta = ArrayMeta::Table(
            TableMeta::new(2, vec!["a".into()], vec!["double".into()], 100).unwrap(),
        );
        let files = vec![FileRecord {
            suffix: "arrow".into(),
            size: 100,
            crc32c: Some(1),
        }];
        cat.begin_publish("t", &meta, &files, "", Lifecycle::Persistent)
            .unwrap();
        assert_eq!(cat.get("t").unwrap().unwrap().meta, meta);
        let v: i64 = cat
            .conn()
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        // The rebuilt `arrays` has gc's partial indexes again.
        assert_eq!(indexes(&mut cat), 2);
    }

    fn indexes(cat: &mut Catalog) -> i64 {
        cat.conn()
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'
                   AND name IN ('arrays_not_live', 'arrays_held_scratch')",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }

    #[test]
    fn a_read_write_open_makes_a_missing_partial_index_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        let mut cat = Catalog::open(&path, Access::Create).unwrap();
        assert_eq!(indexes(&mut cat), 2);
        cat.conn()
            .unwrap()
            .execute_batch("DROP INDEX arrays_held_scratch")
            .unwrap();
        drop(cat);
        let mut ro = Catalog::open(&path, Access::ReadOnly).unwrap();
        assert_eq!(indexes(&mut ro), 1, "a read-only open changes nothing");
        drop(ro);
        let mut cat = Catalog::open(&path, Access::ReadWrite).unwrap();
        assert_eq!(indexes(&mut cat), 2);
    }
}
