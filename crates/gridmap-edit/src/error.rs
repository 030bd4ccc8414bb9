/// Why a write was not applied. Nothing of a refused write is left in the
/// database: every variant is returned before the transaction commits.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{entity} {code} not found")]
    NotFound { entity: &'static str, code: String },
    /// The request itself is wrong: a malformed code, a missing field, a
    /// geometry that is not a polygon.
    #[error("{0}")]
    Invalid(String),
    /// The request contradicts the data: a code already taken, an object
    /// still referenced.
    #[error("{0}")]
    Conflict(String),
    /// The write was based on versions that have moved on; `current` maps
    /// each object's code to its current version.
    #[error("{message}")]
    Stale {
        message: String,
        current: serde_json::Value,
    },
    /// The edit would break the seamless cover; `findings` is a GeoJSON
    /// FeatureCollection of the offending areas with `kind`, `codes` and
    /// `area_m2`.
    #[error("{message}")]
    Refused {
        message: String,
        findings: serde_json::Value,
    },
    #[error("database error while editing")]
    Database(#[from] sqlx::Error),
}

impl EditError {
    pub(crate) fn not_found(entity: &'static str, code: &str) -> Self {
        EditError::NotFound {
            entity,
            code: code.to_owned(),
        }
    }
}
