//! `dafctl config DIR [--capacity SIZE] [--min-free SIZE] [--json]`: a container's limits (SPEC
//! 9.7) and its bytes: shown (read-only open), or set and then shown.
//!
//! SIZE is a number of bytes with an optional unit: `1048576`, `512M`, `400G`, `1.5GiB`. The
//! units K, M, G and T (either case) are powers of 1024 and may be followed by `i`, `B` or
//! `iB` (`1G` = `1Gi` = `1GB` = `1GiB` = 1073741824); a plain `B` means bytes. A fraction (at
//! most 18 digits after the point) needs a unit and is rounded down to whole bytes. `none`
//! clears the limit. Anything else is a usage error (exit 2).

use std::path::Path;

use dafstore::{Container, Limits, Usage};
use serde::Serialize;

use super::common::{out, print_json, print_table};
use super::Result;

/// One `--capacity` / `--min-free` value: a number of bytes, or `None` for `none` (clear).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeArg(pub Option<u64>);

/// What `--help` and every refused size say the syntax is.
pub const SIZE_SYNTAX: &str = "a number of bytes with an optional unit K, M, G or T (powers of 1024, optionally followed by i, B or iB; a fraction needs a unit), e.g. 1048576, 512M, 400G, 1.5GiB; or none";

/// The largest size the catalog stores (it keeps sizes as SQLite's signed 64-bit integers).
const MAX_SIZE: u128 = i64::MAX as u128;

/// The most digits after the decimal point (keeps the arithmetic exact in `u128`).
const MAX_FRACTION_DIGITS: usize = 18;

/// Parses a SIZE (see the module documentation), for clap's `value_parser`.
pub fn parse_size(text: &str) -> std::result::Result<SizeArg, String> {
    let refuse = |why: &str| format!("invalid size {text:?}: {why}; expected {SIZE_SYNTAX}");
    if text == "none" {
        return Ok(SizeArg(None));
    }
    let number_len = text
        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (number, None),
    };
    if whole.is_empty() || fraction.is_some_and(|f| f.is_empty() || f.contains('.')) {
        return Err(refuse("not a number"));
    }
    let multiplier: u128 = match unit.chars().next().map(|c| c.to_ascii_uppercase()) {
        None => 1,
        Some('B') if unit.len() == 1 => 1,
        Some(c) => {
            let power = match c {
                'K' => 1,
                'M' => 2,
                'G' => 3,
                'T' => 4,
                _ => return Err(refuse("unknown unit")),
            };
            if !matches!(&unit[1..], "" | "i" | "B" | "iB") {
                return Err(refuse("unknown unit"));
            }
            1u128 << (10 * power)
        }
    };
    if fraction.is_some() && multiplier == 1 {
        return Err(refuse("a fraction of a byte"));
    }
    let too_large = || {
        refuse(&format!(
            "larger than the most a container stores, {MAX_SIZE} bytes"
        ))
    };
    // `whole` is all digits: only its size can make it unparsable.
    let whole: u128 = whole.parse().map_err(|_| too_large())?;
    let mut bytes = whole.checked_mul(multiplier).ok_or_else(too_large)?;
    if let Some(fraction) = fraction {
        if fraction.len() > MAX_FRACTION_DIGITS {
            return Err(refuse(&format!(
                "more than {MAX_FRACTION_DIGITS} digits after the point"
            )));
        }
        let digits: u128 = fraction.parse().map_err(|_| refuse("not a number"))?;
        // At most 10^18 * 2^40 < 2^100: exact. Rounded down to whole bytes.
        bytes = bytes
            .checked_add(digits * multiplier / 10u128.pow(fraction.len() as u32))
            .ok_or_else(too_large)?;
    }
    if bytes > MAX_SIZE {
        return Err(too_large());
    }
    Ok(SizeArg(Some(bytes as u64)))
}

/// `bytes` for people: `512 bytes`, `1 KiB`, `1.5 GiB` (one decimal, rounded down).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} byte{}", if bytes == 1 { "" } else { "s" });
    }
    let mut unit = 0;
    while unit + 1 < UNITS.len() && bytes >> (10 * (unit + 2)) > 0 {
        unit += 1;
    }
    let scale = 1u128 << (10 * (unit + 1));
    let tenths = u128::from(bytes) * 10 / scale;
    let (whole, tenth) = (tenths / 10, tenths % 10);
    if tenth == 0 {
        format!("{whole} {}", UNITS[unit])
    } else {
        format!("{whole}.{tenth} {}", UNITS[unit])
    }
}

