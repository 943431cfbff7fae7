//! Array files we did not write (SPEC 5–6, [N7]): a fuzzed metadata file and fuzzed data files
//! (`.array`, `.data`, `.indices`, `.indptr`), one of which may be missing, a directory, or a
//! symbolic link to a file outside the container. Checked through every reader of such files:
//!
//! - the spec reader `inspect::read_array_files` (verify on): a valid array or a typed error,
//!   never a panic, a SIGBUS or an out-of-bounds read; a valid array's bytes are all readable;
//! - `Container::adopt`: adopts `x` exactly when the spec reader accepts it;
//! - `Container::open_array` of the adopted array: opens, a sparse array validates and every row
//!   range is in bounds, the bytes are the spec reader's;
//! - the same file replaced outside dafstore (a new inode with other fuzzed bytes): open is a
//!   `SizeMismatch` or the new bytes, and `fsck --deep` reports the damage when the bytes differ;
//! - `fsck` (deep, no repair) on the container, whatever it holds.
//!
//! Input layout: `[flags][yaml length: u16 LE][yaml][lengths of .array, .indices, .indptr: u16 LE
//! × 3]` then those bytes (`.array` is also written as `.data`; the rest of the input goes to
//! `.indptr`). `flags & 3` picks a data file (array, data, indices, indptr) that `flags >> 2 & 3`
//! makes: 0 as written, 1 a symbolic link to a copy outside the container, 2 a directory,
//! 3 absent. The replacement bytes are the `.indices` bytes.
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dafstore::{Container, FsckOptions, OpenError};
use dafstore_fuzz::{clear, read_back, scratch, take, take_u16};
use libfuzzer_sys::fuzz_target;

const SUFFIXES: [&str; 4] = ["array", "data", "indices", "indptr"];

fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = scratch().join("files");
        drop(Container::create(&root).expect("create"));
        fs::create_dir_all(scratch().join("outside")).expect("mkdir");
        root
    })
}

fn remove_any(p: &Path) {
    if fs::remove_file(p).is_err() {
        let _ = fs::remove_dir_all(p);
    }
}

fn fsck_deep(root: &Path) -> Option<dafstore::FsckReport> {
    let opts = FsckOptions {
        deep: true,
        repair: false,
    };
    Container::fsck_dir(root, opts, &mut |_, _| {}).ok()
}

fuzz_target!(|data: &[u8]| {
    let root = root();
    let mut d = data;
    let flags = take(&mut d, 1).first().copied().unwrap_or(0);
    let yaml_len = take_u16(&mut d);
    let yaml = take(&mut d, yaml_len);
    let lens = [take_u16(&mut d), take_u16(&mut d), take_u16(&mut d)];
    let array = take(&mut d, lens[0]);
    let indices = take(&mut d, lens[1]);
    let mut indptr = take(&mut d, lens[2]).to_vec();
    indptr.extend_from_slice(d);

    // Start from an empty container with only our files for `x`.
    for sfx in ["yaml", "array", "data", "indices", "indptr"] {
        remove_any(&root.join(format!("x.{sfx}")));
    }
    fs::write(root.join("x.yaml"), yaml).expect("write");
    for (sfx, bytes) in SUFFIXES.iter().zip([array, array, indices, &indptr[..]]) {
        fs::write(root.join(format!("x.{sfx}")), bytes).expect("write");
    }
    let victim = root.join(format!("x.{}", SUFFIXES[usize::from(flags & 3)]));
    match (flags >> 2) & 3 {
        1 => {
            let outside = scratch().join("outside").join("target");
            fs::rename(&victim, &outside).expect("move outside");
            std::os::unix::fs::symlink(&outside, &victim).expect("symlink");
        }
        2 => {
            fs::remove_file(&victim).expect("rm");
            fs::create_dir(&victim).expect("mkdir");
        }
        3 => fs::remove_file(&victim).expect("rm"),
        _ => {}
    }

    let spec = dafstore::internals::inspect::read_array_files(root, "x", true);
    if let Ok(files) = &spec {
        for i in 0..files.meta.files().len() {
            std::hint::black_box(files.bytes(i).iter().map(|&b| u64::from(b)).sum::<u64>());
        }
    }

    let (c, report) = Container::adopt(root).expect("adopt of the fuzz container");
    let adopted = report.adopted.iter().any(|n| n == "x");
    assert_eq!(
        adopted,
        spec.is_ok(),
        "adopt and the spec reader disagree: {:?} / {:?}",
        report.refused,
        spec.as_ref().err()
    );
    if let Ok(files) = spec {
        let (_, _, _, bytes) = read_back(&c, "x");
        for (i, b) in bytes.iter().enumerate() {
            assert!(
                b[..] == *files.bytes(i),
                "open_array and the spec reader read other bytes"
            );
        }
        drop(files);
        // Replace the first data file outside dafstore: a new inode holding other bytes.
        let (suffix, expected) =
            match dafstore::internals::inspect::read_array_files(root, "x", false) {
                Ok(f) => f.meta.files()[0],
                Err(e) => panic!("adopted array no longer reads: {e}"),
            };
        let path = root.join(format!("x.{suffix}"));
        let before = fs::read(&path).expect("read");
        let tmp = root.join("replacement.tmp");
        fs::write(&tmp, indices).expect("write");
        fs::rename(&tmp, &path).expect("rename");
        match c.open_array("x") {
            Ok(_) => assert_eq!(
                indices.len() as u64,
                expected,
                "opened a file of the wrong size"
            ),
            Err(OpenError::SizeMismatch { actual, .. }) => {
                assert_eq!(actual, indices.len() as u64);
                assert_ne!(actual, expected);
            }
            Err(e) => panic!("open of a replaced file: {e}"),
        }
        if before != indices {
            let found = fsck_deep(root)
                .is_some_and(|r| r.problems.iter().any(|p| p.name.as_deref() == Some("x")));
            assert!(found, "fsck --deep missed a replaced {suffix} file");
        }
    }
    let _ = fsck_deep(root);
    clear(&c);
});
