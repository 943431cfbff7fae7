//! Catalog rows (`.dafstore/catalog.sqlite`, SPEC 9.1) that are valid SQLite but hold values the
//! engine never wrote: unknown kinds, dtypes, layouts and states, table columns (`tab`) that are
//! not the JSON the engine writes or disagree with the table's file, shapes that are not JSON or
//! overflow, negative or huge sizes and counts, rows for names that are not valid names, file rows
//! for other suffixes, unfinished publishes whose staging location points outside the container
//! (relative with `..`, or absolute), sessions of any id, and session files holding any bytes where
//! reference records belong (SPEC [P3]; a dead session's records are read for display only). The
//! fuzzer builds the rows
//! (structured input, `arbitrary`) into a real catalog with the engine's schema, then runs every
//! entry point that trusts the catalog: fsck (inspect, then repair), read-only open, read-write
//! open (recovery and gc), listing, opening and reading every array, holders, remove.
//!
//! Asserts: no panic, no out-of-bounds read (ASan), and nothing outside the container is changed:
//! the files of a decoy array next to the container (`outside/o.*`, where a `..` or absolute
//! staging path points) keep their bytes, and no file appears or disappears there.
#![no_main]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use std::sync::Arc;

use dafstore::arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use dafstore::{Array, Container, FsckOptions, Layout};
use dafstore_fuzz::{copy_tree, scratch};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use rusqlite::types::Value;

/// The staging session of the template's unfinished publish (a valid, dead session id).
const SID: &str = "0123456789abcdef0123456789abcdef";

struct Template {
    dir: PathBuf,
    outside: PathBuf,
    decoy: BTreeMap<PathBuf, Vec<u8>>,
}

/// A container with a dense `x`, a sparse `m`, a nested `g/y` and a table `t`, staged files of an unfinished
/// publish under `.dafstore/staging/<SID>/0.*`, and an empty catalog (schema only); next to it,
/// the decoy `outside/o.*`. Made once; each input gets a fresh copy of the container.
fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| {
        let dir = scratch().join("template");
        let c = Container::create(&dir).expect("create");
        c.write_dense::<f64>("x", &[2, 3], &[1., 2., 3., 4., 5., 6.])
            .expect("x");
        c.write_sparse::<f32, i32, i64>("m", Layout::Rows, [2, 3], &[1., 2.], &[0, 2], &[0, 1, 2])
            .expect("m");
        c.write_dense::<u8>("g/y", &[3], &[1, 2, 3]).expect("g/y");
        let v: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let s: ArrayRef = Arc::new(StringArray::from(vec!["a", "bc", "d"]));
        let batch = RecordBatch::try_from_iter([("v", v), ("s", s)]).expect("batch");
        c.write_table("t", batch.schema(), &[batch]).expect("t");
        drop(c);
        let staging = dir.join(".dafstore/staging").join(SID);
        fs::create_dir_all(&staging).expect("mkdir");
        for sfx in ["yaml", "array"] {
            fs::copy(
                dir.join(format!("x.{sfx}")),
                staging.join(format!("0.{sfx}")),
            )
            .expect("cp");
        }
        let conn = rusqlite::Connection::open(dir.join(".dafstore/catalog.sqlite")).expect("db");
        conn.execute_batch(
            "DELETE FROM inplace_writers; DELETE FROM sessions;
             DELETE FROM array_files; DELETE FROM arrays; PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .expect("empty the catalog");
        drop(conn);
        let outside = scratch().join("outside");
        fs::create_dir_all(&outside).expect("mkdir");
        let mut decoy = BTreeMap::new();
        for sfx in ["yaml", "array", "data", "indices", "indptr"] {
            let p = outside.join(format!("o.{sfx}"));
            let bytes = fs::read(dir.join(format!(
                "x.{}",
                if sfx == "yaml" { "yaml" } else { "array" }
            )))
            .expect("read");
            fs::write(&p, &bytes).expect("write");
            decoy.insert(p, bytes);
        }
        Template {
            dir,
            outside,
            decoy,
        }
    })
}

/// One of `options` most of the time, else any string.
fn pick(u: &mut Unstructured<'_>, options: &[&str]) -> Result<String> {
    if u.ratio(1, 6)? {
        u.arbitrary()
    } else {
        Ok(u.choose(options)?.to_string())
    }
}

