//! Layer 2, the file system: every system call (`sys`, the only module with `unsafe`), paths
//! resolved under a container without following links (`beneath`), the per-process map cache
//! (`cache`), the space reserve (`reserve`), whether the file system is local (`local`), and
//! reading an array's files as the spec says without the catalog (`inspect`); paths in
//! serialized reports (`serialize`).

pub(crate) mod beneath;
pub(crate) mod cache;
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub mod inspect;
pub(crate) mod local;
pub(crate) mod read;
pub(crate) mod reserve;
pub(crate) mod serialize;
pub(crate) mod sys;
