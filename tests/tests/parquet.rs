//! Parquet: a table of every column type a table stores goes out as Parquet and comes back with the
//! same schema and values; a file of several row groups imports as one table, streamed, with the
//! dictionaries of its row groups unified into one; dense arrays export as one column; and every
//! damaged file (truncated, random bytes, a byte flipped anywhere in the footer, sizes claimed past
//! the end) is a typed error naming the path, with nothing published and nothing left in staging.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use dafstore::arrow_array::builder::{
    Int32Builder, ListBuilder, StringBuilder, StringDictionaryBuilder,
};
use dafstore::arrow_array::cast::AsArray;
use dafstore::arrow_array::types::{Int32Type, Int64Type, UInt32Type};
use dafstore::arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Date64Array, Decimal128Array,
    DictionaryArray, DurationMicrosecondArray, FixedSizeBinaryArray, Float16Array, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, Int8Array, LargeBinaryArray,
    LargeStringArray, RecordBatch, StringArray, StringViewArray, StructArray,
    Time64MicrosecondArray, TimestampMicrosecondArray, TimestampNanosecondArray, UInt16Array,
    UInt32Array, UInt64Array, UInt8Array,
};
use dafstore::arrow_schema::{DataType, Field, Schema};
use dafstore::{Container, Format, ImportOptions, InteropError};
use dafstore_tests::{new_container, staging_files};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

