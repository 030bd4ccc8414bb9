//! The vocabulary of gridmap: the administrative chain (district → street →
//! community → grid → grid unit → building), its hierarchical codes, and the
//! enumerations a grid map shows. This crate does no IO.

pub mod code;
pub mod kinds;

pub use code::{AdminCode, CodeError, Level};
pub use kinds::{GridKind, KindError, StationKind, StatusColour};

/// The CRS every geometry is stored in: CGCS2000 geographic, the national standard.
pub const STORAGE_SRID: i32 = 4490;
