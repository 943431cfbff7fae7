//! `dafctl lifecycle DIR NAME persistent|scratch|cached`: set what happens to an entry after its
//! last release (SPEC 9.7, [`Container::set_lifecycle`]).

use std::path::Path;

use dafstore::{ArrayState, Container, Lifecycle};

use super::common::{out, shown};
use super::Result;

/// The lifecycle argument: one of [`Lifecycle::name`]'s names, for clap's `value_parser`.
pub fn parse_lifecycle(name: &str) -> std::result::Result<Lifecycle, String> {
    Lifecycle::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Lifecycle::ALL.iter().map(|l| l.name()).collect();
        format!(
            "invalid lifecycle {name:?}: expected one of {}",
            names.join(", ")
        )
    })
}

pub fn run(dir: &Path, name: &str, lifecycle: Lifecycle) -> Result<u8> {
    let c = Container::open(dir)?;
    c.set_lifecycle(name, lifecycle)?;
    // `scratch` removes at once an entry that was held before and that nobody holds now.
    let live = c
        .info_all()?
        .into_iter()
        .any(|i| i.name == name && i.state == ArrayState::Live);
    if live {
        out!("{}: {lifecycle}", shown(name));
    } else {
        out!(
            "{}: {lifecycle}; removed at once: it had been held and nobody holds it now",
            shown(name)
        );
    }
    Ok(0)
}