/// A batch with a column of every kind a table stores, most with nulls.
fn every_type(rows: usize) -> RecordBatch {
    let n = rows;
    let opt = |i: usize| i % 7 != 3;
    let mut dict = StringDictionaryBuilder::<Int32Type>::new();
    let mut list = ListBuilder::new(Int32Builder::new());
    for i in 0..n {
        if opt(i) {
            dict.append_value(["red", "green", "blue"][i % 3]);
        } else {
            dict.append_null();
        }
        if i % 5 == 4 {
            list.append_null();
        } else {
            for k in 0..(i % 4) {
                list.values().append_value((i * 10 + k) as i32);
            }
            list.append(true);
        }
    }
    let strings: Vec<Option<String>> = (0..n).map(|i| opt(i).then(|| format!("s{i}é"))).collect();
    let structs = StructArray::from(vec![
        (
            Arc::new(Field::new("a", DataType::Int64, true)),
            Arc::new(Int64Array::from_iter(
                (0..n).map(|i| opt(i).then_some(i as i64)),
            )) as ArrayRef,
        ),
        (
            Arc::new(Field::new("b", DataType::Utf8, true)),
            Arc::new(StringArray::from_iter(strings.iter().map(|s| s.as_deref()))) as ArrayRef,
        ),
    ]);
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "i8",
            Arc::new(Int8Array::from_iter(
                (0..n).map(|i| opt(i).then_some((i % 128) as i8 - 64)),
            )),
        ),
        (
            "i16",
            Arc::new(Int16Array::from_iter_values(
                (0..n).map(|i| (i as i16).wrapping_mul(-3)),
            )),
        ),
        (
            "i32",
            Arc::new(Int32Array::from_iter(
                (0..n).map(|i| opt(i).then_some(i as i32 * 1000)),
            )),
        ),
        (
            "i64",
            Arc::new(Int64Array::from_iter_values(
                (0..n).map(|i| (i as i64).wrapping_mul(i64::from(i32::MAX))),
            )),
        ),
        (
            "u8",
            Arc::new(UInt8Array::from_iter_values((0..n).map(|i| i as u8))),
        ),
        (
            "u16",
            Arc::new(UInt16Array::from_iter(
                (0..n).map(|i| opt(i).then_some(u16::MAX.wrapping_sub(i as u16))),
            )),
        ),
        (
            "u32",
            Arc::new(UInt32Array::from_iter_values(
                (0..n).map(|i| u32::MAX.wrapping_sub(i as u32)),
            )),
        ),
        (
            "u64",
            Arc::new(UInt64Array::from_iter_values(
                (0..n).map(|i| u64::MAX.wrapping_sub(i as u64)),
            )),
        ),
        (
            "f16",
            Arc::new(Float16Array::from_iter_values(
                (0..n).map(|i| half::f16::from_f32(i as f32 * 0.5)),
            )),
        ),
        (
            "f32",
            Arc::new(Float32Array::from_iter(
                (0..n).map(|i| opt(i).then_some(i as f32 / 3.0)),
            )),
        ),
        (
            "f64",
            Arc::new(Float64Array::from_iter_values((0..n).map(|i| {
                if i == 1 {
                    f64::NAN
                } else {
                    i as f64 * -1.25
                }
            }))),
        ),
        (
            "bool",
            Arc::new(BooleanArray::from_iter(
                (0..n).map(|i| opt(i).then_some(i % 2 == 0)),
            )),
        ),
        (
            "string",
            Arc::new(StringArray::from_iter(strings.iter().map(|s| s.as_deref()))) as ArrayRef,
        ),
        (
            "large_string",
            Arc::new(LargeStringArray::from_iter(
                strings.iter().map(|s| s.as_deref()),
            )),
        ),
        (
            "string_view",
            Arc::new(StringViewArray::from_iter(
                strings.iter().map(|s| s.as_deref()),
            )),
        ),
        (
            "binary",
            Arc::new(BinaryArray::from_iter(
                (0..n).map(|i| opt(i).then(|| vec![i as u8; i % 9])),
            )),
        ),
        (
            "large_binary",
            Arc::new(LargeBinaryArray::from_iter_values(
                (0..n).map(|i| vec![0u8, i as u8]),
            )),
        ),
        (
            "fixed_binary",
            Arc::new(
                FixedSizeBinaryArray::try_from_iter((0..n).map(|i| (i as u32).to_le_bytes()))
                    .unwrap(),
            ),
        ),
        (
            "ts_naive",
            Arc::new(TimestampMicrosecondArray::from_iter(
                (0..n).map(|i| opt(i).then_some(1_700_000_000_000_000 + i as i64)),
            )),
        ),
        (
            "ts_tz",
            Arc::new(
                TimestampNanosecondArray::from_iter_values(
                    (0..n).map(|i| 1_700_000_000_000_000_123 + i as i64),
                )
                .with_timezone("Europe/Paris"),
            ),
        ),
        (
            "ts_utc",
            Arc::new(
                TimestampMicrosecondArray::from_iter_values((0..n).map(|i| i as i64))
                    .with_timezone("UTC"),
            ),
        ),
        (
            "date32",
            Arc::new(Date32Array::from_iter(
                (0..n).map(|i| opt(i).then_some(19_000 + i as i32)),
            )),
        ),
        (
            "date64",
            Arc::new(Date64Array::from_iter_values(
                (0..n).map(|i| (19_000 + i as i64) * 86_400_000),
            )),
        ),
        (
            "time64",
            Arc::new(Time64MicrosecondArray::from_iter_values(
                (0..n).map(|i| i as i64 * 1_000_001),
            )),
        ),
        (
            "duration",
            Arc::new(DurationMicrosecondArray::from_iter_values(
                (0..n).map(|i| i as i64 - 5),
            )),
        ),
        (
            "decimal",
            Arc::new(
                Decimal128Array::from_iter(
                    (0..n).map(|i| opt(i).then_some(i as i128 * 12_345 - 99)),
                )
                .with_precision_and_scale(20, 3)
                .unwrap(),
            ),
        ),
        ("category", Arc::new(dict.finish())),
        ("list", Arc::new(list.finish())),
        ("struct", Arc::new(structs)),
    ];
    RecordBatch::try_from_iter(columns).expect("a batch")
}

/// The only batch of table `name`.
fn one_batch(c: &Container, name: &str) -> RecordBatch {
    let t = c.open_table(name).expect("a table");
    assert_eq!(t.batches().len(), 1, "one batch");
    t.batches()[0].clone()
}

/// Writes `batches` as Parquet with arrow-rs's writer, `rows_per_group` rows per row group.
fn write_parquet(path: &Path, batches: &[RecordBatch], rows_per_group: usize) {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows_per_group))
        .build();
    let file = fs::File::create(path).expect("create");
    let mut w = ArrowWriter::try_new(file, batches[0].schema(), Some(props)).expect("writer");
    for b in batches {
        w.write(b).expect("write");
    }
    w.close().expect("close");
}

