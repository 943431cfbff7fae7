//! Layer 4, the protocol: sessions, lock stripes, reference counting, publish, removal,
//! recovery and fork (SPEC sections 7–8), as methods of [`Shared`], the state every handle on
//! one container in a process shares.

pub(crate) mod batch;
pub(crate) mod budget;
pub(crate) mod clock;
pub(crate) mod fork;
pub(crate) mod load;
pub(crate) mod publish;
pub(crate) mod recovery;
pub(crate) mod refs;
pub(crate) mod remove;
pub(crate) mod session;
pub(crate) mod shared;
pub(crate) mod slots;
pub(crate) mod stripes;

pub use recovery::{GcFailure, GcReport, RecoveryFailure, RecoveryReport};
pub use remove::Removal;
pub(crate) use shared::Shared;
