//! Problems found in the input, and the error type of the importer.

use std::fmt;
use std::path::PathBuf;

/// At most this many problems are kept; the rest are only counted, since a
/// file with a systematic fault (swapped axes, say) has one per feature.
pub const MAX_PROBLEMS: usize = 1_000;

/// One thing wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The file name (without its folder), such as `grids.geojson`.
    pub layer: String,
    /// The 1-based position of the feature in its layer, or 0 for a problem of
    /// the whole layer (unreadable file, missing field).
    pub feature: u64,
    /// The source field concerned, as spelled in the file (`WGBM`), if any.
    pub field: Option<String>,
    /// What is wrong, as a sentence a data steward can act on.
    pub reason: String,
}

impl Problem {
    /// A problem of one feature.
    #[must_use]
    pub fn feature(
        layer: &str,
        feature: u64,
        field: Option<&str>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            layer: layer.to_owned(),
            feature,
            field: field.map(str::to_owned),
            reason: reason.into(),
        }
    }

    /// A problem of a whole layer.
    #[must_use]
    pub fn layer(layer: &str, field: Option<&str>, reason: impl Into<String>) -> Self {
        Self::feature(layer, 0, field, reason)
    }
}

impl fmt::Display for Problem {
    /// `grids.geojson feature 17 (WGBM): grid code "37068100100" must be 15 digits, …`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.layer)?;
        if self.feature > 0 {
            write!(f, " feature {}", self.feature)?;
        }
        if let Some(field) = &self.field {
            write!(f, " ({field})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Why an import failed. Nothing is written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input breaks the contract; `problems` lists the first
    /// [`MAX_PROBLEMS`] in layer and feature order, `omitted` counts the rest.
    #[error("input rejected: {} problem(s){}", .problems.len() + .omitted, omitted_note(*.omitted))]
    Rejected {
        problems: Vec<Problem>,
        omitted: usize,
    },
    /// A file could not be found or read from disk.
    #[error("reading {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// GDAL failed on a file it had opened.
    #[error("reading {} through GDAL", path.display())]
    Gdal {
        path: PathBuf,
        #[source]
        source: gdal::errors::GdalError,
    },
    /// A database statement failed.
    #[error("{what}")]
    Database {
        what: String,
        #[source]
        source: sqlx::Error,
    },
    /// A checked feature could not be encoded for COPY (a bug, not bad input:
    /// every feature reaching the writer passed the checks).
    #[error("encoding feature {feature} for {table}: {reason}")]
    Encode {
        table: &'static str,
        feature: u64,
        reason: String,
    },
    /// The mode cannot apply to a layer kind (upsert of roads or rider
    /// reports, which have no code).
    #[error("--mode {mode} needs a code to match rows by, and {entity} have none; use --mode insert or --mode replace")]
    ModeNotSupported {
        mode: crate::ImportMode,
        entity: crate::Entity,
    },
    /// The rejects file could not be written.
    #[error("writing the rejects file {}", path.display())]
    Rejects {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file reader stopped unexpectedly.
    #[error("reading {}: the reader task failed", path.display())]
    Reader {
        path: PathBuf,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl ImportError {
    pub(crate) fn database(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> ImportError {
        let what = what.into();
        move |source| ImportError::Database { what, source }
    }

    /// The problems of a rejected input; empty for other errors.
    #[must_use]
    pub fn problems(&self) -> &[Problem] {
        match self {
            ImportError::Rejected { problems, .. } => problems,
            _ => &[],
        }
    }
}

fn omitted_note(omitted: usize) -> String {
    if omitted == 0 {
        String::new()
    } else {
        format!(", only the first {MAX_PROBLEMS} are listed")
    }
}

/// Problems collected over a whole import, reported together.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<(usize, Problem)>,
}

impl Problems {
    /// Records a problem; `layer_order` sorts problems by the position of
    /// their source in the import.
    pub(crate) fn push(&mut self, layer_order: usize, problem: Problem) {
        self.list.push((layer_order, problem));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether a problem concerns a whole layer rather than one feature.
    pub(crate) fn has_layer_problems(&self) -> bool {
        self.list.iter().any(|(_, problem)| problem.feature == 0)
    }

    /// The features with at least one problem, as (layer order, feature number).
    pub(crate) fn rejected_features(&self) -> std::collections::HashSet<(usize, u64)> {
        self.list
            .iter()
            .filter(|(_, problem)| problem.feature > 0)
            .map(|(order, problem)| (*order, problem.feature))
            .collect()
    }

    /// Every problem, uncapped, in layer and feature order.
    pub(crate) fn sorted(&self) -> Vec<(usize, Problem)> {
        let mut list = self.list.clone();
        // A stable sort keeps the order in which checks ran within one feature.
        list.sort_by_key(|(order, problem)| (*order, problem.feature));
        list
    }

    /// `Ok(())` when no problem was found, else the sorted, capped rejection.
    pub(crate) fn into_result(self) -> Result<(), ImportError> {
        if self.list.is_empty() {
            return Ok(());
        }
        let list = self.sorted();
        let omitted = list.len().saturating_sub(MAX_PROBLEMS);
        let problems = list
            .into_iter()
            .take(MAX_PROBLEMS)
            .map(|(_, problem)| problem)
            .collect();
        Err(ImportError::Rejected { problems, omitted })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_layer_feature_and_field() {
        let problem = Problem::feature(
            "grids.geojson",
            17,
            Some("WGBM"),
            "grid code \"37068100100\" must be 15 digits, found 11 characters",
        );
        assert_eq!(
            problem.to_string(),
            "grids.geojson feature 17 (WGBM): grid code \"37068100100\" must be 15 digits, found 11 characters"
        );
        let layer = Problem::layer("grids.shp", None, "cannot be opened");
        assert_eq!(layer.to_string(), "grids.shp: cannot be opened");
    }

    #[test]
    fn problems_are_sorted_and_capped() {
        let mut problems = Problems::default();
        for feature in (1..=MAX_PROBLEMS as u64 + 5).rev() {
            problems.push(1, Problem::feature("b", feature, None, "bad"));
        }
        problems.push(0, Problem::feature("a", 9, None, "bad"));
        let Err(ImportError::Rejected { problems, omitted }) = problems.into_result() else {
            panic!("expected a rejection");
        };
        assert_eq!(problems.len(), MAX_PROBLEMS);
        assert_eq!(omitted, 6);
        assert_eq!(problems[0].layer, "a");
        assert_eq!(problems[1].feature, 1);
        assert!(Problems::default().into_result().is_ok());
    }
}