fn assert_nothing_published(c: &Container, root: &Path) {
    assert!(c.ls().unwrap().is_empty(), "nothing published");
    assert!(staging_files(root).is_empty(), "staging is empty");
}

#[test]
fn a_table_of_every_column_type_round_trips_through_parquet_export_and_import() {
    let (t, c) = new_container();
    let batch = every_type(500);
    c.write_table("frame", batch.schema(), std::slice::from_ref(&batch))
        .expect("write");
    let file = t.path().join("frame.parquet");
    c.export("frame", &file, None).expect("export");

    // Another reader sees the schema and values of the table.
    let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&file).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let read: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].schema().fields(), batch.schema().fields());
    assert_eq!(read[0].columns(), batch.columns());

    let mut calls = Vec::new();
    let mut progress = |done, total| calls.push((done, total));
    let report = c
        .import(
            "back",
            &file,
            ImportOptions {
                progress: Some(&mut progress),
                ..Default::default()
            },
        )
        .expect("import");
    assert_eq!(report.format, Format::Parquet);
    let size = fs::metadata(&file).unwrap().len();
    assert_eq!(report.bytes_read, size);
    assert_eq!(calls.last(), Some(&(size, size)));
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0), "{calls:?}");
    assert_eq!(report.arrays.len(), 1);
    assert_eq!(report.arrays[0].meta.kind(), dafstore::Kind::Table);
    let back = one_batch(&c, "back");
    assert_eq!(back.schema().fields(), batch.schema().fields());
    for (i, f) in batch.schema().fields().iter().enumerate() {
        assert_eq!(back.column(i), batch.column(i), "column {}", f.name());
    }
}

/// A column whose values change from row group to row group, so each has its own dictionary.
fn categorical_batches(batches: usize, rows: usize) -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new_dictionary("cat", DataType::UInt32, DataType::LargeUtf8, true),
        Field::new("tags", DataType::new_list(DataType::Utf8, true), true),
    ]));
    (0..batches)
        .map(|b| {
            let start = b * rows;
            let ids = Int64Array::from_iter_values((start..start + rows).map(|i| i as i64));
            let keys =
                UInt32Array::from_iter((0..rows).map(|i| (i % 11 != 0).then_some((i % 3) as u32)));
            let values = dafstore::arrow_array::LargeStringArray::from(vec![
                format!("v{b}"),
                format!("v{}", b + 1),
                "common".to_string(),
            ]);
            let cat = DictionaryArray::<UInt32Type>::try_new(keys, Arc::new(values)).unwrap();
            let mut tags = ListBuilder::new(StringBuilder::new());
            for i in 0..rows {
                tags.values().append_value(format!("t{}", i % 4));
                tags.append(true);
            }
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(ids), Arc::new(cat), Arc::new(tags.finish())],
            )
            .unwrap()
        })
        .collect()
}

/// The values of a dictionary column, decoded (`None` for nulls).
fn decoded(col: &ArrayRef) -> Vec<Option<String>> {
    let d = col.as_dictionary::<UInt32Type>();
    let values = d.values().as_string::<i64>();
    d.keys()
        .iter()
        .map(|k| k.map(|k| values.value(k as usize).to_string()))
        .collect()
}

