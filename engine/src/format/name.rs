//! Array names (SPEC section 3). [`ArrayName`] is the only way to name an array, and it can only
//! be built by validating, so no code path can touch a file for an invalid name.

use std::path::{Path, PathBuf};

use crate::error::NameError;

/// The suffixes of array files, and `sparse` (the legacy data file readers MAY open, SPEC 5.5);
/// a directory component may not end in one of them ([N6]).
pub(crate) const FILE_SUFFIXES: [&str; 7] = [
    "array", "yaml", "data", "indices", "indptr", "sparse", "arrow",
];

/// Longest directory component (bytes) [N5].
pub const MAX_DIR_COMPONENT: usize = 255;
/// Longest last component (bytes) so `<component>.indices` fits in 255 bytes [N5].
pub const MAX_LAST_COMPONENT: usize = 255 - ".indices".len();

/// Whether `c` may not appear in a name ([N8]): C0 controls, DEL, C1 controls (including U+0085
/// NEL), the bidi marks U+061C, U+200E, U+200F, the line and paragraph separators U+2028,
/// U+2029, and the bidi embedding, override and isolate characters U+202A–U+202E,
/// U+2066–U+2069. Each can fake rows or reorder text when a name is printed.
pub fn is_forbidden_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1F}'
        | '\u{7F}'..='\u{9F}'
        | '\u{61C}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}')
}

