//! One module per command.

pub mod demo;
