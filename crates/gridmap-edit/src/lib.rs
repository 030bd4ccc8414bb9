//! Planners' edits of grids and stations, each one transaction that is
//! validated before it commits, versioned and audited.
//!
//! - **Validation** (`cover.rs`): after every edit the grids of a community
//!   still form a seamless cover: no overlap between grids, no grid outside
//!   its community, and no area that was covered before left uncovered. Hand
//!   drawing never hits a neighbour's edge exactly, so new shapes are first
//!   snapped to the neighbours' and the community's vertices within the snap
//!   tolerance (default 0.5 m); what is left is judged by width: a
//!   discrepancy narrower than twice the tolerance is settled (clipped or
//!   filled), a wider one refuses the edit with its area as GeoJSON.
//! - **Concurrency**: every edit of a community's grids first locks the
//!   community's row, so edits of neighbouring grids run one after the other
//!   and each validates against the committed state of its neighbours. Every
//!   object has a version (migration 0003: one sequence, renewed by a trigger
//!   on every update); a write names the versions it was based on
//!   ([`Expected`]) and is refused as stale when one has moved on.
//! - **History**: every changed row gets an `audit_log` row with the whole
//!   object before and after; a revert is an ordinary, validated, audited
//!   write of a former state.
//!
//! The crate speaks SQL and GeoJSON, never HTTP: the server maps [`EditError`]
//! to status codes and checks the caller's role and scope before calling.

pub mod areas;
mod audit;
mod changes;
mod children;
mod cover;
mod error;
mod geometry;
pub mod grids;
pub mod stations;

pub use audit::{history, state_of, Entity, HistoryEntry};
pub use changes::{change_codes, revert_change};
pub use error::EditError;

/// Validation parameters.
#[derive(Debug, Clone, Copy)]
pub struct Parameters {
    /// Vertices closer than this to a neighbour's or the community's boundary
    /// are snapped onto it, and discrepancies narrower than twice this are
    /// settled instead of refused. Metres.
    pub snap_tolerance_m: f64,
    /// Accept a new gap in the community's cover (an administrator's
    /// deliberate decision, e.g. area handed to another community; and a
    /// revert, which may uncover what the reverted change covered).
    pub allow_new_gap: bool,
}

impl Default for Parameters {
    fn default() -> Self {
        Self {
            snap_tolerance_m: 0.5,
            allow_new_gap: false,
        }
    }
}

/// The versions a write was based on (from HTTP `If-Match`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// `If-Match: *`: whatever the current versions are.
    Any,
    /// Every object the write changes must currently have one of these.
    Versions(Vec<i64>),
}

impl Expected {
    fn admits(&self, version: i64) -> bool {
        match self {
            Expected::Any => true,
            Expected::Versions(versions) => versions.contains(&version),
        }
    }
}

/// Who makes a write, as the audit log records it.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub name: &'a str,
}

/// What a write changed: the objects as they are after it (GeoJSON Features
/// with `version` among their properties; deleted objects are absent) and
/// the id shared by its audit rows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    pub change_id: i64,
    pub features: Vec<serde_json::Value>,
    /// Codes of objects the write deleted.
    pub deleted: Vec<String>,
    /// Grid units and buildings that moved to another grid and were given
    /// codes under it: `(old code, new code)`.
    pub recoded: Vec<(String, String)>,
    /// What the write did otherwise than asked, in words for the caller
    /// (a revert that kept a roster's worker, say); absent when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}
