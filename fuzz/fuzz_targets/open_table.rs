//! Table files we did not write: fuzzed bytes as `x.arrow` beside a metadata file that describes
//! one of a few plausible schemas, with `bytes` equal to the file's size (so every check past the
//! size is reached). Checked through every reader of such files:
//!
//! - the spec reader `inspect::read_array_files` (verify on): a valid table or a typed error,
//!   never a panic (a panic inside arrow-ipc must be caught by the engine) or a SIGBUS;
//! - `Container::adopt`: adopts `x` exactly when the spec reader accepts it;
//! - `Container::open_table` of the adopted table: opens, and every value of every column is
//!   readable (the batches are slices of the map);
//! - `fsck` (deep, no repair) on the container, whatever it holds.
//!
//! Input layout: `[schema: u8][rows: u16 LE]` then the `.arrow` file's bytes. `schema % 4` picks
//! the metadata's columns and types; `rows` its row count.
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dafstore::arrow_array::Array;
use dafstore::{Container, FsckOptions};
use dafstore_fuzz::{clear, let_arrow_panics_unwind, no_escaping_panic, scratch, take, take_u16};
use libfuzzer_sys::fuzz_target;

/// (columns, types) of the metadata; the seeds of the corpus are files of these schemas.
const SCHEMAS: [(&[&str], &[&str]); 4] = [
    (&["v"], &["int64"]),
    (
        &["s", "d"],
        &[
            "string",
            "dictionary<values=string, indices=int32, ordered=0>",
        ],
    ),
    (
        &["l", "st"],
        &["list<item: int32>", "struct<a: int32, b: string>"],
    ),
    (
        &["t", "sv", "f"],
        &[
            "timestamp[us, tz=UTC]",
            "string_view",
            "fixed_size_binary[3]",
        ],
    ),
];

fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = scratch().join("tables");
        drop(Container::create(&root).expect("create"));
        root
    })
}

fn yaml(schema: usize, rows: usize, bytes: usize) -> String {
    let (columns, types) = SCHEMAS[schema % SCHEMAS.len()];
    let list = |items: &[&str]| -> String { items.iter().map(|i| format!("- '{i}'\n")).collect() };
    format!(
        "bytes: {bytes}\ncolumns:\n{}kind: table\nrows: {rows}\ntypes:\n{}version:\n- 1\n- 2\n",
        list(columns),
        list(types)
    )
}

fuzz_target!(|data: &[u8]| {
    let_arrow_panics_unwind();
    let root = root();
    let mut d = data;
    let schema = take(&mut d, 1).first().copied().unwrap_or(0);
    let rows = take_u16(&mut d);
    let file = d;
    for sfx in ["yaml", "arrow"] {
        let _ = fs::remove_file(root.join(format!("x.{sfx}")));
    }
    fs::write(root.join("x.arrow"), file).expect("write");
    fs::write(
        root.join("x.yaml"),
        yaml(usize::from(schema), rows, file.len()),
    )
    .expect("write");

    let spec = no_escaping_panic("read_array_files", || {
        dafstore::internals::inspect::read_array_files(root, "x", true)
    });
    let (c, report) = no_escaping_panic("adopt", || Container::adopt(root)).expect("adopt");
    let adopted = report.adopted.iter().any(|n| n == "x");
    assert_eq!(
        adopted,
        spec.is_ok(),
        "adopt and the spec reader disagree: {:?} / {:?}",
        report.refused,
        spec.as_ref().err()
    );
    drop(spec);
    if adopted {
        let t = no_escaping_panic("open_table", || c.open_table("x"))
            .unwrap_or_else(|e| panic!("an adopted table does not open: {e}"));
        assert_eq!(t.num_rows(), rows as u64);
        for b in t.batches() {
            for col in b.columns() {
                let data = col.to_data();
                for buf in data.buffers() {
                    std::hint::black_box(buf.as_slice().iter().map(|&x| u64::from(x)).sum::<u64>());
                }
            }
        }
    }
    let _ = no_escaping_panic("fsck", || {
        Container::fsck_dir(
            root,
            FsckOptions {
                deep: true,
                repair: false,
            },
            &mut |_, _| {},
        )
    });
    clear(&c);
});