/// `s` with every character a name may not hold ([N8]) written as `\u{XXXX}` (and `\` as `\\`),
/// for printing text that came from disk (file names) without letting it reach a terminal raw.
pub fn escape_for_display(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if is_forbidden_char(c) || c.is_control() {
            out.push_str(&format!("\\u{{{:04X}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// A validated array name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArrayName(String);

impl ArrayName {
    /// Validates `name` against SPEC [N1]–[N6] and [N8].
    pub fn new(name: &str) -> Result<ArrayName, NameError> {
        let fail = |reason: String, rule: &'static str| NameError {
            name: name.to_string(),
            reason,
            rule,
        };
        if name.is_empty() {
            return Err(fail("the name is empty".into(), "N2"));
        }
        if name.contains('\0') {
            return Err(fail("contains NUL".into(), "N4"));
        }
        if name.contains('\\') {
            return Err(fail("contains a backslash".into(), "N4"));
        }
        if let Some(c) = name.chars().find(|c| is_forbidden_char(*c)) {
            return Err(fail(
                format!(
                    "contains the control or bidi character U+{:04X}, which could fake or reorder text where the name is printed",
                    u32::from(c)
                ),
                "N8",
            ));
        }
        let components: Vec<&str> = name.split('/').collect();
        let last = components.len() - 1;
        for (i, c) in components.iter().enumerate() {
            if c.is_empty() {
                return Err(fail(
                    "has an empty component (leading, trailing or doubled '/')".into(),
                    "N2",
                ));
            }
            if *c == "." || *c == ".." {
                return Err(fail(format!("has a {c:?} component"), "N3"));
            }
            if c.starts_with('.') {
                return Err(fail(
                    format!("component {c:?} starts with '.' (reserved for the container)"),
                    "N3",
                ));
            }
            let limit = if i == last {
                MAX_LAST_COMPONENT
            } else {
                MAX_DIR_COMPONENT
            };
            if c.len() > limit {
                return Err(fail(
                    format!(
                        "component of {} bytes is longer than {limit} bytes",
                        c.len()
                    ),
                    "N5",
                ));
            }
            if i != last {
                if let Some(sfx) = FILE_SUFFIXES
                    .iter()
                    .find(|s| c.strip_suffix(*s).is_some_and(|p| p.ends_with('.')))
                {
                    return Err(fail(
                        format!("directory component {c:?} ends in .{sfx}, which would collide with an array file"),
                        "N6",
                    ));
                }
            }
        }
        Ok(ArrayName(name.to_string()))
    }

    /// Validates a name given as raw bytes (e.g. from a command line): must be UTF-8 ([N1]).
    pub fn from_bytes(name: &[u8]) -> Result<ArrayName, NameError> {
        match std::str::from_utf8(name) {
            Ok(s) => ArrayName::new(s),
            Err(_) => Err(NameError {
                name: String::from_utf8_lossy(name).into_owned(),
                reason: "is not valid UTF-8".into(),
                rule: "N1",
            }),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path of the file with `suffix` under `root` ([N7]).
    pub fn file_path(&self, root: &Path, suffix: &str) -> PathBuf {
        let mut p = root.join(&self.0);
        let mut file = p.file_name().unwrap_or_default().to_os_string();
        file.push(".");
        file.push(suffix);
        p.set_file_name(file);
        p
    }

    /// The directory holding the array's files.
    pub fn parent_dir(&self, root: &Path) -> PathBuf {
        match self.0.rsplit_once('/') {
            Some((dir, _)) => root.join(dir),
            None => root.to_path_buf(),
        }
    }

    /// The lock stripe of this name ([W6]): `crc32c(name) mod 64`.
    pub fn stripe(&self) -> u32 {
        crc32c::crc32c(self.0.as_bytes()) % crate::format::LOCK_STRIPES
    }

    /// The file name of this name's load lock in `.dafstore/locks/` ([L1]):
    /// `load-<FNV-1a 64 of the name's bytes, 16 lowercase hex digits>.lock`.
    pub fn load_lock_file(&self) -> String {
        format!("load-{:016x}.lock", fnv1a(self.0.as_bytes()))
    }

    /// The key of this name in session files' reference records ([P3]): FNV-1a 64 of the name's
    /// bytes, or 1 if that is 0 (0 marks a free record).
    pub fn key(&self) -> u64 {
        name_key(&self.0)
    }
}

/// [`ArrayName::key`] of a name as stored (catalog rows are not re-validated to be hashed).
pub(crate) fn name_key(name: &str) -> u64 {
    match fnv1a(name.as_bytes()) {
        0 => 1,
        h => h,
    }
}

/// 64-bit FNV-1a ([L1], [P3]): offset basis `0xcbf29ce484222325`, prime `0x100000001b3`.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl std::fmt::Display for ArrayName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_load_lock_of_a_name_is_the_one_the_spec_gives_as_its_example() {
        // SPEC [L1]'s example, and FNV-1a's published value for the empty input.
        let n = super::ArrayName::new("date/2026-01-02").unwrap();
        assert_eq!(n.load_lock_file(), "load-e2f0b1f1952dbd01.lock");
        assert_eq!(
            super::ArrayName::new("a").unwrap().load_lock_file(),
            "load-af63dc4c8601ec8c.lock"
        );
        // SPEC [P3]'s example: a reference record's key is the same hash.
        assert_eq!(n.key(), 0xe2f0_b1f1_952d_bd01);
    }

    use super::*;

    #[test]
    fn valid_names() {
        for ok in [
            "a",
            "a/b",
            "cells/umis",
            "x.array",
            "a b",
            "ünï",
            "a.b/c",
            &"x".repeat(247),
        ] {
            ArrayName::new(ok).unwrap();
        }
    }

    #[test]
    fn invalid_names_cite_their_rule() {
        let long = "x".repeat(248);
        let long_dir = format!("{}/a", "d".repeat(256));
        let cases: &[(&str, &str)] = &[
            ("", "N2"),
            ("/a", "N2"),
            ("a/", "N2"),
            ("a//b", "N2"),
            (".", "N3"),
            ("..", "N3"),
            ("a/../b", "N3"),
            (".hidden", "N3"),
            ("a/.dafstore", "N3"),
            ("a\0b", "N4"),
            ("a\\b", "N4"),
            (&long, "N5"),
            (&long_dir, "N5"),
            ("x.array/y", "N6"),
            ("x.yaml/y", "N6"),
            ("x.indptr/y", "N6"),
            ("a\nb", "N8"),
            ("a\x1b[2Jb", "N8"),
            ("a\x7fb", "N8"),
            ("a\u{85}b", "N8"),
            ("a\u{9b}b", "N8"),
            ("a\u{202E}b", "N8"),
            ("a\u{2066}b", "N8"),
            ("a\u{2028}b", "N8"),
            ("a\u{2029}b", "N8"),
            ("d\t/x", "N8"),
        ];
        for (name, rule) in cases {
            let err = ArrayName::new(name).unwrap_err();
            assert_eq!(err.rule, *rule, "{name:?}: {err}");
        }
        assert_eq!(ArrayName::from_bytes(b"a\xffb").unwrap_err().rule, "N1");
    }

    #[test]
    fn display_escaping_leaves_no_control_or_bidi_character() {
        let raw = "x\n\u{1b}[31m\u{202E}y\\z\u{85}";
        let shown = escape_for_display(raw);
        assert_eq!(shown, "x\\u{000A}\\u{001B}[31m\\u{202E}y\\\\z\\u{0085}");
        assert!(!shown
            .chars()
            .any(|c| is_forbidden_char(c) || c.is_control()));
        assert_eq!(escape_for_display("ünï/a b"), "ünï/a b");
    }

    #[test]
    fn paths() {
        let n = ArrayName::new("a/b/c").unwrap();
        assert_eq!(
            n.file_path(Path::new("/r"), "yaml"),
            Path::new("/r/a/b/c.yaml")
        );
        assert_eq!(n.parent_dir(Path::new("/r")), Path::new("/r/a/b"));
        let n = ArrayName::new("c").unwrap();
        assert_eq!(n.parent_dir(Path::new("/r")), Path::new("/r"));
    }
}
