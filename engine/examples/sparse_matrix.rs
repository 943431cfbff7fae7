//! A sparse matrix: write a CSR matrix, read rows back through the bounds-checked accessor, and
//! write the same matrix in compressed columns.
//!
//! Run: `cargo run -p dafstore --example sparse_matrix`

use dafstore::{Container, Layout};

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let c = Container::create(dir.path().join("c"))?;
    // 3 x 4:  [[1, 0, 2, 0],
    //          [0, 0, 0, 0],
    //          [0, 3, 0, 4]]
    let (data, indices, indptr) = (
        vec![1.0f32, 2.0, 3.0, 4.0],
        vec![0i32, 2, 1, 3],
        vec![0i64, 2, 2, 4],
    );
    c.write_sparse::<f32, i32, i64>("m", Layout::Rows, [3, 4], &data, &indices, &indptr)?;
    let m = c.open_sparse("m")?;
    for row in 0..3u64 {
        let range = m.major_range(row).ok_or("row out of range")?;
        let cols: Vec<u64> = range.clone().filter_map(|k| m.indices().get(k)).collect();
        println!(
            "row {row}: columns {cols:?} values {:?}",
            &m.data::<f32>()?[range]
        );
    }
    // The same matrix by columns (CSC): indices are row numbers.
    c.write_sparse::<f32, i32, i64>(
        "m_csc",
        Layout::Columns,
        [3, 4],
        &[1.0, 3.0, 2.0, 4.0],
        &[0, 2, 0, 2],
        &[0, 1, 2, 3, 4],
    )?;
    let t = c.open_sparse("m_csc")?;
    assert_eq!(t.layout(), Layout::Columns);
    assert_eq!(t.nnz(), 4);
    // Invariants are checked before anything is published:
    let bad =
        c.write_sparse::<f32, i32, i64>("bad", Layout::Rows, [3, 4], &[1.0], &[9], &[0, 1, 1, 1]);
    println!(
        "an index out of range is refused: {}",
        bad.err().ok_or("accepted a bad index")?
    );
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
