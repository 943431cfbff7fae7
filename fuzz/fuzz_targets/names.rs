//! Array names (SPEC section 3): any bytes are a valid name or a `NameError`, never a panic; a
//! valid name's files stay inside the container (only normal components, file names of at most
//! 255 bytes); the text and byte checks agree; and every entry point that takes a name (open,
//! remove, retain, the spec reader) refuses an invalid one with the name error before touching
//! anything, and answers "not found" for a valid name in an empty container.
#![no_main]

use std::path::{Component, Path};

use dafstore::{OpenError, WriteError};
use dafstore_fuzz::{container, scratch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let from_bytes = dafstore::ArrayName::from_bytes(data);
    if let Ok(name) = &from_bytes {
        let root = Path::new("/container");
        for sfx in ["yaml", "array", "data", "indices", "indptr"] {
            let p = name.file_path(root, sfx);
            assert!(p.starts_with(root), "{p:?}");
            assert!(
                p.strip_prefix(root)
                    .unwrap()
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))),
                "{p:?}"
            );
            let file = p.file_name().unwrap().len();
            assert!(file <= 255, "file name of {file} bytes: {p:?}");
        }
        assert!(name.parent_dir(root).starts_with(root));
        assert!(name.stripe() < dafstore::internals::LOCK_STRIPES);
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let from_str = dafstore::ArrayName::new(s);
    assert_eq!(from_str.is_ok(), from_bytes.is_ok(), "{s:?}");
    let valid = from_str.is_ok();

    let c = container();
    match c.open_array(s) {
        Err(OpenError::Name(_)) => assert!(!valid, "valid name {s:?} refused by open"),
        Err(OpenError::NotFound { .. }) => assert!(valid, "invalid name {s:?} looked up"),
        Err(e) => panic!("open of {s:?} in an empty container: {e}"),
        Ok(_) => panic!("open of {s:?} found an array in an empty container"),
    }
    match c.remove(s) {
        Err(WriteError::Name(_)) => assert!(!valid, "valid name {s:?} refused by remove"),
        Err(WriteError::NotFound { .. }) => assert!(valid, "invalid name {s:?} looked up"),
        Err(e) => panic!("remove of {s:?} in an empty container: {e}"),
        Ok(_) => panic!("remove of {s:?} removed something from an empty container"),
    }
    if let Err(OpenError::Name(_)) = c.retain(s) {
        assert!(!valid, "valid name {s:?} refused by retain");
    } else {
        assert!(valid, "invalid name {s:?} retained");
        let _ = c.release(s);
    }
    let class = match dafstore::internals::inspect::read_array_files(scratch(), s, false) {
        Ok(_) => "ok",
        Err(e) => e.class(),
    };
    let want = if valid { "missing" } else { "invalid_name" };
    assert_eq!(class, want, "spec reader on {s:?}");
    // Nothing was created by any of these calls.
    let entries = std::fs::read_dir(c.root()).expect("read_dir").count();
    assert_eq!(
        entries, 1,
        "files appeared in the container after calls on {s:?}"
    );
});
