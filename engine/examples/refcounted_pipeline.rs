//! A reference-counted pipeline in one program: shared input arrays, workers (threads here; real
//! processes in `dafctl demo` and the multi-process tests) that each hold what they read, a
//! scratch intermediate that disappears after its last reader, and a removal that waits for the
//! last holder instead of pulling data from under it.
//!
//! Run: `cargo run -p dafstore --example refcounted_pipeline`

use dafstore::{Container, CreateOptions, DType, Removal};

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("c");
    let c = Container::create(&root)?;
    // Day 1 and day 2 inputs, shared by every worker.
    for day in [1, 2] {
        let values: Vec<f64> = (0..100_000)
            .map(|i| f64::from(i) * f64::from(day))
            .collect();
        c.write_dense::<f64>(&format!("input/day{day}"), &[100_000], &values)?;
    }
    // An intermediate result, marked scratch: deleted after its last release.
    let opts = CreateOptions {
        scratch: true,
        ..Default::default()
    };
    let mut w = c.create_dense_with("scratch/diff", DType::Float64, &[100_000], opts)?;
    {
        let d1 = c.open_dense::<f64>("input/day1")?;
        let d2 = c.open_dense::<f64>("input/day2")?;
        for (o, (a, b)) in w
            .as_mut_slice::<f64>()?
            .iter_mut()
            .zip(d1.iter().zip(d2.iter()))
        {
            *o = b - a;
        }
    }
    w.publish()?;
    // The producer holds the intermediate until the consumers hold it too; otherwise the first
    // consumer to finish would release the last reference and delete it under the others.
    let producer = c.hold("scratch/diff")?;
    // Workers read the intermediate; each open holds a reference.
    let sums: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|k| {
                let c = c.clone();
                s.spawn(move || -> Result<f64, dafstore::OpenError> {
                    let diff = c.open_dense::<f64>("scratch/diff")?;
                    Ok(diff.iter().skip(k).step_by(4).sum())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| "worker panicked")?
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()
    })?;
    println!("workers summed {:.0}", sums.iter().sum::<f64>());
    assert!(
        c.ls()?.contains(&"scratch/diff".to_string()),
        "still held by the producer"
    );
    drop(producer);
    assert!(
        !c.ls()?.contains(&"scratch/diff".to_string()),
        "the scratch array went with its last reader"
    );
    // Removing an input another holder still uses is deferred until it lets go.
    let holder = c.hold("input/day1")?;
    assert!(matches!(c.remove("input/day1")?, Removal::Deferred { .. }));
    assert!(root.join("input/day1.array").exists());
    drop(holder);
    assert!(!root.join("input/day1.array").exists());
    println!("deferred removal ran after the last holder released");
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
