//! `dafctl`: the maintenance CLI for dafstore containers. `main` stays thin: parse, dispatch,
//! map errors to exit codes. Each command lives in its own module under `cmd/` and uses only the
//! engine's public API.

mod cmd;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Maintain dafstore containers of memory-mapped arrays.
///
/// Exit codes: 0 success, 1 failure, 2 usage error; `fsck` has its own (see `dafctl fsck --help`).
#[derive(Parser)]
#[command(name = "dafctl", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an empty container in DIR (made if missing).
    #[command(after_help = "Example: dafctl init /dev/shm/cells")]
    Init {
        /// Directory to turn into a container (created if missing; must not be a container yet).
        dir: PathBuf,
    },

    /// List the arrays of a container.
    ///
    /// Lists every array in the catalog, sorted by name, including arrays whose removal is
    /// deferred while processes still hold them (state `deleting`) and interrupted publishes or
    /// removes (`publishing`, `removing`): the STATE column tells. HOLDERS is the number of live
    /// processes holding the array. LIFECYCLE is what happens after its last release
    /// (persistent, scratch or cached: `dafctl lifecycle`). Opens the container read-only:
    /// changes nothing.
    #[command(after_help = "Example: dafctl ls /dev/shm/cells --json")]
    Ls {
        /// The container.
        dir: PathBuf,
        /// Print one JSON document (a list of objects, as `info --json` prints them).
        #[arg(long)]
        json: bool,
    },

    /// Show one array: kind, dtypes, shape, size, holders, state and lifecycle.
    ///
    /// Shows arrays in any catalog state (a `deleting` array too). Opens the container read-only.
    #[command(after_help = "Example: dafctl info /dev/shm/cells cells/umis --json")]
    Info {
        /// The container.
        dir: PathBuf,
        /// The array name.
        name: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },

    /// Remove arrays; deferred while processes hold them.
    ///
    /// An array nobody holds is removed at once. An array held by live processes is gone for new
    /// holders at once, and its files are deleted when the last holder releases it (or dies and
    /// is reaped). Exits 1 if any name could not be removed (the others are still removed).
    #[command(after_help = "Example: dafctl rm /dev/shm/cells cells/umis cells/genes")]
    Rm {
        /// The container.
        dir: PathBuf,
        /// Names of the arrays to remove.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },

    /// List the processes holding references: pid, alive or dead, arrays and counts, and the
    /// names each is loading (open or load).
    ///
    /// Lists every session registered in the catalog (processes that take references or write),
    /// with what each holds. A dead holder stays listed until the next `dafctl gc` (or any
    /// read-write open) reaps it. Opens the container read-only: reaps nothing.
    /// (`dafctl refs` is the former name, still accepted.)
    #[command(
        alias = "refs",
        after_help = "Example: dafctl holders /dev/shm/cells --json"
    )]
    Holders {
        /// The container.
        dir: PathBuf,
        /// Print one JSON document: a list of {session, pid, alive, this_process,
        /// started_at_ms, arrays: [{name, since_ms, count}]}.
        #[arg(long)]
        json: bool,
    },

    /// Hold references on arrays while a command runs (or until killed).
    ///
    /// Takes a reference on every NAME, then prints exactly one line `held NAME...` on stdout.
    /// With `-- CMD ARG...`: runs CMD (stdio inherited), releases the references when it exits
    /// and exits with its status (128+N if it was killed by signal N; 127 if CMD was not
    /// found, 126 if it could not be started). SIGTERM, SIGINT or SIGHUP sent to dafctl with
    /// kill(2) is forwarded to CMD (a Ctrl-C on the terminal reaches CMD directly).
    /// Without CMD: holds until SIGTERM, SIGINT or SIGHUP, then releases and exits 0.
    /// If dafctl is killed otherwise (SIGKILL), its references are reaped by the next gc.
    ///
    /// This is how programs reading arrays by the spec alone (shell, Python's numpy.memmap)
    /// take part in reference counting: the arrays' files are not deleted while CMD runs.
    #[command(after_help = "Example: dafctl hold /dev/shm/cells cells/umis -- python3 read.py")]
    Hold {
        /// The container.
        dir: PathBuf,
        /// Names of the arrays to hold.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Command to run while the references are held (after `--`).
        #[arg(last = true, value_name = "CMD")]
        cmd: Vec<OsString>,
    },

    /// Garbage-collect: reap dead holders, run due deletions, clean stale staging files.
    ///
    /// Also rolls forward publishes and removes interrupted by a crash. Exits 1 if one of them
    /// could not be recovered (each is listed with its error).
    ///
    /// With --evict, then evicts (removes) unreferenced `cached` entries, least recently
    /// released first, until the container is within its limits (`dafctl config`); held,
    /// persistent and scratch entries are never evicted. Without limits nothing is evicted.
    #[command(
        after_help = "Example: dafctl gc /dev/shm/cells --json\n         dafctl gc /dev/shm/cells --evict"
    )]
    Gc {
        /// The container.
        dir: PathBuf,
        /// Also evict unreferenced cached entries until the container is within its limits.
        #[arg(long)]
        evict: bool,
        /// Print the report as one JSON object (recovered, failed, reaped_sessions, deleted,
        /// staging_removed, deferred, evicted: [{name, bytes}], empty without --evict).
        #[arg(long)]
        json: bool,
    },

    /// Show or set a container's limits: capacity and free space floor; and its bytes.
    ///
    /// Shows the capacity (the most bytes the data files of all entries, with the staged files
    /// of writes in flight, may take together) and min_free (the free space to keep on the file
    /// system), each `none` when unset, and the bytes of the entries, reserved by writes in
    /// flight, and evictable (unreferenced `cached` entries). Before a write would go over a
    /// limit, unreferenced cached entries are evicted, least recently released first; if that
    /// cannot make room, the write fails. Without --capacity or --min-free the container is
    /// opened read-only.
    ///
    /// SIZE: a number of bytes with an optional unit K, M, G or T (either case), powers of 1024,
    /// optionally followed by i, B or iB (1G = 1Gi = 1GB = 1GiB = 1073741824 bytes); a fraction
    /// needs a unit and is rounded down to whole bytes (1.5GiB); `none` clears the limit. A bad
    /// SIZE is a usage error (exit 2). Lowering the capacity evicts nothing at once: the next
    /// write evicts what it needs, `dafctl gc --evict` evicts now.
    #[command(
        after_help = "Example: dafctl config /dev/shm/cells --capacity 400G --min-free 1.5GiB\n         dafctl config /dev/shm/cells --capacity none --json"
    )]
    Config {
        /// The container.
        dir: PathBuf,
        /// Set the capacity (SIZE, or none to clear it).
        #[arg(long, value_name = "SIZE", value_parser = cmd::config::parse_size, allow_negative_numbers = true)]
        capacity: Option<cmd::config::SizeArg>,
        /// Set the free space to keep on the file system (SIZE, or none to clear it).
        #[arg(long, value_name = "SIZE", value_parser = cmd::config::parse_size, allow_negative_numbers = true)]
        min_free: Option<cmd::config::SizeArg>,
        /// Print one JSON object: {capacity, min_free (null when unset), entries, reserved,
        /// evictable} (bytes).
        #[arg(long)]
        json: bool,
    },

    /// Set what happens to an array after its last release: persistent, scratch or cached.
    ///
    /// persistent: kept until removed (the default). scratch: removed when its last reference
    /// is released, once it has been held (at once if it was held before and nobody holds it
    /// now). cached: kept after its last release, but evicted, least recently released first,
    /// when a write needs its room under the container's limits or by `dafctl gc --evict`.
    /// `dafctl ls` shows each array's lifecycle.
    #[command(after_help = "Example: dafctl lifecycle /dev/shm/cells cells/umis cached")]
    Lifecycle {
        /// The container.
        dir: PathBuf,
        /// The array name.
        name: String,
        /// persistent, scratch or cached.
        #[arg(value_name = "LIFECYCLE", value_parser = cmd::lifecycle::parse_lifecycle)]
        lifecycle: dafstore::Lifecycle,
    },

    /// Check a container's files and catalog against each other and the spec.
    ///
    /// Exit codes: 0 clean, 1 problems found and all fixed (--repair), 4 problems left,
    /// 8 operational error (cannot open the container, usage error).
    /// Every problem message names the file concerned. --repair never deletes array data.
    /// daf's own files (__daf__.yaml, 0-d items, .csv files: SPEC [A1]) are not problems.
    ///
    /// A missing or damaged catalog (.dafstore/catalog.sqlite) is reported; --repair rebuilds it
    /// from the array files and their metadata, keeping the damaged one as
    /// .dafstore/catalog.sqlite.damaged-<ms>. The rebuild is refused while processes have the
    /// container open; it loses references, scratch flags and deferred removals (SPEC [Q2]).
    /// Without --repair the container is opened read-only (works on read-only media).
    #[command(after_help = "Example: dafctl fsck /dev/shm/cells --deep --repair")]
    Fsck {
        /// The container.
        dir: PathBuf,
        /// Fix what can be fixed safely (never deleting array data).
        #[arg(long)]
        repair: bool,
        /// Also read every byte: verify checksums, sparse invariants and bool bytes.
        #[arg(long)]
        deep: bool,
        /// Print one JSON object: {arrays_checked, problems: [{kind, path, name, message,
        /// fixed}], daf_files: [{path, kind}], exit_code}.
        #[arg(long)]
        json: bool,
    },

    /// Turn an existing daf directory (no catalog) into a container.
    ///
    /// Registers every valid array found (never changing a byte of its files); arrays already
    /// registered are left alone, and so are daf's own files (its __daf__.yaml marker, 0-d items
    /// such as created.yaml, .csv files: SPEC [A1]), which are listed as daf files. Prints the
    /// adopted names and every refused file with the reason. Exits 0 if nothing was refused, 1
    /// otherwise.
    #[command(after_help = "Example: dafctl adopt ./my-daf-dir")]
    Adopt {
        /// The daf directory (or container) to adopt.
        dir: PathBuf,
    },

    /// Import a .npy, .npz (scipy.sparse.save_npz or plain), Feather/Arrow IPC or Parquet file as NAME.
    ///
    /// The format comes from the extension (.npy, .npz, .feather, .arrow, .ipc, .parquet, .pq) or
    /// --format.
    /// .npy: numpy's format 1.0-3.0; big-endian and Fortran order are converted; large files are
    /// streamed into a reserved array. .npz from scipy.sparse.save_npz becomes a sparse array
    /// (csr: rows, csc: columns); a plain .npz imports each entry as NAME/<key>. Feather/Arrow:
    /// one fixed-width column (--column, default: the only one); LZ4/ZSTD are decompressed;
    /// columns with nulls need --fill; strings and nested types are refused; a file of several
    /// columns becomes a table, and so does a one-column file with --table. Parquet: the file becomes a table (any compression; read 64k rows
    /// at a time; the dictionaries of categorical columns are unified across row groups; --column
    /// and --fill do not apply). An
    /// existing NAME is replaced atomically.
    #[command(
        after_help = "Example: dafctl import /dev/shm/cells cells/umis umis.npy\n         dafctl import /dev/shm/cells x table.feather --column x --fill 0\n         dafctl import /dev/shm/cells names names.feather --table\n         dafctl import /dev/shm/cells obs obs.parquet"
    )]
    Import {
        /// The container.
        dir: PathBuf,
        /// The array name to create.
        name: String,
        /// The file to read.
        file: PathBuf,
        /// npy, npz, feather or parquet (arrow and ipc name feather too, pq parquet; default: from
        /// the extension).
        #[arg(long, value_parser = cmd::transfer::parse_format)]
        format: Option<dafstore::Format>,
        /// Feather/Arrow: the column to import (default: the only column).
        #[arg(long)]
        column: Option<String>,
        /// Feather/Arrow: the value replacing nulls (without it, nulls are refused).
        #[arg(long)]
        fill: Option<f64>,
        /// Feather/Arrow: make a table even of a one-column file (strings, nulls, any column
        /// type a table holds); not with --column or --fill.
        #[arg(long)]
        table: bool,
    },

    /// Export NAME to a .npy (dense), .npz (sparse, loadable by scipy.sparse.load_npz), Feather
    /// or Parquet file.
    ///
    /// The format comes from the extension or --format. Feather is written uncompressed and 64-byte
    /// aligned; Parquet with ZSTD, the Arrow schema embedded, row groups of at most 1M rows; both
    /// readable by pyarrow and polars (tables, and dense arrays as one column). An existing FILE
    /// is replaced by rename, never truncated in place.
    #[command(
        after_help = "Example: dafctl export /dev/shm/cells cells/umis umis.npy\n         dafctl export /dev/shm/cells obs obs.parquet"
    )]
    Export {
        /// The container.
        dir: PathBuf,
        /// The array to export.
        name: String,
        /// The file to write.
        file: PathBuf,
        /// npy, npz, feather or parquet (arrow and ipc name feather too, pq parquet; default: from
        /// the extension).
        #[arg(long, value_parser = cmd::transfer::parse_format)]
        format: Option<dafstore::Format>,
    },

    /// Write a dense and a sparse array to a container, reopen them, and show what happened.
    ///
    /// Example: `dafctl demo` (a temporary container, removed at the end) or
    /// `dafctl demo /dev/shm/mydemo` (kept).
    Demo {
        /// Container directory to use (created if missing, kept afterwards). Default: a temporary
        /// directory under /dev/shm (or the system temp dir), removed at the end.
        dir: Option<PathBuf>,
    },

    /// A worker process of `dafctl demo` (internal).
    #[command(hide = true)]
    DemoWorker {
        /// The container.
        dir: PathBuf,
        /// Arrays to hold.
        names: Vec<String>,
    },
}

