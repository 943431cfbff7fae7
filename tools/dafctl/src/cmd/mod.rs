//! One module per command, plus `common` (tables, JSON, progress bars) shared by them.

pub mod adopt;
pub mod common;
pub mod config;
pub mod demo;
pub mod fsck;
pub mod gc;
pub mod hold;
pub mod holders;
pub mod info;
pub mod init;
pub mod lifecycle;
pub mod ls;
pub mod rm;
pub mod transfer;

/// What a command returns: its exit code, or an error (printed by `main`, which picks the code).
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;
