//! What happens to an entry after its last release, and a container's limits (SPEC 9.7): values
//! of the cache's vocabulary, with no I/O (layer 0, with the error vocabulary that names them).

/// What happens to an entry after its last reference is released (SPEC 9.7). Serializes as its
/// name ([`Lifecycle::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    /// Kept until removed explicitly (the default).
    #[default]
    Persistent,
    /// Removed at the last release, once it has been held ([P6]).
    Scratch,
    /// Kept after the last release, but evicted (least recently released first) when a write
    /// needs its room under the container's capacity (SPEC 9.7).
    Cached,
}

impl Lifecycle {
    /// Every lifecycle, in the order of their names' documentation.
    pub const ALL: [Lifecycle; 3] = [Lifecycle::Persistent, Lifecycle::Scratch, Lifecycle::Cached];

    /// `persistent`, `scratch` or `cached`.
    pub fn name(self) -> &'static str {
        match self {
            Lifecycle::Persistent => "persistent",
            Lifecycle::Scratch => "scratch",
            Lifecycle::Cached => "cached",
        }
    }

    /// The lifecycle named `name` (`persistent`, `scratch`, `cached`).
    pub fn from_name(name: &str) -> Option<Lifecycle> {
        Lifecycle::ALL.into_iter().find(|l| l.name() == name)
    }

    /// The catalog's columns `scratch` and `cached`.
    pub(crate) fn columns(self) -> (bool, bool) {
        (self == Lifecycle::Scratch, self == Lifecycle::Cached)
    }

    pub(crate) fn of_columns(scratch: i64, cached: i64) -> Lifecycle {
        if scratch != 0 {
            Lifecycle::Scratch
        } else if cached != 0 {
            Lifecycle::Cached
        } else {
            Lifecycle::Persistent
        }
    }
}

impl std::fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A container's limits (SPEC 9.7): `dafctl config`, [`crate::Container::limits`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Most bytes the entries' data files (and the staged files of writes in flight) may take
    /// together; `None`: no capacity.
    pub capacity: Option<u64>,
    /// Free space to leave on the file system (tmpfs fills silently); `None`: no floor. Kept on
    /// a best-effort basis: other programs share the file system.
    pub min_free: Option<u64>,
}

impl Limits {
    /// Whether any limit is set (otherwise writes reserve nothing).
    pub fn any(&self) -> bool {
        self.capacity.is_some() || self.min_free.is_some()
    }
}
