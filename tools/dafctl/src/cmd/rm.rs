//! `dafctl rm DIR NAME...`: remove arrays, deferred while referenced (SPEC [W8]).

use std::path::Path;

use dafstore::{Container, Removal};

use super::common::{out, shown};
use super::Result;

pub fn run(dir: &Path, names: &[String]) -> Result<u8> {
    let c = Container::open(dir)?;
    let mut code = 0;
    for name in names {
        match c.remove(name) {
            Ok(Removal::Removed) => out!("removed {}", shown(name)),
            Ok(Removal::Deferred { holders }) => out!(
                "{}: deferred, held by {holders} process{}; its files are deleted when the last one releases it",
                shown(name),
                if holders == 1 { "" } else { "es" }
            ),
            Err(e) => {
                eprintln!("dafctl: error: {}", shown(&e.to_string()));
                code = 1;
            }
        }
    }
    Ok(code)
}
