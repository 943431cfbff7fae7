//! Shared set-up of the fuzz targets: scratch directories on /dev/shm (fast, never the real disk),
//! a file size limit so an input that asks for a huge array gets an error (EFBIG) instead of
//! filling memory-backed storage, and the checks several targets make of what the engine
//! accepted.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dafstore::{Array, Container, Format, ImportOptions, ImportReport};

/// Largest file any target may write (RLIMIT_FSIZE): reserving more fails with EFBIG.
pub const FILE_SIZE_LIMIT: u64 = 64 << 20;

/// A per-process scratch directory, created once under `$DAFSTORE_FUZZ_SCRATCH` (run-smoke.sh sets
/// it and removes it at the end), else `/dev/shm`, else the temporary directory. It is removed at
/// normal exit (libFuzzer ends with `exit()`, which skips static destructors: an `atexit` handler
/// does it); a crashed process leaves it behind.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        limit_file_size(FILE_SIZE_LIMIT);
        let base = match std::env::var_os("DAFSTORE_FUZZ_SCRATCH") {
            Some(dir) => PathBuf::from(dir),
            None if Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
            None => std::env::temp_dir(),
        };
        fs::create_dir_all(&base).expect("scratch base");
        let dir = tempfile::Builder::new()
            .prefix("dafstore-fuzz-")
            .tempdir_in(base)
            .expect("scratch dir")
            .keep();
        SCRATCH.set(dir.clone()).expect("scratch once");
        // SAFETY: registering a plain `extern "C" fn()` that takes no arguments.
        unsafe {
            libc::atexit(remove_scratch);
        }
        dir
    })
}

static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_scratch() {
    if let Some(dir) = SCRATCH.get() {
        let _ = fs::remove_dir_all(dir);
    }
}

/// RLIMIT_FSIZE = `bytes` with SIGXFSZ ignored: writing or reserving past it fails with EFBIG.
fn limit_file_size(bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: plain libc calls with valid arguments; SIG_IGN is a valid disposition.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
    }
}

/// A container created once per process under the scratch directory.
pub fn container() -> &'static Container {
    static C: OnceLock<Container> = OnceLock::new();
    C.get_or_init(|| Container::create(scratch().join("import")).expect("container"))
}

/// Splits `n` bytes (fewer if `d` is shorter) off the front of `d`.
pub fn take<'a>(d: &mut &'a [u8], n: usize) -> &'a [u8] {
    let n = n.min(d.len());
    let (a, b) = d.split_at(n);
    *d = b;
    a
}

/// A little-endian `u16` off the front of `d` (missing bytes are 0).
pub fn take_u16(d: &mut &[u8]) -> usize {
    let b = take(d, 2);
    usize::from(u16::from_le_bytes([
        b.first().copied().unwrap_or(0),
        b.get(1).copied().unwrap_or(0),
    ]))
}

/// Copies the tree `from` to `to` (regular files and directories; symbolic links are recreated).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        let ft = e.file_type().expect("type");
        if ft.is_dir() {
            copy_tree(&e.path(), &dst);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(e.path()).expect("readlink"), &dst)
                .expect("symlink");
        } else {
            fs::copy(e.path(), &dst).expect("copy");
        }
    }
}

/// Removes every array of `c` (a failed plain `.npz` import, or a test that left one behind, must
/// not make the next input's import collide with it).
pub fn clear(c: &Container) {
    if let Ok(names) = c.ls() {
        for n in names {
            let _ = c.remove(&n);
        }
    }
}