#[test]
fn a_file_of_many_row_groups_imports_as_one_table_with_its_dictionaries_unified() {
    let (t, c) = new_container();
    // 4 × 50,000 rows in row groups of 30,000: row groups and record batches (64k rows) do not
    // line up, and every row group's dictionary differs.
    let batches = categorical_batches(4, 50_000);
    let file = t.path().join("big.pq");
    write_parquet(&file, &batches, 30_000);
    let meta = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&file).unwrap())
        .unwrap()
        .metadata()
        .clone();
    assert_eq!(meta.num_row_groups(), 7);

    let report = c
        .import("big", &file, ImportOptions::default())
        .expect("import");
    let conversions = &report.arrays[0].conversions;
    assert!(
        conversions
            .iter()
            .any(|s| s.contains("\"cat\"") && s.contains("unified")),
        "{conversions:?}"
    );
    let table = c.open_table("big").expect("table");
    assert_eq!(table.num_rows(), 200_000);
    assert!(table.batches().len() >= 4, "streamed in batches");
    assert!(table.batches().iter().all(|b| b.num_rows() <= 64 * 1024));
    assert_eq!(table.schema().fields(), batches[0].schema().fields());
    // One dictionary for the whole column: the union of the row groups' values, each once.
    let first = table.batches()[0]
        .column(1)
        .as_dictionary::<UInt32Type>()
        .values()
        .clone();
    let mut union: Vec<&str> = first.as_string::<i64>().iter().flatten().collect();
    for b in table.batches() {
        let d = b.column(1).as_dictionary::<UInt32Type>();
        assert!(Arc::ptr_eq(d.values(), &first) || d.values() == &first);
    }
    assert_eq!(union.len(), 6, "{union:?}"); // v0..v4 and common
    union.sort_unstable();
    union.dedup();
    assert_eq!(union.len(), 6);
    // Every value as written.
    let mut want_ids = Vec::new();
    let mut want_cat = Vec::new();
    let mut want_tags = Vec::new();
    for b in &batches {
        want_ids.extend(
            b.column(0)
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .copied(),
        );
        want_cat.extend(decoded(b.column(1)));
        want_tags.extend(
            b.column(2)
                .as_list::<i32>()
                .iter()
                .map(|l| format!("{l:?}")),
        );
    }
    let (mut ids, mut cat, mut tags) = (Vec::new(), Vec::new(), Vec::new());
    for b in table.batches() {
        ids.extend(
            b.column(0)
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .copied(),
        );
        cat.extend(decoded(b.column(1)));
        tags.extend(
            b.column(2)
                .as_list::<i32>()
                .iter()
                .map(|l| format!("{l:?}")),
        );
    }
    assert_eq!(ids, want_ids);
    assert_eq!(cat, want_cat);
    assert_eq!(tags, want_tags);

    // And it goes out again as one dictionary per row group that pyarrow and polars read.
    let out = t.path().join("again.parquet");
    c.export("big", &out, None).expect("export");
    c.import("again", &out, ImportOptions::default())
        .expect("import");
    let again = c.open_table("again").unwrap();
    assert_eq!(again.num_rows(), 200_000);
    let cat2: Vec<_> = again
        .batches()
        .iter()
        .flat_map(|b| decoded(b.column(1)))
        .collect();
    assert_eq!(cat2, want_cat);
}

