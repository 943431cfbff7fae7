//! Paths in serialized reports: as plain strings, lossily (a path that is not UTF-8 keeps its
//! readable parts, U+FFFD for the rest), so a report always serializes. Used through
//! `#[serde(serialize_with = "...")]` by the reports that name files (fsck, adopt, rebuild).

use std::path::{Path, PathBuf};

use serde::ser::SerializeSeq;
use serde::Serializer;

/// A path as a string.
pub(crate) fn path<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

/// A list of paths as a list of strings.
pub(crate) fn paths<S: Serializer>(ps: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(ps.len()))?;
    for p in ps {
        seq.serialize_element(&p.to_string_lossy())?;
    }
    seq.end()
}