/// Everything an accepted array must be: it opens, a sparse array is valid and every row range is
/// in bounds, and all its bytes are readable. Returns `(kind, dtype, shape, bytes of each file)`.
pub fn read_back(c: &Container, name: &str) -> (String, String, Vec<u64>, Vec<Vec<u8>>) {
    let a = c
        .open_array(name)
        .unwrap_or_else(|e| panic!("array {name:?} was just published but does not open: {e}"));
    let files = match &a {
        Array::Dense(d) => {
            assert_eq!(
                d.as_bytes().len() as u64,
                d.len() * d.dtype().itemsize() as u64,
                "{name}: mapped size"
            );
            vec![d.as_bytes().to_vec()]
        }
        Array::Sparse(s) => {
            s.validate()
                .unwrap_or_else(|e| panic!("published sparse array {name:?} is invalid: {e}"));
            let major = s.sparse_meta().major();
            for i in 0..major.min(4096) {
                let r = s
                    .major_range(i)
                    .unwrap_or_else(|| panic!("{name}: row {i} out of bounds after validate"));
                assert!(r.end <= s.nnz() as usize);
            }
            assert!(s.major_range(major).is_none());
            vec![
                s.data_bytes().to_vec(),
                s.indices_bytes().to_vec(),
                s.indptr_bytes().to_vec(),
            ]
        }
        Array::Table(t) => {
            assert_eq!(
                t.batches().iter().map(|b| b.num_rows() as u64).sum::<u64>(),
                t.num_rows(),
                "{name}: rows"
            );
            // The values as Arrow sees them (the file's bytes may differ by padding).
            t.batches()
                .iter()
                .map(|b| format!("{b:?}").into_bytes())
                .collect()
        }
    };
    (
        a.kind().to_string(),
        format!("{:?}", a.meta()),
        a.meta().shape(),
        files,
    )
}

/// Checks every array an import created: it reads back (see [`read_back`]), and exporting it and
/// importing the export again gives the same array, byte for byte (dense through `.npy`, and also
/// Feather when `feather` is set and the array is 1-d; sparse through `.npz`). Then removes them.
pub fn check_import(c: &Container, report: &ImportReport, feather: bool) {
    for a in &report.arrays {
        let first = read_back(c, &a.name);
        let mut formats = vec![match first.0.as_str() {
            "dense" => Format::Npy,
            "table" => Format::Feather,
            _ => Format::Npz,
        }];
        if feather && first.0 == "dense" && first.2.len() == 1 {
            formats.push(Format::Feather);
        }
        for format in formats {
            let out = scratch().join(format!("export.{}", format.name()));
            let _ = fs::remove_file(&out);
            if let Err(e) = c.export(&a.name, &out, Some(format)) {
                // Only running out of the file size limit is an acceptable failure.
                let msg = e.to_string();
                assert!(
                    msg.contains("too large") || msg.contains("File too large"),
                    "export of an imported array {:?} as {format} failed: {e}",
                    a.name
                );
                continue;
            }
            let opts = ImportOptions {
                format: Some(format),
                ..Default::default()
            };
            let again = c.import("roundtrip", &out, opts).unwrap_or_else(|e| {
                panic!(
                    "re-import of the {format} export of {:?} failed: {e}",
                    a.name
                )
            });
            assert_eq!(again.arrays.len(), 1, "re-import of {:?}", a.name);
            let second = read_back(c, &again.arrays[0].name);
            assert_eq!(
                first, second,
                "{:?} changed through a {format} export and re-import",
                a.name
            );
            let _ = c.remove("roundtrip");
        }
    }
    clear(c);
}

thread_local! {
    static CAUGHT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The engine reads Feather files with arrow-ipc and, by design, catches a panic inside arrow-ipc
/// (engine/src/interop/feather.rs) and returns a "malformed file" error. libFuzzer's panic hook
/// aborts at the panic itself, before any `catch_unwind`, so without this every such input would
/// be reported as a crash. This hook lets panics raised in the `arrow-*` crates unwind (silently,
/// remembering the message); every other panic aborts as before. A panic that escapes the engine
/// is caught by [`no_escaping_panic`] and reported with the remembered message.
pub fn let_arrow_panics_unwind() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_arrow = info
                .location()
                .is_some_and(|l| l.file().contains("/arrow-"));
            if in_arrow {
                let msg = format!("{info}");
                CAUGHT.with(|c| *c.borrow_mut() = Some(msg));
            } else {
                fuzzer_hook(info);
            }
        }));
    });
}

/// Runs `f`; a panic that unwinds out of it (only possible for the arrow panics let through by
/// [`let_arrow_panics_unwind`]) is a finding: the engine did not catch it.
pub fn no_escaping_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    CAUGHT.with(|c| c.borrow_mut().take());
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            let msg = CAUGHT.with(|c| c.borrow_mut().take()).unwrap_or_default();
            panic!("a panic escaped {what}: {msg}");
        }
    }
}
