//! Interop benchmark half run by `bench/interop.sh`: imports the Feather file FILE into the
//! container DIR as `big`, then exports it to OUT, timing each (median of RUNS). Prints one JSON
//! object: `import_ns`, `export_ns`, `bytes`.
//!
//! Usage: `interop_bench DIR FILE OUT RUNS`

use std::time::Instant;

use dafstore::{Container, ImportOptions};

fn median(mut v: Vec<u128>) -> u128 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, file, out) = (&args[1], &args[2], &args[3]);
    let runs: usize = args[4].parse().expect("runs");
    let c = Container::create(dir).expect("create");
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        c.import("big", file, ImportOptions::default())
            .expect("import");
        imports.push(t.elapsed().as_nanos());
        let t = Instant::now();
        c.export("big", out, None).expect("export");
        exports.push(t.elapsed().as_nanos());
    }
    let bytes = c.info("big").expect("record").files[0].size;
    println!(
        "{}",
        serde_json::json!({"import_ns": median(imports), "export_ns": median(exports), "bytes": bytes})
    );
}