impl Command {
    /// The container directory the command works on, for the hints after an error.
    fn dir(&self) -> Option<&std::path::Path> {
        match self {
            Command::Init { dir }
            | Command::Ls { dir, .. }
            | Command::Info { dir, .. }
            | Command::Rm { dir, .. }
            | Command::Holders { dir, .. }
            | Command::Hold { dir, .. }
            | Command::Gc { dir, .. }
            | Command::Config { dir, .. }
            | Command::Lifecycle { dir, .. }
            | Command::Fsck { dir, .. }
            | Command::Adopt { dir }
            | Command::Import { dir, .. }
            | Command::Export { dir, .. }
            | Command::DemoWorker { dir, .. } => Some(dir),
            Command::Demo { dir } => dir.as_deref(),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let code = match e.exit_code() {
                2 if invoked_fsck() => cmd::fsck::EXIT_OPERATIONAL,
                c => u8::try_from(c).unwrap_or(2),
            };
            return ExitCode::from(code);
        }
    };
    let dir = cli.command.dir().map(PathBuf::from);
    let (result, error_code) = match cli.command {
        Command::Init { dir } => (cmd::init::run(&dir), 1),
        Command::Ls { dir, json } => (cmd::ls::run(&dir, json), 1),
        Command::Info { dir, name, json } => (cmd::info::run(&dir, &name, json), 1),
        Command::Rm { dir, names } => (cmd::rm::run(&dir, &names), 1),
        Command::Holders { dir, json } => (cmd::holders::run(&dir, json), 1),
        Command::Hold { dir, names, cmd } => (cmd::hold::run(&dir, &names, &cmd), 1),
        Command::Gc { dir, evict, json } => (cmd::gc::run(&dir, evict, json), 1),
        Command::Config {
            dir,
            capacity,
            min_free,
            json,
        } => (cmd::config::run(&dir, capacity, min_free, json), 1),
        Command::Lifecycle {
            dir,
            name,
            lifecycle,
        } => (cmd::lifecycle::run(&dir, &name, lifecycle), 1),
        Command::Fsck {
            dir,
            repair,
            deep,
            json,
        } => (
            cmd::fsck::run(&dir, repair, deep, json),
            cmd::fsck::EXIT_OPERATIONAL,
        ),
        Command::Adopt { dir } => (cmd::adopt::run(&dir), 1),
        Command::Import {
            dir,
            name,
            file,
            format,
            column,
            fill,
            table,
        } => (
            cmd::transfer::import(&dir, &name, &file, format, column, fill, table),
            1,
        ),
        Command::Export {
            dir,
            name,
            file,
            format,
        } => (cmd::transfer::export(&dir, &name, &file, format), 1),
        Command::Demo { dir } => (cmd::demo::run(dir).map(|()| 0), 1),
        Command::DemoWorker { dir, names } => (cmd::demo::worker(&dir, &names).map(|()| 0), 1),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!(
                "dafctl: error: {}",
                dafstore::escape_for_display(&e.to_string())
            );
            if let Some(hint) = cmd::common::hint(e.as_ref(), dir.as_deref()) {
                eprintln!("dafctl: hint: {hint}");
            }
            ExitCode::from(error_code)
        }
    }
}

/// Whether the (unparsable) command line names the `fsck` subcommand, whose usage errors exit 8.
fn invoked_fsck() -> bool {
    std::env::args_os()
        .skip(1)
        .find(|a| !a.to_string_lossy().starts_with('-'))
        .is_some_and(|a| a == "fsck")
}
