//! How an import runs: the source CRS override, the write mode, what to do
//! with invalid features, and where progress goes.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use gridmap_crs::LonLatCrs;

/// A source CRS given on the command line, overriding what the files declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceCrs {
    /// Any CRS GDAL knows by EPSG code (Gauss-Krüger zones 4513–4554, 3857, …).
    Epsg(u32),
    /// A lon/lat offset system PROJ lacks (GCJ-02 or BD-09); every coordinate
    /// is converted with [`LonLatCrs::to_cgcs2000`].
    Offset(LonLatCrs),
}

/// A value that names no CRS the importer can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a CRS; expected EPSG:<code> (such as EPSG:4528), gcj02 or bd09")]
pub struct UnknownSourceCrs(pub String);

impl FromStr for SourceCrs {
    type Err = UnknownSourceCrs;

    /// Parses `EPSG:4528` (or `4528`), `gcj02` and `bd09`, ignoring case.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownSourceCrs(value.to_owned());
        // LonLatCrs also parses 4490 and 4326; those are plain EPSG codes here
        // so that every geographic CRS goes through the same GDAL path.
        if let Ok(crs @ (LonLatCrs::Gcj02 | LonLatCrs::Bd09)) = LonLatCrs::parse(value) {
            return Ok(Self::Offset(crs));
        }
        let lower = value.trim().to_ascii_lowercase();
        let digits = lower.strip_prefix("epsg:").unwrap_or(&lower);
        digits
            .parse::<u32>()
            .ok()
            .filter(|code| *code > 0)
            .map(Self::Epsg)
            .ok_or_else(unknown)
    }
}

impl fmt::Display for SourceCrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Epsg(code) => write!(f, "EPSG:{code}"),
            Self::Offset(LonLatCrs::Bd09) => f.write_str("BD-09"),
            Self::Offset(_) => f.write_str("GCJ-02"),
        }
    }
}

/// What happens to rows already in the database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Only new codes: a code already stored is a problem.
    #[default]
    Insert,
    /// Insert new codes and update stored ones whose values differ; a row that
    /// is already identical is not touched, so a re-run changes nothing.
    Upsert,
    /// Delete the stored rows of each imported entity that the import does not
    /// contain, then upsert. Roads, which have no code, are emptied first.
    Replace,
}

/// A mode name that is none of insert, upsert, replace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an import mode; expected insert, upsert or replace")]
pub struct UnknownMode(pub String);

impl FromStr for ImportMode {
    type Err = UnknownMode;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "insert" => Ok(Self::Insert),
            "upsert" => Ok(Self::Upsert),
            "replace" => Ok(Self::Replace),
            _ => Err(UnknownMode(value.to_owned())),
        }
    }
}

impl fmt::Display for ImportMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Insert => "insert",
            Self::Upsert => "upsert",
            Self::Replace => "replace",
        })
    }
}

/// Receives progress from a running import; the binary draws a bar with it.
pub trait Progress: Send + Sync {
    /// A new stage starts (`reading`, `checking`, `writing`), with the number
    /// of features it will process when known.
    fn stage(&self, name: &'static str, total: Option<u64>);
    /// `count` more features were processed in the current stage.
    fn advance(&self, count: u64);
}

/// How to import.
#[derive(Clone, Default)]
pub struct ImportOptions {
    /// Run every check and every write, then roll back: the report shows what
    /// would be loaded and nothing is written.
    pub dry_run: bool,
    /// The source CRS of every file, overriding what the files declare.
    pub crs: Option<SourceCrs>,
    pub mode: ImportMode,
    /// Load the valid features and report the rejected ones instead of
    /// rejecting the whole import. Problems of a whole layer (a missing
    /// required field, an unreadable file) still reject it.
    pub skip_invalid: bool,
    /// Where to write the rejected features as a GeoJSON FeatureCollection;
    /// written whether or not the import proceeds.
    pub rejects: Option<PathBuf>,
    /// The attribute encoding of shapefiles that have no `.cpg` (`CP936`,
    /// `GB18030`), passed to GDAL as the dataset's `ENCODING` open option.
    pub encoding: Option<String>,
    /// Source fields named per column (`class` ← `Layer` for a DXF drawing),
    /// tried before the alias table; for files whose field names it does
    /// not know.
    pub field_map: Vec<(String, String)>,
    /// A mapping file's fields, value translations and constants, applied
    /// before `field_map` and the alias table (see [`crate::Mapping`]).
    pub mapping: Option<crate::Mapping>,
    /// Accept coordinates anywhere on earth instead of only in China's extent
    /// (they must still be degrees). For foreign test and benchmark data
    /// such as the Helsinki OpenStreetMap extract.
    pub outside_china: bool,
    /// Repair invalid areas with PostGIS `ST_MakeValid` instead of rejecting
    /// them; the report lists every repair.
    pub repair: bool,
    pub progress: Option<Arc<dyn Progress>>,
}

impl fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportOptions")
            .field("dry_run", &self.dry_run)
            .field("crs", &self.crs)
            .field("mode", &self.mode)
            .field("skip_invalid", &self.skip_invalid)
            .field("rejects", &self.rejects)
            .field("encoding", &self.encoding)
            .field("field_map", &self.field_map)
            .field("mapping", &self.mapping)
            .field("outside_china", &self.outside_china)
            .field("repair", &self.repair)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl ImportOptions {
    pub(crate) fn stage(&self, name: &'static str, total: Option<u64>) {
        if let Some(progress) = &self.progress {
            progress.stage(name, total);
        }
    }

    pub(crate) fn advance(&self, count: u64) {
        if let Some(progress) = &self.progress {
            progress.advance(count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crs_values_parse() {
        assert_eq!("EPSG:4528".parse(), Ok(SourceCrs::Epsg(4528)));
        assert_eq!("epsg:3857".parse(), Ok(SourceCrs::Epsg(3857)));
        assert_eq!("4490".parse(), Ok(SourceCrs::Epsg(4490)));
        assert_eq!("GCJ-02".parse(), Ok(SourceCrs::Offset(LonLatCrs::Gcj02)));
        assert_eq!("bd09".parse(), Ok(SourceCrs::Offset(LonLatCrs::Bd09)));
        assert!("mars".parse::<SourceCrs>().is_err());
        assert!("EPSG:0".parse::<SourceCrs>().is_err());
    }

    #[test]
    fn modes_parse() {
        assert_eq!("Upsert".parse(), Ok(ImportMode::Upsert));
        assert_eq!(ImportMode::default(), ImportMode::Insert);
        assert!("merge".parse::<ImportMode>().is_err());
    }
}