#[test]
fn a_dense_array_exports_as_one_parquet_column_and_a_sparse_array_is_refused() {
    let (t, c) = new_container();
    c.write_dense::<f32>(
        "cells/x",
        &[4, 3],
        &(0..12).map(|i| i as f32).collect::<Vec<_>>(),
    )
    .unwrap();
    c.write_dense::<i64>("y", &[5], &[1, 2, 3, 4, 5]).unwrap();
    let file = t.path().join("y.parquet");
    c.export("y", &file, None).expect("export");
    let mut r = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&file).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let b = r.next().unwrap().unwrap();
    assert_eq!(b.schema().field(0).name(), "y");
    assert_eq!(
        b.column(0).as_primitive::<Int64Type>().values().as_ref(),
        &[1, 2, 3, 4, 5]
    );
    let file = t.path().join("x.parquet");
    c.export("cells/x", &file, None).expect("export 2-d");
    let mut r = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&file).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let b = r.next().unwrap().unwrap();
    assert_eq!(b.num_rows(), 4);
    assert_eq!(b.column(0).as_fixed_size_list().value_length(), 3);

    c.write_sparse::<f64, i32, i64>(
        "m",
        dafstore::Layout::Rows,
        [2, 2],
        &[1.0],
        &[1],
        &[0, 1, 1],
    )
    .unwrap();
    let e = c
        .export("m", t.path().join("m.parquet"), None)
        .expect_err("sparse");
    assert!(
        matches!(
            e,
            InteropError::CannotExport {
                format: Format::Parquet,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains(".npz"), "{e}");
    assert!(!t.path().join("m.parquet").exists());
}

/// Imports `bytes` as `<dir>/<file>`: the error, after checking it names the path and that nothing
/// was published or left in staging.
fn import_bad(c: &Container, dir: &Path, file: &str, bytes: &[u8]) -> InteropError {
    let path = dir.join(file);
    fs::write(&path, bytes).unwrap();
    let e = c
        .import("bad", &path, ImportOptions::default())
        .expect_err(file);
    assert!(
        e.to_string().contains(path.to_str().unwrap()),
        "{file}: the error names the path: {e}"
    );
    assert!(
        matches!(
            e,
            InteropError::Malformed {
                format: Format::Parquet,
                ..
            } | InteropError::Parquet { .. }
        ),
        "{file}: {e:?}"
    );
    assert_nothing_published(c, c.root());
    e
}

fn valid_file(dir: &Path) -> Vec<u8> {
    let path = dir.join("valid.parquet");
    write_parquet(&path, &categorical_batches(2, 300), 200);
    fs::read(&path).unwrap()
}

#[test]
fn truncated_parquet_files_are_typed_errors_naming_the_path() {
    let (t, c) = new_container();
    let good = valid_file(t.path());
    for len in [
        0,
        3,
        4,
        11,
        12,
        good.len() / 2,
        good.len() - 9,
        good.len() - 4,
        good.len() - 1,
    ] {
        import_bad(&c, t.path(), &format!("cut{len}.parquet"), &good[..len]);
    }
    // The head cut off instead.
    import_bad(&c, t.path(), "headless.parquet", &good[4..]);
    // Data cut from the middle, the footer intact: its offsets point past the end.
    let mut hole = good[..100].to_vec();
    hole.extend_from_slice(&good[good.len() / 2..]);
    import_bad(&c, t.path(), "hole.parquet", &hole);
}

#[test]
fn random_bytes_and_other_formats_named_parquet_are_typed_errors() {
    let (t, c) = new_container();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    import_bad(&c, t.path(), "random.parquet", &random);
    // Random bytes between the two magics.
    let mut framed = b"PAR1".to_vec();
    framed.extend_from_slice(&random);
    framed.extend_from_slice(&100u32.to_le_bytes());
    framed.extend_from_slice(b"PAR1");
    import_bad(&c, t.path(), "framed.parquet", &framed);
    // An encrypted footer.
    let mut enc = framed.clone();
    let n = enc.len();
    enc[n - 4..].copy_from_slice(b"PARE");
    let e = import_bad(&c, t.path(), "encrypted.parquet", &enc);
    assert!(e.to_string().contains("encrypted"), "{e}");
    // A Feather file.
    let feather = fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/interop/feather/mixed.feather"),
    )
    .unwrap();
    import_bad(&c, t.path(), "feather.parquet", &feather);
}

#[test]
fn a_footer_claiming_huge_sizes_is_refused_before_allocating() {
    let (t, c) = new_container();
    let good = valid_file(t.path());
    let n = good.len();
    // The metadata length: past the file, and the largest u32.
    for claim in [n as u32, u32::MAX, (n - 12) as u32 + 1] {
        let mut bad = good.clone();
        bad[n - 8..n - 4].copy_from_slice(&claim.to_le_bytes());
        let e = import_bad(&c, t.path(), &format!("footer{claim}.parquet"), &bad);
        assert!(e.to_string().contains("footer"), "{e}");
    }
    // A Thrift list in the metadata claiming 2^31 - 1 elements: the schema list is the second
    // field of FileMetaData (after the version, an i32): find its header (type 0xc = struct).
    let meta_len = u32::from_le_bytes(good[n - 8..n - 4].try_into().unwrap()) as usize;
    let meta_start = n - 8 - meta_len;
    let mut bad = good.clone();
    let at = (meta_start..n - 8)
        .find(|&i| good[i] == 0x19 && good[i + 1] & 0x0f == 0x0c)
        .expect("the schema list header");
    // A long-form list header: size 15 (0xf_) means the size follows as a varint.
    let mut patched = bad[..at + 1].to_vec();
    patched.push(0xfc);
    patched.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]);
    patched.extend_from_slice(&bad[at + 2..n - 8]);
    let new_len = (patched.len() - meta_start) as u32;
    patched.extend_from_slice(&new_len.to_le_bytes());
    patched.extend_from_slice(b"PAR1");
    bad = patched;
    import_bad(&c, t.path(), "billion_columns.parquet", &bad);
}

