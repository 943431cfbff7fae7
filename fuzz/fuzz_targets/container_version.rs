//! The container version file (`.dafstore/container.yaml`, SPEC [C2]): any content opens the
//! container (read-write, read-only, for fsck) or is refused with a typed error about that file
//! (`ContainerError::Meta`, or `ContainerError::Io` when it is not UTF-8 text); never a panic.
#![no_main]

use dafstore::{Container, ContainerError, FsckOptions};
use libfuzzer_sys::fuzz_target;

fn check(r: Result<Container, ContainerError>, data: &[u8]) {
    match r {
        Ok(c) => drop(c),
        Err(ContainerError::Meta(_)) => {}
        Err(ContainerError::Io(dafstore::IoError { op, .. }))
            if op == "read the container version file" =>
        {
            assert!(
                std::str::from_utf8(data).is_err() || data.len() as u64 > 64 * 1024,
                "an I/O error reading a version file of UTF-8 text"
            );
        }
        Err(e) => panic!("unexpected error for a bad version file: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let root = dafstore_fuzz::scratch().join("version");
    if !root.exists() {
        drop(Container::create(&root).expect("create"));
    }
    std::fs::write(root.join(".dafstore/container.yaml"), data).expect("write");
    check(Container::open(&root), data);
    check(Container::options().read_only(true).open(&root), data);
    let opts = FsckOptions {
        deep: false,
        repair: false,
    };
    let _ = Container::fsck_dir(&root, opts, &mut |_, _| {});
});
