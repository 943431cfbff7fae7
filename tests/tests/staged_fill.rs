//! Filling one staged array from several processes by its token (issue 19's `to_container`):
//! `DenseWriter::token`, `Container::open_staged`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use dafstore::{Container, OpenError};
use dafstore_tests::{new_container, staging_files};

const HELPER: &str = env!("CARGO_BIN_EXE_dafstore-test-helper");

fn fill(root: &std::path::Path, token: &str, start: usize, end: usize) -> std::process::Child {
    Command::new(HELPER)
        .args([
            "fill-staged",
            &root.to_string_lossy(),
            token,
            &start.to_string(),
            &end.to_string(),
        ])
        .spawn()
        .unwrap()
}

#[test]
fn four_processes_fill_one_staged_array_by_its_token_and_the_writer_publishes_it_whole() {
    let (_d, c) = new_container();
    let n = 100_000;
    let w = c.create_dense::<f64>("out/x", &[n as u64]).unwrap();
    let token = w.token();
    let parts: Vec<_> = (0..4)
        .map(|k| fill(c.root(), &token, k * n / 4, (k + 1) * n / 4))
        .collect();
    for mut p in parts {
        assert!(p.wait().unwrap().success());
    }
    // Nothing is visible before the publish.
    assert!(c.open_dense::<f64>("out/x").is_err());
    w.publish().unwrap();
    let a = c.open_dense::<f64>("out/x").unwrap();
    assert!(a.iter().enumerate().all(|(i, &v)| v == i as f64));
    // The checksum recorded is of what the fillers wrote.
    let r = Container::fsck_dir(
        c.root(),
        dafstore::FsckOptions {
            deep: true,
            repair: false,
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    // A published (or discarded) writer's token opens nothing.
    let e = c.open_staged(&token).err().unwrap();
    assert!(matches!(e, OpenError::Staged { .. }), "{e}");
    assert!(e.to_string().contains("published or discarded"), "{e}");
}

#[test]
fn a_discarded_writer_publishes_nothing_and_bad_tokens_are_refused_with_the_reason() {
    let (_d, c) = new_container();
    let w = c.create_dense::<f64>("x", &[10]).unwrap();
    let token = w.token();
    let mut f = c.open_staged(&token).unwrap();
    f.as_mut_slice::<f64>().unwrap()[3] = 7.0;
    assert!(f.as_mut_slice::<f32>().is_err(), "the dtype is checked");
    drop(f);
    drop(w);
    assert!(c.ls().unwrap().is_empty());
    assert!(staging_files(c.root()).is_empty());
    let w = c.create_dense::<f64>("x", &[10]).unwrap();
    let token = w.token();
    let wrong_shape = token.replace(":10:", ":11:");
    for (bad, why) in [
        ("hello", "does not start with"),
        ("dafstore-staged:1:abc", "fewer than 4 fields"),
        (wrong_shape.as_str(), "the token's shape"),
        (&token.replacen("float64", "int9", 1), "unknown dtype"),
        (
            &token.replacen("dafstore-staged:1:", "dafstore-staged:1:../", 1),
            "is not <session>/<number>",
        ),
    ] {
        let e = c.open_staged(bad).err().unwrap();
        assert!(e.to_string().contains(why), "{bad}: {e}");
    }
}

#[test]
fn a_token_of_a_writer_whose_process_died_opens_nothing() {
    let (_d, c) = new_container();
    let mut child = Command::new(HELPER)
        .args(["stage-and-hang", &c.root().to_string_lossy(), "x", "8"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut token = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut token)
        .unwrap();
    let token = token.trim().to_string();
    let mut f = c.open_staged(&token).unwrap();
    f.as_bytes_mut()[0] = 1;
    child.kill().unwrap();
    child.wait().unwrap();
    drop(f);
    let e = c.open_staged(&token).err().unwrap();
    assert!(e.to_string().contains("died"), "{e}");
    // Its staging is collected like any dead writer's.
    c.gc().unwrap();
    assert!(staging_files(c.root()).is_empty());
}