fn opt_pick(u: &mut Unstructured<'_>, options: &[&str]) -> Result<Value> {
    Ok(if u.ratio(1, 8)? {
        Value::Null
    } else {
        Value::Text(pick(u, options)?)
    })
}

/// Small integers most of the time, else any `i64`.
fn int(u: &mut Unstructured<'_>, small: &[i64]) -> Result<i64> {
    if u.ratio(1, 5)? {
        u.arbitrary()
    } else {
        Ok(*u.choose(small)?)
    }
}

fn shape(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=3)? {
        0 => pick(
            u,
            &[
                "[2,3]",
                "[3]",
                "[6]",
                "[]",
                "[2]",
                "[0,3]",
                "[18446744073709551615,2]",
                "[-1]",
                "[1.5]",
                "{}",
                "null",
                "[2,3,4]",
                "[2, 3]",
                "\"[2,3]\"",
            ],
        )?,
        _ => {
            let n = u.int_in_range(0..=3)?;
            let dims: Vec<String> = (0..n)
                .map(|_| int(u, &[0, 1, 2, 3, 6]).map(|v| (v as u64).to_string()))
                .collect::<Result<_>>()?;
            format!("[{}]", dims.join(","))
        }
    })
}

const DTYPES: &[&str] = &[
    "float64",
    "float32",
    "float16",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint64",
    "uint32",
    "uint16",
    "uint8",
    "bool",
    "complex64",
    "",
];
const INDEX_DTYPES: &[&str] = &["int32", "int64", "uint32", "uint64", "int16", "float32"];
const NAMES: &[&str] = &[
    "x",
    "m",
    "t",
    "g/y",
    "z",
    "g",
    "../x",
    "/x",
    "g/y/z",
    ".dafstore/x",
    "x/",
];
const SUFFIXES: &[&str] = &[
    "array", "data", "indices", "indptr", "yaml", "arrow", "../o", "sparse",
];
/// `tab` values: the engine's JSON for `t`, near misses, and not JSON at all.
const TABS: &[&str] = &[
    r#"{"rows":3,"columns":["v","s"],"types":["int64","string"]}"#,
    r#"{"rows":3,"columns":["v","s"],"types":["int64","large_string"]}"#,
    r#"{"rows":4,"columns":["v","s"],"types":["int64","string"]}"#,
    r#"{"rows":3,"columns":["v"],"types":["int64","string"]}"#,
    r#"{"rows":3,"columns":["v","v"],"types":["int64","int64"]}"#,
    r#"{"rows":18446744073709551615,"columns":["v","s"],"types":["int64","string"]}"#,
    r#"{"rows":3,"columns":[],"types":[]}"#,
    r#"{"rows":-1}"#,
    "[]",
    "",
];

