//! `dafctl init DIR`: create an empty container.

use std::path::Path;

use dafstore::Container;

use super::common::out;
use super::Result;

pub fn run(dir: &Path) -> Result<u8> {
    let c = Container::create(dir)?;
    out!("created container {}", c.root().display());
    Ok(0)
}
