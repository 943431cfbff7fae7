//! Layer 1, the format: the rules of SPEC sections 2–6 as pure functions and types — bytes in,
//! typed values out, no I/O. Element types (`dtype`), array names (`name`), metadata documents
//! (`meta`, over the YAML subset parser `yaml`), sparse structure (`sparse`), the Arrow type
//! grammar of a table's `types` (`arrow_type`), table files (`table`), checksums (`checksum`),
//! and the container-level constants below.

pub mod arrow_type;
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub mod checksum;
pub mod dtype;
pub mod lifecycle;
pub mod meta;
pub mod name;
pub mod sparse;
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub mod table;
pub mod yaml;

/// Number of lock stripes ([W6]).
pub const LOCK_STRIPES: u32 = 64;
/// Container layout major version ([C2]).
pub const CONTAINER_MAJOR: u64 = 1;
/// Container layout minor version.
pub const CONTAINER_MINOR: u64 = 0;
/// The reserved directory ([C1]).
pub const RESERVED_DIR: &str = ".dafstore";

/// The document of `.dafstore/container.yaml` for this version ([C2]).
pub(crate) fn container_yaml() -> String {
    format!("format: dafstore\nversion:\n- {CONTAINER_MAJOR}\n- {CONTAINER_MINOR}\n")
}

/// Whether `s` is a session id: 32 hexadecimal digits ([P1]).
pub(crate) fn is_session_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}