struct Rows {
    user_version: i64,
    sql: Vec<(&'static str, Vec<Value>)>,
    /// Session files (`.dafstore/sessions/<id>.lock`, nobody holding their lock) and their bytes.
    session_files: Vec<(String, Vec<u8>)>,
}

fn rows(u: &mut Unstructured<'_>, outside: &Path) -> Result<Rows> {
    let abs = outside.join("o").to_string_lossy().into_owned();
    let sid_stem = format!("{SID}/0");
    let stagings = [
        sid_stem.as_str(),
        "../../../outside/o",
        abs.as_str(),
        "",
        "x",
        "/",
    ];
    let mut sql = Vec::new();
    let mut names = Vec::new();
    for _ in 0..u.int_in_range(0..=4)? {
        let name = pick(u, NAMES)?;
        names.push(name.clone());
        let kind = pick(u, &["dense", "sparse", "table", "Dense"])?;
        sql.push((
            "INSERT OR REPLACE INTO arrays(name, kind, layout, dtype, indices_dtype, indptr_dtype,
               shape, nnz, state, generation, checksum_stale, scratch, ever_held, staging,
               created_at, updated_at, tab, cached, released_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6,
               ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 0, 0, ?15, ?16, ?17)",
            vec![
                Value::Text(name),
                Value::Text(kind),
                opt_pick(u, &["rows", "columns", "Rows"])?,
                Value::Text(pick(u, DTYPES)?),
                opt_pick(u, INDEX_DTYPES)?,
                opt_pick(u, INDEX_DTYPES)?,
                Value::Text(shape(u)?),
                if u.ratio(1, 8)? {
                    Value::Null
                } else {
                    Value::Integer(int(u, &[0, 1, 2, 3, 6, -1])?)
                },
                Value::Text(pick(u, &["live", "publishing", "deleting", "removing"])?),
                Value::Integer(int(u, &[0, 1, 2, -1])?),
                Value::Integer(int(u, &[0, 1])?),
                Value::Integer(int(u, &[0, 1])?),
                Value::Integer(int(u, &[0, 1])?),
                opt_pick(u, &stagings)?,
                opt_pick(u, TABS)?,
                Value::Integer(int(u, &[0, 1, 2, -1])?),
                if u.arbitrary()? {
                    Value::Null
                } else {
                    Value::Integer(int(u, &[0, 1, -1, i64::MAX])?)
                },
            ],
        ));
        for _ in 0..u.int_in_range(0..=4)? {
            sql.push((
                "INSERT OR REPLACE INTO array_files(name, suffix, size, crc32c) VALUES (?1, ?2, ?3, ?4)",
                vec![
                    Value::Text(names.last().cloned().unwrap_or_default()),
                    Value::Text(pick(u, SUFFIXES)?),
                    Value::Integer(int(u, &[0, 3, 8, 24, 48, -1, i64::MAX])?),
                    if u.arbitrary()? {
                        Value::Null
                    } else {
                        Value::Integer(int(u, &[0, -1, 1 << 32])?)
                    },
                ],
            ));
        }
    }
    let sessions = [
        SID,
        "ffffffffffffffffffffffffffffffff",
        "../../../outside/o",
        "",
    ];
    for _ in 0..u.int_in_range(0..=3)? {
        sql.push((
            "INSERT OR REPLACE INTO sessions(id, pid, started_at) VALUES (?1, ?2, 0)",
            vec![
                Value::Text(pick(u, &sessions)?),
                Value::Integer(int(u, &[1, 0, -1])?),
            ],
        ));
    }
    names.extend(NAMES.iter().map(|s| s.to_string()));
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut session_files = Vec::new();
    for _ in 0..u.int_in_range(0..=2)? {
        // Records of the names (keys as SPEC [P3] computes them), then any bytes.
        let mut bytes = Vec::new();
        for _ in 0..u.int_in_range(0..=3)? {
            let n = pick(u, &names)?;
            let key = dafstore::ArrayName::new(&n).map_or(u.arbitrary()?, |a| a.key());
            bytes.extend_from_slice(&key.to_le_bytes());
            bytes.extend_from_slice(&u.arbitrary::<i64>()?.to_le_bytes());
        }
        let tail: Vec<u8> = u.arbitrary()?;
        bytes.extend_from_slice(&tail[..tail.len().min(40)]);
        session_files.push((pick(u, &sessions[..2])?, bytes));
    }
    for _ in 0..u.int_in_range(0..=2)? {
        sql.push((
            "INSERT OR REPLACE INTO inplace_writers(session, name, count) VALUES (?1, ?2, ?3)",
            vec![
                Value::Text(pick(u, &sessions)?),
                Value::Text(pick(u, &names)?),
                Value::Integer(int(u, &[1, 2, 0, -1])?),
            ],
        ));
    }
    // The cache (SPEC 9.7): limits and reservations, sane or not.
    for _ in 0..u.int_in_range(0..=2)? {
        sql.push((
            "INSERT OR REPLACE INTO config(key, value) VALUES (?1, ?2)",
            vec![
                Value::Text(pick(u, &["capacity", "min_free", "other"])?),
                Value::Integer(int(u, &[0, 8, 64, 1 << 20, -1, i64::MAX])?),
            ],
        ));
    }
    for _ in 0..u.int_in_range(0..=2)? {
        sql.push((
            "INSERT OR REPLACE INTO reservations(staging, session, bytes) VALUES (?1, ?2, ?3)",
            vec![
                Value::Text(pick(u, &stagings)?),
                Value::Text(pick(u, &sessions)?),
                Value::Integer(int(u, &[0, 8, 1 << 20, -1, i64::MAX])?),
            ],
        ));
    }
    // Mostly the engine's schema; sometimes an older one (migrated on open) or one it refuses.
    let current = dafstore::internals::SCHEMA_VERSION;
    let user_version = if u.ratio(1, 10)? {
        int(u, &[0, 1, current + 1, -1])?
    } else {
        current
    };
    Ok(Rows {
        user_version,
        sql,
        session_files,
    })
}