/// `config --json`: the limits and the usage in one object.
#[derive(Serialize)]
struct Config {
    #[serde(flatten)]
    limits: Limits,
    #[serde(flatten)]
    usage: Usage,
}

pub fn run(
    dir: &Path,
    capacity: Option<SizeArg>,
    min_free: Option<SizeArg>,
    json: bool,
) -> Result<u8> {
    let c = if capacity.is_none() && min_free.is_none() {
        Container::options().read_only(true).open(dir)?
    } else {
        let c = Container::open(dir)?;
        let old = c.limits()?;
        c.set_limits(Limits {
            capacity: capacity.map_or(old.capacity, |s| s.0),
            min_free: min_free.map_or(old.min_free, |s| s.0),
        })?;
        c
    };
    let config = Config {
        limits: c.limits()?,
        usage: c.usage()?,
    };
    if json {
        print_json(&config)?;
        return Ok(0);
    }
    let limit =
        |v: Option<u64>| v.map_or("none".to_string(), |b| format!("{b} ({})", human_size(b)));
    let bytes = |b: u64| format!("{b} ({})", human_size(b));
    let Config { limits, usage } = config;
    print_table(
        &["FIELD", "VALUE"],
        &[
            vec!["capacity".into(), limit(limits.capacity)],
            vec!["min_free".into(), limit(limits.min_free)],
            vec!["entries".into(), bytes(usage.entries)],
            vec!["reserved".into(), bytes(usage.reserved)],
            vec!["evictable".into(), bytes(usage.evictable)],
        ],
    )?;
    let used = usage.entries.saturating_add(usage.reserved);
    if let Some(over) = limits
        .capacity
        .and_then(|c| used.checked_sub(c))
        .filter(|&o| o > 0)
    {
        out!(
            "{over} bytes over the capacity: the next write evicts what it needs; `dafctl gc {} --evict` evicts now",
            super::common::shown(&dir.display().to_string())
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_bytes_or_powers_of_1024_with_optional_i_b_or_ib() {
        for (text, bytes) in [
            ("0", 0),
            ("1048576", 1 << 20),
            ("7B", 7),
            ("1K", 1024),
            ("1k", 1024),
            ("512M", 512 << 20),
            ("512MiB", 512 << 20),
            ("512MB", 512 << 20),
            ("512Mi", 512 << 20),
            ("400G", 400 << 30),
            ("1.5GiB", 3 << 29),
            ("1.5g", 3 << 29),
            ("2T", 2 << 40),
            ("0.1K", 102),
            ("9223372036854775807", i64::MAX as u64),
        ] {
            assert_eq!(parse_size(text), Ok(SizeArg(Some(bytes))), "{text}");
        }
        assert_eq!(parse_size("none"), Ok(SizeArg(None)));
    }

    #[test]
    fn bad_sizes_are_refused_with_the_syntax() {
        for text in [
            "",
            " 1",
            "1 ",
            "-1",
            "+1",
            "1.5",
            "1.",
            ".5",
            "1..5",
            "1.2.3",
            "1X",
            "1KB2",
            "1KiBs",
            "1iB",
            "1E",
            "K",
            "1,5G",
            "None",
            "NONE",
            "0x10",
            "1e3",
            "8388608T",
            "99999999999999999999999999999999999999999",
            "1.0000000000000000001K",
        ] {
            let e = parse_size(text).expect_err(text);
            assert!(
                e.contains("invalid size") && e.contains("e.g. 1048576"),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn human_sizes_use_binary_units_with_one_decimal() {
        for (bytes, text) in [
            (0, "0 bytes"),
            (1, "1 byte"),
            (1023, "1023 bytes"),
            (1024, "1 KiB"),
            (1536, "1.5 KiB"),
            (3 << 29, "1.5 GiB"),
            (400 << 30, "400 GiB"),
            (u64::MAX, "15.9 EiB"),
        ] {
            assert_eq!(human_size(bytes), text, "{bytes}");
        }
    }
}