#[test]
fn every_single_byte_flip_in_the_footer_is_an_import_or_a_typed_error_never_a_panic() {
    let (t, c) = new_container();
    let good = valid_file(t.path());
    let n = good.len();
    let meta_len = u32::from_le_bytes(good[n - 8..n - 4].try_into().unwrap()) as usize;
    let path = t.path().join("flipped.parquet");
    let (mut ok, mut refused) = (0, 0);
    for i in (n - 8 - meta_len)..n {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[i] ^= flip;
            fs::write(&path, &bad).unwrap();
            match c.import("flipped", &path, ImportOptions::default()) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(
                        e.to_string().contains(path.to_str().unwrap()),
                        "byte {i} ^ {flip:#x}: {e}"
                    );
                    refused += 1;
                }
            }
            assert!(staging_files(c.root()).is_empty(), "byte {i}: staging");
        }
    }
    assert!(
        refused > 0 && ok + refused == 3 * (meta_len + 8),
        "{ok} {refused}"
    );
}

#[test]
fn a_column_type_a_table_cannot_store_is_refused_naming_the_column() {
    let (t, c) = new_container();
    // A month-day-nano interval (parquet writes it as INTERVAL, read back as an interval).
    let schema = Arc::new(Schema::new(vec![
        Field::new("ok", DataType::Int32, false),
        Field::new(
            "span",
            DataType::Interval(dafstore::arrow_schema::IntervalUnit::YearMonth),
            false,
        ),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int32Array::from(vec![1, 2])),
            Arc::new(dafstore::arrow_array::IntervalYearMonthArray::from(vec![
                3, 4,
            ])),
        ],
    )
    .unwrap();
    let file = t.path().join("interval.parquet");
    write_parquet(&file, &[batch], 10);
    let e = c
        .import("t", &file, ImportOptions::default())
        .expect_err("an interval column");
    match &e {
        InteropError::UnsupportedColumn { column, .. } => assert_eq!(column, "span"),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains(file.to_str().unwrap()), "{e}");
    assert_nothing_published(&c, c.root());
}

