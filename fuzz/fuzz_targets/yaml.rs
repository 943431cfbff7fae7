//! Array metadata files (`<name>.yaml`, SPEC 5.1): any bytes parse to a valid description or a
//! typed `MetaError`, never a panic (malformed YAML, alias bombs, duplicate keys, huge or negative
//! sizes, unknown dtypes); what parses has file sizes that are exactly what its shape implies
//! ([D2], [S3]; recomputed here in 128 bits), and renders back to YAML (with its recorded
//! checksums) that parses to the same metadata and checksums.
#![no_main]

use std::path::Path;

use dafstore::ArrayMeta;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.yaml");
    let Ok(doc) = dafstore::internals::meta::parse_yaml(data, path) else {
        return;
    };
    // Sizes were checked with overflow checks ([D2], [S3]): each file's length is exactly what
    // the shape implies, computed here without overflow, and fits 64 bits.
    let files = doc.meta.files();
    let product = |dims: &[u64]| {
        dims.iter()
            .try_fold(1u128, |a, &d| a.checked_mul(u128::from(d)))
    };
    let want: Vec<Option<u128>> = match &doc.meta {
        ArrayMeta::Dense(d) => {
            vec![product(&d.shape).and_then(|n| n.checked_mul(d.dtype.itemsize() as u128))]
        }
        ArrayMeta::Sparse(s) => vec![
            Some(u128::from(s.nnz) * s.data_dtype.itemsize() as u128),
            Some(u128::from(s.nnz) * s.indices_dtype.itemsize() as u128),
            Some((u128::from(s.major()) + 1) * s.indptr_dtype.itemsize() as u128),
        ],
        ArrayMeta::Table(t) => vec![Some(u128::from(t.bytes))],
    };
    for ((suffix, len), want) in files.iter().zip(&want) {
        assert_eq!(
            Some(u128::from(*len)),
            *want,
            "size of .{suffix} in {:?}",
            doc.meta
        );
    }
    // The checksums of the array's own files survive a render and a parse (others are ignored by
    // the engine, which never writes them).
    let crcs: Vec<(String, u32)> = doc
        .crc32c
        .iter()
        .filter(|(k, _)| files.iter().any(|(s, _)| s == k))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    for with_crc in [false, true] {
        let text = dafstore::internals::meta::render_yaml(&doc.meta, with_crc.then_some(&crcs[..]));
        let again = dafstore::internals::meta::parse_yaml(text.as_bytes(), path)
            .unwrap_or_else(|e| panic!("rendered metadata does not parse: {e}\n{text}"));
        assert_eq!(
            again.meta, doc.meta,
            "round trip changed the metadata:\n{text}"
        );
        let want: std::collections::BTreeMap<String, u32> = if with_crc {
            crcs.iter().cloned().collect()
        } else {
            Default::default()
        };
        assert_eq!(
            again.crc32c, want,
            "round trip changed the checksums:\n{text}"
        );
    }
});