fn read_everything(c: &Container) {
    let Ok(records) = c.info_all() else { return };
    for r in records {
        let _ = r.meta.files();
        let Ok(a) = c.open_array(&r.name) else {
            continue;
        };
        match a {
            Array::Dense(d) => {
                std::hint::black_box(d.as_bytes().iter().map(|&b| u64::from(b)).sum::<u64>());
            }
            Array::Sparse(s) => {
                let _ = s.validate();
                std::hint::black_box((s.data_bytes().len(), s.indices(), s.indptr()));
                for i in 0..=s.sparse_meta().major().min(64) {
                    if let Some(r) = s.major_range(i) {
                        assert!(r.start <= r.end && r.end <= s.indices_bytes().len());
                    }
                }
            }
            Array::Table(t) => {
                std::hint::black_box(t.file_bytes().iter().map(|&b| u64::from(b)).sum::<u64>());
            }
        }
    }
    let _ = c.ls();
    let _ = c.holders();
    let _ = c.limits();
    let _ = c.usage();
}

fn fsck(root: &Path, repair: bool) {
    let opts = FsckOptions { deep: true, repair };
    let _ = Container::fsck_dir(root, opts, &mut |_, _| {});
}

fuzz_target!(|data: &[u8]| {
    let t = template();
    let Ok(rows) = rows(&mut Unstructured::new(data), &t.outside) else {
        return;
    };
    let root = scratch().join("case");
    let _ = fs::remove_dir_all(&root);
    copy_tree(&t.dir, &root);
    {
        let conn = rusqlite::Connection::open(root.join(".dafstore/catalog.sqlite")).expect("db");
        // The engine never writes what its CHECK constraints refuse; a damaged file can hold it.
        conn.execute_batch("PRAGMA ignore_check_constraints = ON; PRAGMA foreign_keys = OFF;")
            .expect("pragma");
        for (sql, params) in &rows.sql {
            let _ = conn.execute(sql, rusqlite::params_from_iter(params.iter()));
        }
        let _ = conn.pragma_update(None, "user_version", rows.user_version);
    }
    for (id, bytes) in &rows.session_files {
        let _ = fs::write(
            root.join(".dafstore/sessions").join(format!("{id}.lock")),
            bytes,
        );
    }

    fsck(&root, false);
    if let Ok(c) = Container::options().read_only(true).open(&root) {
        read_everything(&c);
    }
    if let Ok(c) = Container::open(&root) {
        read_everything(&c);
        let _ = c.gc();
        // A write under whatever limits the rows say: reserves, maybe evicts, maybe refuses.
        let cached = dafstore::CreateOptions::lifecycle(dafstore::Lifecycle::Cached);
        let _ = c.write_dense_bytes_with("w", dafstore::DType::UInt8, &[16], &[1; 16], &cached);
        let _ = c.evict();
        if let Ok(names) = c.ls() {
            for n in names {
                let _ = c.remove(&n);
            }
        }
    }
    fsck(&root, true);

    // Nothing outside the container changed.
    for (p, bytes) in &t.decoy {
        let now =
            fs::read(p).unwrap_or_else(|e| panic!("{}: {e}: changed from inside", p.display()));
        assert!(
            now == *bytes,
            "{} was rewritten from inside the container",
            p.display()
        );
    }
    let listed = fs::read_dir(&t.outside).expect("read_dir").count();
    assert_eq!(listed, t.decoy.len(), "files appeared next to the decoy");
    for e in fs::read_dir(scratch()).expect("scratch") {
        let n = e.expect("entry").file_name();
        assert!(
            n == "template" || n == "case" || n == "outside",
            "a file appeared outside the container: {n:?}"
        );
    }
});
