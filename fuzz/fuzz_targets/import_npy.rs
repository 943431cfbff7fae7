//! Import of a `.npy` file (numpy 1.0/2.0/3.0 headers: dtype, shape, order, endianness) through
//! `Container::import` (engine/src/interop): any file content imports valid arrays or is refused
//! with an `InteropError`, never a panic or an out-of-bounds read; a header promising more data
//! than the file holds never reserves that space (the file size limit of `dafstore_fuzz` turns a
//! huge reservation into an error). Every array an import accepts must open, be valid, and come
//! back byte for byte through an export and a re-import (`dafstore_fuzz::check_import`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let c = dafstore_fuzz::container();
    let path = dafstore_fuzz::scratch().join("input.npy");
    std::fs::write(&path, data).expect("write input");
    // (`fill` is read by Feather imports only.)
    let opts = dafstore::ImportOptions {
        format: Some(dafstore::Format::Npy),
        fill: Some(0.0),
        ..Default::default()
    };
    match c.import("a", &path, opts) {
        Ok(report) => dafstore_fuzz::check_import(c, &report, false),
        Err(_) => dafstore_fuzz::clear(c),
    }
});
