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
/// Its columns of `arrays` are [`ARRAYS_V3_COLUMNS`], run before it.
pub(super) const SCHEMA_V3: &str = "
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

/// The indexes of `arrays` besides its key: the cache's (schema 3) and gc's partial indexes
/// (made by any read-write open when missing; an engine of schema 2 maintains them as SQLite
/// maintains every index), named in [`ARRAYS_INDEX_NAMES`].
pub(super) const ARRAYS_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS arrays_cached ON arrays(released_at) WHERE cached = 1;
CREATE INDEX IF NOT EXISTS arrays_not_live ON arrays(state) WHERE state <> 'live';
CREATE INDEX IF NOT EXISTS arrays_held_scratch ON arrays(name)
  WHERE scratch = 1 AND ever_held = 1;
";

/// The names of [`ARRAYS_INDEXES`].
pub(super) const ARRAYS_INDEX_NAMES: [&str; 3] =
    ["arrays_cached", "arrays_not_live", "arrays_held_scratch"];

/// The `arrays` table of schema version 2; `{name}` is the table's name. Its constraints are
/// chains of `=` rather than `IN` lists: SQLite evaluates an `IN` list of three or more constants
/// through a temporary b-tree (its own pager and page cache) at every insert, and at every update
/// of the column, which was a third of a small publish. They mean the same ([`IN_LIST`]:
/// older catalogs are rewritten to this form).
pub(super) const ARRAYS_V2: &str = "
CREATE TABLE {name}(
  name TEXT PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL CHECK (kind = 'dense' OR kind = 'sparse' OR kind = 'table'),
  layout TEXT CHECK (layout = 'rows' OR layout = 'columns'),
  dtype TEXT NOT NULL,
  indices_dtype TEXT,
  indptr_dtype TEXT,
  shape TEXT NOT NULL,
  nnz INTEGER,
  state TEXT NOT NULL
    CHECK (state = 'publishing' OR state = 'live' OR state = 'deleting' OR state = 'removing'),
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

/// The columns schema 3 adds to `arrays` (in [`SCHEMA_V3`]); `{name}` is the table's name.
pub(super) const ARRAYS_V3_COLUMNS: &str = "
ALTER TABLE {name} ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {name} ADD COLUMN released_at INTEGER;
";

/// Every column of `arrays` since schema 3 (what the rewrite of its constraints copies).
pub(super) const ARRAYS_V3_ALL_COLUMNS: &str =
    "name, kind, layout, dtype, indices_dtype, indptr_dtype, shape, nnz, \
     state, generation, checksum_stale, scratch, ever_held, staging, created_at, updated_at, tab, \
     cached, released_at";

/// What marks the constraints of `arrays` as engines before this one wrote them (schemas 1–5:
/// `IN` lists): a table whose SQL holds it is rebuilt by a read-write open
/// (`Catalog::ensure_schema_form`).
pub(super) const IN_LIST: &str = " IN (";

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
    use crate::format::meta::{DenseMeta, TableMeta};

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

    /// The SQL of the `arrays` table.
    fn arrays_sql(cat: &mut Catalog) -> String {
        cat.conn()
            .unwrap()
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'arrays'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// How many temporary b-trees (`OpenEphemeral`) the program of `sql` opens.
    fn temp_btrees(cat: &mut Catalog, sql: &str) -> usize {
        temp_btrees_of(cat.conn().unwrap(), sql)
    }

    fn temp_btrees_of(conn: &Connection, sql: &str) -> usize {
        let params = sql.matches('?').count();
        let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let ops: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(vec![None::<i64>; params]), |r| {
                r.get(1)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        ops.iter().filter(|op| *op == "OpenEphemeral").count()
    }

    /// Statements of the publish and state paths: none may build a temporary b-tree (an `IN`
    /// list of three or more constants in a constraint does, at every run).
    const HOT: [&str; 3] = [
        "INSERT INTO arrays(name, kind, layout, dtype, shape, state, generation, created_at,
                            updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "UPDATE arrays SET state = ?, kind = ?, layout = ? WHERE name = ?",
        "UPDATE arrays SET state = ?, staging = NULL WHERE name = ?",
    ];

    /// Puts the `IN` lists of engines before this one back into `arrays`' SQL (SQLite's
    /// documented procedure for a change of constraints that every row satisfies).
    fn with_in_lists(cat: &mut Catalog) {
        let sql = arrays_sql(cat)
            .replace(
                "kind = 'dense' OR kind = 'sparse' OR kind = 'table'",
                "kind IN ('dense', 'sparse', 'table')",
            )
            .replace(
                "state = 'publishing' OR state = 'live' OR state = 'deleting' OR state = 'removing'",
                "state IN ('publishing', 'live', 'deleting', 'removing')",
            );
        assert!(sql.contains(IN_LIST), "{sql}");
        let conn = cat.conn().unwrap();
        let v: i64 = conn
            .query_row("PRAGMA schema_version", [], |r| r.get(0))
            .unwrap();
        conn.execute_batch("PRAGMA writable_schema = ON").unwrap();
        conn.execute(
            "UPDATE sqlite_master SET sql = ?1 WHERE type = 'table' AND name = 'arrays'",
            [sql],
        )
        .unwrap();
        conn.pragma_update(None, "schema_version", v + 1).unwrap();
        conn.execute_batch("PRAGMA writable_schema = OFF").unwrap();
    }

    fn rows_and_files(cat: &mut Catalog) -> Vec<(i64, String, String, String, i64)> {
        cat.conn()
            .unwrap()
            .prepare(
                "SELECT a.rowid, a.name, a.state, f.suffix, f.size
                   FROM arrays AS a JOIN array_files AS f ON f.name = a.name ORDER BY 1, 4",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_catalog_with_in_list_constraints_is_rewritten_by_a_read_write_open_keeping_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        let mut cat = Catalog::open(&path, Access::Create).unwrap();
        assert!(!arrays_sql(&mut cat).contains(IN_LIST));
        for sql in HOT {
            assert_eq!(temp_btrees(&mut cat, sql), 0, "{sql}");
        }
        let dense = ArrayMeta::Dense(DenseMeta::new(crate::DType::Int8, vec![3]).unwrap());
        let file = |suffix: &str, size| FileRecord {
            suffix: suffix.into(),
            size,
            crc32c: Some(7),
        };
        for (name, size) in [("b", 3), ("a", 3), ("c", 3)] {
            cat.begin_publish(
                name,
                &dense,
                &[file("array", size)],
                "",
                Lifecycle::Persistent,
            )
            .unwrap();
        }
        cat.set_state("a", ArrayState::Live).unwrap();
        cat.set_state("c", ArrayState::Deleting).unwrap();
        let before = rows_and_files(&mut cat);
        assert_eq!(before.len(), 3);
        with_in_lists(&mut cat);
        drop(cat);

        let mut ro = Catalog::open(&path, Access::ReadOnly).unwrap();
        assert!(
            arrays_sql(&mut ro).contains(IN_LIST),
            "a read-only open changes nothing"
        );
        drop(ro);
        {
            // What an engine before this one runs at every publish (a plain connection: a
            // read-write open of the catalog would rewrite it).
            let conn = Connection::open(&path).unwrap();
            for sql in HOT {
                assert!(temp_btrees_of(&conn, sql) > 0, "{sql}");
            }
        }

        let mut cat = Catalog::open(&path, Access::ReadWrite).unwrap();
        assert!(
            !arrays_sql(&mut cat).contains(IN_LIST),
            "{}",
            arrays_sql(&mut cat)
        );
        assert_eq!(
            rows_and_files(&mut cat),
            before,
            "rows, rowids and files kept"
        );
        for sql in HOT {
            assert_eq!(temp_btrees(&mut cat, sql), 0, "{sql}");
        }
        assert_eq!(indexes(&mut cat), 2);
        let cached: i64 = cat
            .conn()
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'arrays_cached'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(cached, 1);
        // The rewritten table still works for the engine: a publish and its files.
        cat.begin_publish("d", &dense, &[file("array", 3)], "", Lifecycle::Persistent)
            .unwrap();
        assert_eq!(cat.get("d").unwrap().unwrap().bytes, 3);
        assert_eq!(cat.get("c").unwrap().unwrap().state, ArrayState::Deleting);
    }

    #[test]
    fn the_constraints_refuse_what_the_in_lists_refused_and_accept_what_they_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let mut cat = Catalog::open(&dir.path().join("catalog.sqlite"), Access::Create).unwrap();
        let conn = cat.conn().unwrap();
        let insert = |name: &str, kind: &str, layout: Option<&str>, state: &str| {
            conn.execute(
                "INSERT INTO arrays(name, kind, layout, dtype, shape, state, generation,
                                    created_at, updated_at)
                   VALUES (?1, ?2, ?3, 'int8', '[1]', ?4, 1, 0, 0)",
                rusqlite::params![name, kind, layout, state],
            )
        };
        let mut n = 0;
        for kind in ["dense", "sparse", "table"] {
            for layout in [None, Some("rows"), Some("columns")] {
                for state in ["publishing", "live", "deleting", "removing"] {
                    n += 1;
                    insert(&format!("ok{n}"), kind, layout, state).unwrap();
                }
            }
        }
        for (kind, layout, state) in [
            ("Dense", None, "live"),
            ("", None, "live"),
            ("dense", Some("row"), "live"),
            ("dense", None, "alive"),
            ("dense", None, "live "),
        ] {
            n += 1;
            let err = insert(&format!("bad{n}"), kind, layout, state).unwrap_err();
            assert!(err.to_string().contains("CHECK constraint failed"), "{err}");
        }
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
