//! The catalog (`.dafstore/catalog.sqlite`, SPEC 9.1): arbitrary bytes, or a mutated real catalog
//! (the corpus seeds), as the catalog of a container holding real array files; open (recovery and
//! gc run), list, read every listed array, holders, fsck (deep): errors, never a panic, and never a
//! file touched outside the container.
#![no_main]

use std::fs;
use std::path::Path;

use dafstore::{Container, FsckOptions};
use libfuzzer_sys::fuzz_target;

/// A template container with a dense `x`, a sparse `m` and a nested `g/y`, made once; each input
/// gets a fresh copy with the fuzzed catalog.
fn template() -> &'static Path {
    static T: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let root = dafstore_fuzz::scratch().join("template");
        let c = Container::create(&root).expect("create");
        c.write_dense::<f64>("x", &[2, 3], &[1., 2., 3., 4., 5., 6.])
            .expect("x");
        c.write_sparse::<f32, i32, i64>(
            "m",
            dafstore::Layout::Rows,
            [2, 3],
            &[1., 2.],
            &[0, 2],
            &[0, 1, 2],
        )
        .expect("m");
        c.write_dense::<u8>("g/y", &[3], &[1, 2, 3]).expect("g/y");
        drop(c);
        fs::remove_file(root.join(".dafstore/catalog.sqlite")).expect("rm catalog");
        root
    })
}

fuzz_target!(|data: &[u8]| {
    let template = template();
    let root = dafstore_fuzz::scratch().join("case");
    let _ = fs::remove_dir_all(&root);
    dafstore_fuzz::copy_tree(template, &root);
    fs::write(root.join(".dafstore/catalog.sqlite"), data).expect("write catalog");
    if let Ok(c) = Container::open(&root) {
        if let Ok(records) = c.info_all() {
            for r in records {
                let _ = r.meta.files();
                if let Ok(a) = c.open_array(&r.name) {
                    match a {
                        dafstore::Array::Dense(d) => {
                            std::hint::black_box(
                                d.as_bytes().iter().map(|&b| b as u64).sum::<u64>(),
                            );
                        }
                        dafstore::Array::Sparse(s) => {
                            let _ = s.validate();
                            for i in 0..s.shape()[0].min(100) {
                                let _ = s.major_range(i);
                            }
                        }
                        dafstore::Array::Table(t) => {
                            std::hint::black_box(
                                t.file_bytes().iter().map(|&b| b as u64).sum::<u64>(),
                            );
                        }
                    }
                }
            }
        }
        let _ = c.ls();
        let _ = c.holders();
        let _ = c.gc();
    }
    let opts = FsckOptions {
        deep: true,
        repair: false,
    };
    let _ = Container::fsck_dir(&root, opts, &mut |_, _| {});
    // Nothing outside the container was touched: the scratch directory holds only our trees.
    for e in fs::read_dir(dafstore_fuzz::scratch()).expect("scratch") {
        let n = e.expect("entry").file_name();
        assert!(
            n == "template" || n == "case",
            "a file appeared outside the container: {n:?}"
        );
    }
});
