//! Tables: a frame of mixed column types written as a stream of record batches, published
//! atomically, and opened as record batches whose buffers are slices of the one map of the file.
//!
//! Run: `cargo run -p dafstore --example tables`

use std::sync::Arc;

use dafstore::arrow_array::cast::AsArray;
use dafstore::arrow_array::types::{Float64Type, Int32Type};
use dafstore::arrow_array::{
    ArrayRef, DictionaryArray, Float64Array, Int32Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use dafstore::{Container, CreateOptions};

/// One batch of `n` rows starting at row `start`. A table file holds one dictionary per
/// dictionary-encoded column (so that it can be mapped): every batch uses the same values.
fn batch(start: i64, n: i64) -> Result<RecordBatch, Box<dyn std::error::Error>> {
    let cities: ArrayRef = Arc::new(StringArray::from(vec!["Paris", "Lyon", "Nice"]));
    let keys = Int32Array::from_iter_values((start..start + n).map(|i| (i % 3) as i32));
    let city = DictionaryArray::<Int32Type>::try_new(keys, cities)?;
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "when",
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(start..start + n).with_timezone("UTC"),
            ),
        ),
        (
            "price",
            Arc::new(Float64Array::from_iter_values(
                (start..start + n).map(|i| i as f64),
            )),
        ),
        (
            "note",
            Arc::new(StringArray::from_iter_values(
                (start..start + n).map(|i| format!("row {i}")),
            )),
        ),
        ("city", Arc::new(city)),
    ];
    Ok(RecordBatch::try_from_iter(columns)?)
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let c = Container::create(dir.path().join("c"))?;
    // Stream three batches; nothing is visible before `publish`.
    let first = batch(0, 1000)?;
    let mut w = c.create_table("2024-01-02", first.schema(), &CreateOptions::default())?;
    w.push(&first)?;
    w.push(&batch(1000, 1000)?)?;
    w.push(&batch(2000, 1000)?)?;
    assert!(c.ls()?.is_empty());
    w.publish()?;

    let info = c.info("2024-01-02")?;
    println!(
        "{}: {} rows, {} bytes",
        info.name,
        info.meta.shape()[0],
        info.bytes
    );
    let t = c.open_table("2024-01-02")?;
    let file = t.file_bytes().as_ptr_range();
    let mut sum = 0.0;
    for b in t.batches() {
        let price = b.column(1).as_primitive::<Float64Type>();
        // The values are the file's bytes in the map, not a copy.
        assert!(file.contains(&price.values().inner().as_ptr()));
        sum += price.values().iter().sum::<f64>();
    }
    println!("sum of price over {} batches: {sum}", t.batches().len());
    assert_eq!(sum, (0..3000).map(|i| i as f64).sum::<f64>());
    for (name, ty) in t.meta().columns.iter().zip(&t.meta().types) {
        println!("  {name}: {ty}");
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

#[test]
fn example_runs() {
    run().unwrap();
}
