//! Import of a Feather v2 / Arrow IPC file (schema, record batches, LZ4/ZSTD buffers, nulls) through
//! `Container::import` (engine/src/interop): any file content imports valid arrays or is refused
//! with an `InteropError`, never a panic or an out-of-bounds read; a header promising more data
//! than the file holds never reserves that space (the file size limit of `dafstore_fuzz` turns a
//! huge reservation into an error). Every array an import accepts must open, be valid, and come
//! back byte for byte through an export and a re-import (`dafstore_fuzz::check_import`).
//!
//! Panics inside arrow-ipc are caught by the engine by design and returned as errors; this target
//! lets them unwind to the engine (`dafstore_fuzz::let_arrow_panics_unwind`) and fails if one
//! escapes it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    dafstore_fuzz::let_arrow_panics_unwind();
    let c = dafstore_fuzz::container();
    let path = dafstore_fuzz::scratch().join("input.feather");
    std::fs::write(&path, data).expect("write input");
    // A fill value, so columns with nulls get past the null check into the conversion.
    let opts = dafstore::ImportOptions {
        format: Some(dafstore::Format::Feather),
        fill: Some(0.0),
        ..Default::default()
    };
    match dafstore_fuzz::no_escaping_panic("the import", || c.import("a", &path, opts)) {
        Ok(report) => dafstore_fuzz::no_escaping_panic("the checks of an imported array", || {
            dafstore_fuzz::check_import(c, &report, true)
        }),
        Err(_) => dafstore_fuzz::clear(c),
    }
});
