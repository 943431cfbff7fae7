//! Helpers shared by the commands: stdout that takes a closed pipe as a normal end, aligned text
//! tables, JSON output and progress bars on stderr.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::Result;

/// Set once a write to stdout met a closed pipe: later output is dropped.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes one line to stdout. Every command prints through this (the `out!` macro), never with
/// `println!` (which panics on a write error). A closed pipe (`dafctl ls DIR | head -1`: the reader
/// has gone) is a normal end for a CLI, as for ripgrep: nothing is printed about it, the rest of
/// the output is dropped, and the command finishes its work and exits with its own code (so `rm`
/// still removes every name). Any other write error (a full disk behind a redirect) is returned.
pub fn write_line(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        other => other,
    }
}

/// `println!` for commands: writes through [`write_line`] and returns its error with `?` (a
/// closed pipe is not an error).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cmd::common::write_line(format_args!($($arg)*))?
    };
}
pub(crate) use out;

/// `text` (a name, path or message that may come from disk) safe to print on a terminal: control
/// and bidi characters escaped as `\u{XXXX}` (SPEC [N8]). Nothing from disk is printed raw.
pub fn shown(text: &str) -> String {
    dafstore::escape_for_display(text)
}

/// The engine's remedy for `e` (if it names one) as a dafctl command line for the container `dir`.
pub fn hint(
    e: &(dyn std::error::Error + 'static),
    dir: Option<&std::path::Path>,
) -> Option<String> {
    let dir = dir.map_or_else(|| "DIR".to_string(), |d| shown(&d.display().to_string()));
    if is_capacity(e) {
        // The write already evicted every unreferenced cached entry it could.
        return Some(format!(
            "`dafctl config {dir}` shows the limits, `dafctl config {dir} --capacity SIZE` raises the capacity; `dafctl holders {dir}` shows who holds entries, `dafctl rm {dir} NAME...` removes entries"
        ));
    }
    Some(match dafstore::Remedy::of(e)? {
        dafstore::Remedy::Check => format!("run `dafctl fsck {dir}`"),
        dafstore::Remedy::Repair => format!("run `dafctl fsck --repair {dir}`"),
        dafstore::Remedy::FreeSpace => {
            format!("remove arrays with `dafctl rm {dir} NAME...`, or other files")
        }
        dafstore::Remedy::List => format!("`dafctl ls {dir}` lists the arrays"),
        dafstore::Remedy::CreateOrAdopt => {
            format!("`dafctl init {dir}` creates a container; `dafctl adopt {dir}` adopts a daf directory")
        }
        dafstore::Remedy::OpenReadOnly => {
            "`dafctl ls`, `info`, `holders`, `export`, `config` without --capacity or --min-free, and `fsck` without --repair open it read-only"
                .to_string()
        }
        _ => return None,
    })
}

/// Whether `e`, or an error in its chain, is a write that did not fit under the container's
/// limits ([`dafstore::WriteError::Capacity`]), however it is wrapped (the umbrella
/// [`dafstore::Error`], an import's boxed `WriteError`).
fn is_capacity(e: &(dyn std::error::Error + 'static)) -> bool {
    use dafstore::WriteError;
    let capacity = |w: &WriteError| matches!(w, WriteError::Capacity { .. });
    let mut cur = Some(e);
    while let Some(e) = cur {
        let found = if let Some(w) = e.downcast_ref::<WriteError>() {
            capacity(w)
        } else if let Some(w) = e.downcast_ref::<Box<WriteError>>() {
            capacity(w)
        } else if let Some(dafstore::Error::Write(w)) = e.downcast_ref::<dafstore::Error>() {
            capacity(w)
        } else {
            false
        };
        if found {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Prints `rows` under `headers`, each column padded to its widest cell (the last one is not).
/// Cells are escaped with [`shown`].
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| shown(c)).collect())
        .collect();
    let rows = &rows;
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> std::io::Result<()> {
        let cells: Vec<&str> = cells.collect();
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        write_line(format_args!("{}", text.trim_end()))
    };
    line(&mut headers.iter().copied())?;
    for row in rows {
        line(&mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

/// Prints one JSON document on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    out!("{text}");
    Ok(())
}

/// A progress indicator on stderr, shown only when stderr is a terminal.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A spinner with a message, for work whose size is not known.
    pub fn spinner(message: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::new_spinner().with_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress(Some(bar))
    }

    /// A bar with a message, for work reported as (done, total) items.
    pub fn counter(message: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::new(0).with_message(message.to_string());
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})") {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress(Some(bar))
    }

    /// Reports progress.
    pub fn update(&self, done: u64, total: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(total);
            bar.set_position(done);
        }
    }

    /// Removes the indicator (call before printing the result).
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A time in ms since the epoch as `1764682811000 (2025-12-02 13:40:11 UTC)`.
pub fn time_text(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days: days since 1970-01-01 to a proleptic Gregorian date.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{ms} ({year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC)",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Renders a shape as `10x20` (`scalar` for a 0-d array).
pub fn shape_text(shape: &[u64]) -> String {
    if shape.is_empty() {
        return "scalar".into();
    }
    shape
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join("x")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_as_ms_and_utc() {
        assert_eq!(time_text(0), "0 (1970-01-01 00:00:00 UTC)");
        assert_eq!(time_text(-1), "-1 (1969-12-31 23:59:59 UTC)");
        assert_eq!(
            time_text(951_782_400_000),
            "951782400000 (2000-02-29 00:00:00 UTC)"
        );
        assert_eq!(
            time_text(1_764_682_811_999),
            "1764682811999 (2025-12-02 13:40:11 UTC)"
        );
        // No overflow at the extremes.
        assert!(time_text(i64::MAX).starts_with("9223372036854775807 ("));
        assert!(time_text(i64::MIN).starts_with("-9223372036854775808 ("));
    }
}
