//! Zero-copy Arrow: the Arrow array's buffer is the map itself, and it keeps the map (and the
//! array's reference) alive after every dafstore handle is gone.
//!
//! Run: `cargo run -p dafstore --example arrow_zero_copy`

use dafstore::arrow_array::{cast::AsArray, types::Float64Type};
use dafstore::Container;

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let c = Container::create(dir.path().join("c"))?;
    let values: Vec<f64> = (0..1000).map(f64::from).collect();
    c.write_dense::<f64>("x", &[1000], &values)?;
    let x = c.open_dense_untyped("x")?;
    let arrow = x.to_arrow()?;
    let prim = arrow.as_primitive::<Float64Type>();
    // Same bytes, not a copy.
    assert_eq!(prim.values().inner().as_ptr(), x.as_bytes().as_ptr());
    drop(x);
    drop(c);
    // The map lives on inside the Arrow array.
    let sum: f64 = prim.values().iter().sum();
    println!(
        "arrow array of {} values over the map, sum {sum}",
        prim.len()
    );
    assert_eq!(sum, 499_500.0);
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
