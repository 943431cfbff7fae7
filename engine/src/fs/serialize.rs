//! Paths in serialized reports: as plain strings, lossily (a path that is not UTF-8 keeps its
//! readable parts, U+FFFD for the rest), so a report always serializes. Used through
//! `#[serde(serialize_with = "...")]` by the reports that name files (fsck, adopt, rebuild).

use std::path::{Path, PathBuf};

use serde::ser::{SerializeSeq, SerializeStruct};
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

/// A list of (path, reason) as a list of `{path, reason}` objects.
pub(crate) fn refusals<S: Serializer>(v: &[(PathBuf, String)], s: S) -> Result<S::Ok, S::Error> {
    struct Refusal<'a>(&'a Path, &'a str);
    impl serde::Serialize for Refusal<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut r = s.serialize_struct("Refusal", 2)?;
            r.serialize_field("path", &self.0.to_string_lossy())?;
            r.serialize_field("reason", self.1)?;
            r.end()
        }
    }
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for (p, reason) in v {
        seq.serialize_element(&Refusal(p, reason))?;
    }
    seq.end()
}

/// A list of daf's own files (SPEC [A1]) as a list of `{path, kind}` objects.
pub(crate) fn daf_files<S: Serializer>(
    v: &[(PathBuf, crate::fs::inspect::DafFile)],
    s: S,
) -> Result<S::Ok, S::Error> {
    struct Entry<'a>(&'a Path, &'static str);
    impl serde::Serialize for Entry<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut r = s.serialize_struct("DafFile", 2)?;
            r.serialize_field("path", &self.0.to_string_lossy())?;
            r.serialize_field("kind", self.1)?;
            r.end()
        }
    }
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for (p, kind) in v {
        seq.serialize_element(&Entry(p, kind.name()))?;
    }
    seq.end()
}