#[test]
fn column_and_fill_are_refused_for_parquet_which_always_imports_the_whole_table() {
    let (t, c) = new_container();
    let file = t.path().join("v.parquet");
    fs::write(&file, valid_file(t.path())).unwrap();
    for opts in [
        ImportOptions {
            column: Some("id".into()),
            ..Default::default()
        },
        ImportOptions {
            fill: Some(0.0),
            ..Default::default()
        },
    ] {
        let e = c
            .import("v", &file, opts)
            .expect_err("an option Parquet does not take");
        assert!(
            matches!(
                e,
                InteropError::OptionNotApplicable {
                    format: Format::Parquet,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains(file.to_str().unwrap()), "{e}");
    }
    assert_nothing_published(&c, c.root());
}

#[test]
fn a_failed_import_leaves_the_previous_table_of_that_name_untouched() {
    let (t, c) = new_container();
    let batch = every_type(10);
    c.write_table("t", batch.schema(), std::slice::from_ref(&batch))
        .unwrap();
    let good = valid_file(t.path());
    let path = t.path().join("half.parquet");
    fs::write(&path, &good[..good.len() - 1]).unwrap();
    c.import("t", &path, ImportOptions::default())
        .expect_err("truncated");
    assert_eq!(one_batch(&c, "t"), batch);
    assert!(staging_files(c.root()).is_empty());
    // Replaced by a good import.
    let file = t.path().join("good.parquet");
    fs::write(&file, &good).unwrap();
    c.import("t", &file, ImportOptions::default()).unwrap();
    assert_eq!(c.open_table("t").unwrap().num_rows(), 600);
}

/// The values of a column as JSON, as pyarrow's `to_pylist` gives them (timestamps as their
/// integers, dictionaries decoded).
fn json_values(col: &ArrayRef) -> Vec<serde_json::Value> {
    use dafstore::arrow_array::types::{Float64Type, TimestampMicrosecondType};
    use serde_json::Value;
    let n = col.len();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        if col.is_null(i) {
            out.push(Value::Null);
            continue;
        }
        out.push(match col.data_type() {
            DataType::Int64 => col.as_primitive::<Int64Type>().value(i).into(),
            DataType::UInt32 => col.as_primitive::<UInt32Type>().value(i).into(),
            DataType::Float64 => col.as_primitive::<Float64Type>().value(i).into(),
            DataType::Boolean => col.as_boolean().value(i).into(),
            DataType::Utf8 => col.as_string::<i32>().value(i).into(),
            DataType::LargeUtf8 => col.as_string::<i64>().value(i).into(),
            DataType::Timestamp(_, _) => col
                .as_primitive::<TimestampMicrosecondType>()
                .value(i)
                .into(),
            DataType::Dictionary(_, _) => {
                let d = col.as_any_dictionary();
                let key = d.normalized_keys()[i];
                json_values(d.values())[key].clone()
            }
            DataType::List(_) => Value::Array(json_values(&col.as_list::<i32>().value(i))),
            DataType::LargeList(_) => Value::Array(json_values(&col.as_list::<i64>().value(i))),
            other => panic!("no JSON form for {other}"),
        });
    }
    out
}

#[test]
fn files_pyarrow_and_polars_wrote_with_every_codec_import_as_they_read_them() {
    let (_t, c) = new_container();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/interop");
    let expected: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(fixtures.join("expected.json")).unwrap()).unwrap();
    let mut seen = 0;
    for (key, want) in expected.as_object().unwrap() {
        let Some(file) = key.strip_prefix("parquet/") else {
            continue;
        };
        seen += 1;
        let name = file.trim_end_matches(".parquet");
        let report = c
            .import(name, fixtures.join(key), ImportOptions::default())
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(
            report.arrays[0]
                .conversions
                .iter()
                .any(|s| s.contains("\"cat\"") && s.contains("unified")),
            "{key}: {:?}",
            report.arrays[0].conversions
        );
        let table = c.open_table(name).unwrap();
        assert_eq!(
            table.num_rows(),
            want["num_rows"].as_u64().unwrap(),
            "{key}"
        );
        let meta = table.meta();
        let cols = want["columns"].as_object().unwrap();
        assert_eq!(meta.columns.len(), cols.len(), "{key}");
        for (k, column) in meta.columns.iter().enumerate() {
            let w = &cols[column];
            // The engine renders types as pyarrow prints them: the same types pyarrow read.
            // One difference, where we keep what the writer said: polars embeds
            // `dictionary<values=large_string, …>` as the Arrow type of a Categorical, which
            // arrow-rs honours and pyarrow reads as `values=string`.
            let want_type = match (file, column.as_str()) {
                ("polars_default.parquet", "cat") => {
                    "dictionary<values=large_string, indices=uint32, ordered=0>"
                }
                _ => w["type"].as_str().unwrap(),
            };
            assert_eq!(meta.types[k], want_type, "{key} {column}");
            let got: Vec<_> = table
                .batches()
                .iter()
                .flat_map(|b| json_values(b.column(k)))
                .collect();
            assert_eq!(
                &serde_json::Value::Array(got),
                &w["values"],
                "{key} {column}"
            );
        }
    }
    assert_eq!(seen, 8, "every Parquet fixture");
}

#[test]
fn a_map_column_is_stored_as_the_list_of_its_entries() {
    use dafstore::arrow_array::builder::MapBuilder;
    use dafstore::arrow_array::Array as _;
    let (t, c) = new_container();
    let mut m = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
    for i in 0..5 {
        if i == 2 {
            m.append(false).unwrap();
            continue;
        }
        for k in 0..i {
            m.keys().append_value(format!("k{k}"));
            m.values().append_value(i * 10 + k);
        }
        m.append(true).unwrap();
    }
    let map = m.finish();
    let batch = RecordBatch::try_from_iter([("m", Arc::new(map.clone()) as ArrayRef)]).unwrap();
    let file = t.path().join("map.parquet");
    write_parquet(&file, &[batch], 100);
    let report = c
        .import("t", &file, ImportOptions::default())
        .expect("import");
    assert!(
        report.arrays[0]
            .conversions
            .iter()
            .any(|s| s.contains("\"m\"") && s.contains("list")),
        "{:?}",
        report.arrays[0].conversions
    );
    let back = one_batch(&c, "t");
    let list = back.column(0).as_list::<i32>();
    assert_eq!(list.len(), 5);
    assert!(list.is_null(2));
    assert_eq!(list.offsets(), map.offsets());
    let entries = list.values().as_struct();
    assert_eq!(entries.column(0).as_ref(), map.keys().as_ref());
    assert_eq!(entries.column(1).as_ref(), map.values().as_ref());
}
