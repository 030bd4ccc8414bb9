//! What an import did: rows per layer, the field mapping used, and timings.

use std::time::Duration;

use crate::{Entity, ImportMode, Problem};

/// Which source field fed a database column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldUse {
    /// The database column.
    pub column: &'static str,
    /// The source field as spelled in the file, or `None` when the layer has
    /// no such field (the column then gets its constant, default or NULL).
    pub source: Option<String>,
    /// How the source field (or the constant) was chosen.
    pub origin: FieldOrigin,
    /// The value every feature got, when the mapping file gives a constant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constant: Option<String>,
}

impl FieldUse {
    /// A column no source field feeds (yet).
    #[must_use]
    pub fn unmapped(column: &'static str) -> Self {
        Self {
            column,
            source: None,
            origin: FieldOrigin::None,
            constant: None,
        }
    }
}

/// Where a column's source came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldOrigin {
    /// A name in the alias table of [`crate::fields`].
    Alias,
    /// `--field COLUMN=FIELD`.
    Flag,
    /// `[fields]` of the `--mapping` file.
    Mapping,
    /// `[constants]` of the `--mapping` file: no source field.
    Constant,
    /// Nothing feeds the column: its default or NULL.
    None,
}

impl std::fmt::Display for FieldUse {
    /// `code←BH_WG (mapping)`, `kind="basic" (constant)`, `name←WGMC`, `status←-`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.source, &self.constant, self.origin) {
            (_, Some(value), _) => write!(f, "{}={value:?} (constant)", self.column),
            (Some(source), _, FieldOrigin::Mapping) => {
                write!(f, "{}←{source} (mapping)", self.column)
            }
            (Some(source), _, FieldOrigin::Flag) => write!(f, "{}←{source} (--field)", self.column),
            (Some(source), _, _) => write!(f, "{}←{source}", self.column),
            (None, None, _) => write!(f, "{}←-", self.column),
        }
    }
}

/// One source file's part of an import.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerReport {
    pub entity: Entity,
    /// The file name, as used in problems.
    pub layer: String,
    /// Features read from the file.
    pub features: u64,
    /// Rows inserted or changed in the entity's table (in a dry run: rows
    /// that were written and then rolled back). In upsert and replace modes,
    /// rows already identical are not counted.
    pub rows: u64,
    /// The source CRS as found.
    pub source_crs: String,
    /// Whether geometries were transformed to EPSG:4490.
    pub transformed: bool,
    /// The field mapping, one entry per column.
    pub fields: Vec<FieldUse>,
    /// Source fields that identify a person and were dropped, not imported
    /// (the phone or name columns of rider reports), as spelled in the file.
    pub dropped_personal_fields: Vec<String>,
}

/// The outcome of a successful import.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    /// One entry per source, in load (dependency) order.
    pub layers: Vec<LayerReport>,
    /// Whether the transaction was rolled back instead of committed.
    pub dry_run: bool,
    pub mode: ImportMode,
    /// Rows deleted by `--mode replace` because the import did not contain them.
    pub deleted: u64,
    /// Features left out by `--skip-invalid`, with or without a problem of their own.
    pub skipped: u64,
    /// Why they were left out: the first [`crate::MAX_PROBLEMS`] problems.
    pub skipped_problems: Vec<Problem>,
    /// With `--repair`: each invalid area that was repaired and into what
    /// (`Ring Self-intersection at (…) repaired into 2 polygons of … m² in all`).
    pub repaired: Vec<Problem>,
    /// Time spent reading the files.
    #[serde(serialize_with = "as_seconds")]
    pub read_time: Duration,
    /// Time spent on checks that need the database (duplicates, parents,
    /// geometry validity).
    #[serde(serialize_with = "as_seconds")]
    pub check_time: Duration,
    /// Time spent inserting and committing.
    #[serde(serialize_with = "as_seconds")]
    pub write_time: Duration,
    /// Wall-clock time of the whole import.
    #[serde(serialize_with = "as_seconds")]
    pub elapsed: Duration,
}

impl ImportReport {
    /// Features read over all layers.
    #[must_use]
    pub fn features(&self) -> u64 {
        self.layers.iter().map(|layer| layer.features).sum()
    }

    /// Rows inserted over all layers.
    #[must_use]
    pub fn rows(&self) -> u64 {
        self.layers.iter().map(|layer| layer.rows).sum()
    }

    /// Rows inserted into `entity`'s table.
    #[must_use]
    pub fn rows_of(&self, entity: Entity) -> u64 {
        self.layers
            .iter()
            .filter(|layer| layer.entity == entity)
            .map(|layer| layer.rows)
            .sum()
    }

    /// Throughput over the whole import.
    #[must_use]
    pub fn features_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.features() as f64 / seconds
        } else {
            0.0
        }
    }
}

fn as_seconds<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}
