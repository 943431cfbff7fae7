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
/// Its columns of `arrays` are [`ARRAYS_V3_COLUMNS`], run before it; its index `arrays_cached`
/// is made with the others ([`ARRAYS_INDEXES`]), run after it.
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
        // The rebuilt `arrays` has gc's partial indexes again, and this engine's constraints.
        assert_eq!(indexes(&mut cat), 2);
        assert!(!arrays_sql(cat.conn().unwrap()).contains(IN_LIST));
    }

    /// The SQL of the `arrays` table.
    fn arrays_sql(conn: &Connection) -> String {
        conn.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'arrays'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// How many temporary b-trees (`OpenEphemeral`) the program of `sql` opens.
    fn temp_btrees(conn: &Connection, sql: &str) -> usize {
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

    /// `arrays` exactly as engines before the rewrite made it (schemas 2 to 5, f3ae769).
    const ARRAYS_V2_IN_LISTS: &str = "
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

    /// A schema-5 catalog as an engine before the rewrite created it, with `extra` run after.
    fn old_catalog(path: &Path, extra: &str) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL").unwrap();
        conn.execute_batch(&ARRAYS_V2_IN_LISTS.replace("{name}", "arrays"))
            .unwrap();
        conn.execute_batch(&ARRAYS_V3_COLUMNS.replace("{name}", "arrays"))
            .unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch(SCHEMA_V3).unwrap();
        conn.execute_batch(ARRAYS_INDEXES).unwrap();
        conn.execute_batch(SCHEMA_V4).unwrap();
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}; {extra}"))
            .unwrap();
    }

    /// Rows of every kind and state with a distinct, non-default value in every column.
    const OLD_ROWS: &str = "
      INSERT INTO arrays(rowid, name, kind, layout, dtype, indices_dtype, indptr_dtype, shape,
                         nnz, state, generation, checksum_stale, scratch, ever_held, staging,
                         created_at, updated_at, tab, cached, released_at) VALUES
        (7, 'm', 'sparse', 'rows', 'float32', 'int32', 'int64', '[4,5]', 6, 'live', 3, 1, 1, 1,
         NULL, 11, 12, NULL, 1, 13),
        (3, 'd', 'dense', 'columns', 'int8', NULL, NULL, '[2,3]', NULL, 'publishing', 2, 0, 0, 0,
         'abc/4', 21, 22, NULL, 0, NULL),
        (9, 't', 'table', NULL, 'arrow', NULL, NULL, '[5]', NULL, 'deleting', 5, 0, 1, 0, '', 31,
         32, '{\"rows\":5}', 1, 33),
        (5, 'r', 'dense', NULL, 'bool', NULL, NULL, '[]', NULL, 'removing', 1, 1, 0, 1, NULL, 41,
         42, NULL, 0, 43);
      INSERT INTO array_files VALUES ('m', 'data', 24, 1), ('m', 'indices', 24, 2),
        ('m', 'indptr', 48, NULL), ('d', 'array', 6, 3), ('t', 'arrow', 100, 4), ('r', 'array', 1, 5);
    ";

    fn dump(conn: &Connection, sql: &str) -> Vec<Vec<rusqlite::types::Value>> {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn everything(conn: &Connection) -> Vec<Vec<rusqlite::types::Value>> {
        let mut all = dump(conn, "SELECT rowid, * FROM arrays ORDER BY rowid");
        all.extend(dump(
            conn,
            "SELECT rowid, * FROM array_files ORDER BY rowid",
        ));
        all
    }

    #[test]
    fn a_catalog_with_in_list_constraints_is_rewritten_by_a_read_write_open_keeping_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("fresh.sqlite");
        let mut cat = Catalog::open(&fresh, Access::Create).unwrap();
        assert!(!arrays_sql(cat.conn().unwrap()).contains(IN_LIST));
        for sql in HOT {
            assert_eq!(temp_btrees(cat.conn().unwrap(), sql), 0, "{sql}");
        }
        let columns = dump(cat.conn().unwrap(), "PRAGMA table_info(arrays)");
        drop(cat);

        let path = dir.path().join("catalog.sqlite");
        old_catalog(&path, OLD_ROWS);
        let before = {
            // What an engine before this one ran at every publish: temporary b-trees.
            let conn = Connection::open(&path).unwrap();
            for sql in HOT {
                assert!(temp_btrees(&conn, sql) > 0, "{sql}");
            }
            everything(&conn)
        };
        assert_eq!(before.len(), 10);

        let ro = Catalog::open(&path, Access::ReadOnly).unwrap();
        drop(ro);
        assert!(
            arrays_sql(&Connection::open(&path).unwrap()).contains(IN_LIST),
            "read-only"
        );

        let mut cat = Catalog::open(&path, Access::ReadWrite).unwrap();
        let conn = cat.conn().unwrap();
        assert!(!arrays_sql(conn).contains(IN_LIST), "{}", arrays_sql(conn));
        assert_eq!(
            everything(conn),
            before,
            "every row, column, rowid and file kept"
        );
        assert_eq!(
            dump(conn, "PRAGMA table_info(arrays)"),
            columns,
            "as a new catalog's"
        );
        for sql in HOT {
            assert_eq!(temp_btrees(conn, sql), 0, "{sql}");
        }
        let names: Vec<Vec<rusqlite::types::Value>> = dump(
            conn,
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'arrays'
               AND name NOT LIKE 'sqlite_autoindex%' ORDER BY 1",
        );
        assert_eq!(names.len(), ARRAYS_INDEX_NAMES.len(), "{names:?}");
        // Foreign keys are on and enforced on the catalog's connection: an orphan file row is
        // refused, and deleting a row deletes its files.
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        assert!(conn
            .execute(
                "INSERT INTO array_files VALUES ('nobody', 'array', 1, 1)",
                []
            )
            .is_err());
        conn.execute("DELETE FROM arrays WHERE name = 'm'", [])
            .unwrap();
        let left: i64 = conn
            .query_row(
                "SELECT count(*) FROM array_files WHERE name = 'm'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
        // The engine works on the rewritten table.
        let dense = ArrayMeta::Dense(DenseMeta::new(crate::DType::Int8, vec![3]).unwrap());
        let file = FileRecord {
            suffix: "array".into(),
            size: 3,
            crc32c: Some(7),
        };
        cat.begin_publish("x", &dense, &[file], "", Lifecycle::Persistent)
            .unwrap();
        cat.set_state("x", ArrayState::Live).unwrap();
        assert_eq!(cat.get("x").unwrap().unwrap().bytes, 3);
        assert_eq!(cat.get("r").unwrap().unwrap().state, ArrayState::Removing);
    }

    #[test]
    fn a_table_with_columns_this_engine_does_not_know_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        // A newer engine's column: a rewrite copying the columns it knows would lose it.
        old_catalog(
            &path,
            &format!(
                "ALTER TABLE arrays ADD COLUMN future TEXT; {OLD_ROWS}
                      UPDATE arrays SET future = 'kept' WHERE name = 'm';"
            ),
        );
        let mut cat = Catalog::open(&path, Access::ReadWrite).unwrap();
        let conn = cat.conn().unwrap();
        assert!(arrays_sql(conn).contains(IN_LIST));
        let future: String = conn
            .query_row("SELECT future FROM arrays WHERE name = 'm'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(future, "kept");
        assert_eq!(indexes(&mut cat), 2, "its indexes are still made");
    }

    #[test]
    fn a_genuine_version_2_catalog_is_migrated_then_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&ARRAYS_V2_IN_LISTS.replace("{name}", "arrays"))
                .unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute_batch(
                "INSERT INTO arrays(name, kind, dtype, shape, state, generation, created_at, updated_at)
                   VALUES ('x', 'dense', 'int8', '[3]', 'live', 2, 0, 0);
                 INSERT INTO array_files VALUES ('x', 'array', 3, 7);
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        }
        let mut cat = Catalog::open(&path, Access::ReadWrite).unwrap();
        assert!(!arrays_sql(cat.conn().unwrap()).contains(IN_LIST));
        let x = cat.get("x").unwrap().unwrap();
        assert_eq!((x.generation, x.bytes, x.files[0].crc32c), (2, 3, Some(7)));
        assert_eq!(indexes(&mut cat), 2);
    }

    #[test]
    fn the_constraints_accept_and_refuse_exactly_what_the_in_lists_did() {
        let old = Connection::open_in_memory().unwrap();
        old.execute_batch(&ARRAYS_V2_IN_LISTS.replace("{name}", "arrays"))
            .unwrap();
        let new = Connection::open_in_memory().unwrap();
        new.execute_batch(&ARRAYS_V2.replace("{name}", "arrays"))
            .unwrap();
        use rusqlite::types::Value;
        let text = |s: &str| Value::Text(s.into());
        let mut values = vec![
            Value::Null,
            Value::Integer(1),
            Value::Real(1.0),
            Value::Blob(b"dense".to_vec()),
        ];
        for s in [
            "dense",
            "sparse",
            "table",
            "rows",
            "columns",
            "publishing",
            "live",
            "deleting",
            "removing",
            "Dense",
            "LIVE",
            "live ",
            " live",
            "dense\0",
            "",
            "dénse",
            "1",
        ] {
            values.push(text(s));
        }
        let insert = "INSERT INTO arrays(name, kind, layout, dtype, shape, state, generation,
                                         created_at, updated_at)
                        VALUES (?1, ?2, ?3, 'int8', '[1]', ?4, 1, 0, 0)";
        let (mut accepted, mut n) = (0, 0);
        for v in &values {
            for (kind, layout, state) in [
                (v.clone(), Value::Null, text("live")),
                (text("dense"), v.clone(), text("live")),
                (text("dense"), Value::Null, v.clone()),
            ] {
                n += 1;
                let name = format!("n{n}");
                let p = rusqlite::params![name, kind, layout, state];
                let (a, b) = (
                    old.execute(insert, p).is_ok(),
                    new.execute(insert, p).is_ok(),
                );
                assert_eq!(a, b, "insert {kind:?} {layout:?} {state:?}");
                accepted += usize::from(a);
            }
            // The same values as updates of a valid row.
            for column in ["kind", "layout", "state"] {
                for conn in [&old, &new] {
                    conn.execute(
                        "INSERT OR REPLACE INTO arrays(name, kind, dtype, shape, state, generation,
                                                       created_at, updated_at)
                           VALUES ('u', 'dense', 'int8', '[1]', 'live', 1, 0, 0)",
                        [],
                    )
                    .unwrap();
                }
                let update = format!("UPDATE arrays SET {column} = ?1 WHERE name = 'u'");
                let (a, b) = (
                    old.execute(&update, [v]).is_ok(),
                    new.execute(&update, [v]).is_ok(),
                );
                assert_eq!(a, b, "update {column} = {v:?}");
            }
        }
        // Both accept the valid values (3 kinds, 2 layouts + NULL, 4 states) and refuse others.
        assert_eq!(accepted, 3 + 3 + 4, "accepted {accepted} of {n}");
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
