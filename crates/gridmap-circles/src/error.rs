//! The one error type of the crate.

/// Why a computation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CircleError {
    /// A parameter outside the range the computation is meaningful for.
    #[error("{name} must be {range}, got {value}")]
    Parameter {
        name: &'static str,
        range: &'static str,
        value: f64,
    },
}
