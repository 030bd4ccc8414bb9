//! Writing a stored layer back out through GDAL: GeoPackage, GeoJSON or a
//! Shapefile (attributes in GBK by default), in EPSG:4490, any EPSG CRS
//! PostGIS knows, or GCJ-02/BD-09 for web maps.
//!
//! Field names are ones the importer's alias table accepts (the column names,
//! or for Shapefiles, whose field names stop at ten characters, the pinyin
//! abbreviations such as `WGBM`), so an exported file imports again without
//! any mapping. Columns that identify a person (a grid worker's name and
//! phone) are left out unless [`ExportOptions::include_personal`] is set.
//!
//! Rows are read through a server-side cursor and handed to the GDAL writer on
//! the blocking pool through a bounded channel, so memory stays flat whatever
//! the table size.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use gdal::spatial_ref::SpatialRef;
use gdal::vector::{
    Feature, FieldDefn, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType,
};
use gdal::DriverManager;
use gridmap_crs::LonLatCrs;
use gridmap_model::STORAGE_SRID;
use sqlx::{PgPool, Row as _};

use crate::fields::{FieldSpec, GeometryKind, LayerSpec, ValueKind};
use crate::{Entity, SourceCrs};

/// Rows fetched from the cursor at a time, and the channel's capacity in batches.
const FETCH_ROWS: usize = 2_000;
const CHANNEL_BATCHES: usize = 2;

/// Columns that identify a person, exported only on request.
pub const PERSONAL_COLUMNS: &[(Entity, &str)] = &[
    (Entity::Grids, "worker_name"),
    (Entity::Grids, "worker_phone"),
];

/// Layers that are personal data as a whole: exported only on request.
pub const PERSONAL_LAYERS: &[Entity] = &[Entity::GridWorkers];

/// A file format the exporter writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    GeoPackage,
    GeoJson,
    Shapefile,
}

/// A format name that is none of gpkg, geojson, shp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an export format; expected gpkg, geojson or shp")]
pub struct UnknownFormat(pub String);

impl FromStr for ExportFormat {
    type Err = UnknownFormat;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "gpkg" | "geopackage" => Ok(Self::GeoPackage),
            "geojson" | "json" => Ok(Self::GeoJson),
            "shp" | "shapefile" | "esri shapefile" => Ok(Self::Shapefile),
            _ => Err(UnknownFormat(value.to_owned())),
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::GeoPackage => "gpkg",
            Self::GeoJson => "geojson",
            Self::Shapefile => "shp",
        })
    }
}

impl ExportFormat {
    /// The format a file name's extension names.
    #[must_use]
    pub fn from_path(path: &Path) -> Option<Self> {
        path.extension()?.to_str()?.parse().ok()
    }

    fn driver(self) -> &'static str {
        match self {
            Self::GeoPackage => "GPKG",
            Self::GeoJson => "GeoJSON",
            Self::Shapefile => "ESRI Shapefile",
        }
    }
}

/// What to export and how.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub entity: Entity,
    pub format: ExportFormat,
    /// Target CRS; `None` is EPSG:4490 as stored.
    pub crs: Option<SourceCrs>,
    pub out: PathBuf,
    /// Shapefile attribute encoding written to the `.dbf` and its `.cpg`
    /// (default `CP936`, i.e. GBK); other formats are always UTF-8.
    pub encoding: Option<String>,
    /// Also export the columns in [`PERSONAL_COLUMNS`].
    pub include_personal: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    pub features: u64,
    /// The source field names written, in order.
    pub fields: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading {table} from the database")]
    Database {
        table: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("writing {path}")]
    Gdal {
        path: PathBuf,
        #[source]
        source: gdal::errors::GdalError,
    },
    #[error("the writer of {path} stopped unexpectedly")]
    Writer {
        path: PathBuf,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("{path} exists; remove it first")]
    Exists { path: PathBuf },
    #[error("converting a geometry to {crs}: {reason}")]
    Geometry { crs: String, reason: String },
    /// A layer made of personal data only (grid workers), asked for without
    /// `include_personal`.
    #[error("{entity} are personal data (names and phones); they are exported only with --include-personal")]
    Personal { entity: Entity },
}

/// One exported column: the database expression and the field written.
struct Column {
    spec: &'static FieldSpec,
    field: &'static str,
}

/// Writes every row of `options.entity` to `options.out`.
///
/// # Errors
/// [`ExportError::Exists`] if the output exists (GDAL would append or fail
/// depending on the driver), database and GDAL failures otherwise.
pub async fn export(pool: &PgPool, options: &ExportOptions) -> Result<ExportReport, ExportError> {
    if options.out.exists() {
        return Err(ExportError::Exists {
            path: options.out.clone(),
        });
    }
    if PERSONAL_LAYERS.contains(&options.entity) && !options.include_personal {
        return Err(ExportError::Personal {
            entity: options.entity,
        });
    }
    let spec = LayerSpec::of(options.entity);
    let table = options.entity.table();
    let columns: Vec<Column> = spec
        .fields
        .iter()
        .filter(|field| {
            options.include_personal || !PERSONAL_COLUMNS.contains(&(options.entity, field.column))
        })
        .map(|field| Column {
            spec: field,
            // Shapefile field names stop at ten characters; the first alias
            // is always the short pinyin abbreviation.
            field: match options.format {
                ExportFormat::Shapefile => field.aliases[0],
                _ => field.column,
            },
        })
        .collect();
    let geometry = match options.crs {
        // A roster has no geometry: NULL keeps the column positions.
        _ if spec.geometry == GeometryKind::None => "NULL::bytea".to_owned(),
        Some(SourceCrs::Epsg(code)) if !matches!(code, 4490 | 4326) => {
            format!("ST_AsBinary(ST_Transform(geom, {code}))")
        }
        _ => "ST_AsBinary(geom)".to_owned(),
    };
    let selected: Vec<String> = columns
        .iter()
        .map(|column| match column.spec.value {
            ValueKind::List => format!("array_to_string({}, '、')", column.spec.column),
            ValueKind::Integer { .. } | ValueKind::PositiveReal => column.spec.column.to_owned(),
            _ => format!("{}::text", column.spec.column),
        })
        .collect();
    let key = spec.key_columns();
    let order = if key.is_empty() {
        "id".to_owned()
    } else {
        key.join(", ")
    };
    let query = format!(
        "SELECT {}, {geometry} FROM {table} ORDER BY {order}",
        selected.join(", ")
    );

    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<ExportRow>>(CHANNEL_BATCHES);
    let writer = {
        let options = options.clone();
        let fields: Vec<(&'static str, ValueKind)> = columns
            .iter()
            .map(|column| (column.field, column.spec.value))
            .collect();
        let geometry_kind = spec.geometry;
        tokio::task::spawn_blocking(move || write_file(&options, &fields, geometry_kind, &receiver))
    };

    let database = |source| ExportError::Database { table, source };
    let mut transaction = pool.begin().await.map_err(database)?;
    sqlx::query(&format!("DECLARE export_rows NO SCROLL CURSOR FOR {query}"))
        .execute(&mut *transaction)
        .await
        .map_err(database)?;
    let fetch = format!("FETCH {FETCH_ROWS} FROM export_rows");
    loop {
        // Not prepared: the same FETCH text returns other columns for
        // another layer on the same pooled connection.
        let records = sqlx::query(&fetch)
            .persistent(false)
            .fetch_all(&mut *transaction)
            .await
            .map_err(database)?;
        if records.is_empty() {
            break;
        }
        let mut batch = Vec::with_capacity(records.len());
        for record in records {
            let mut values = Vec::with_capacity(columns.len());
            for (index, column) in columns.iter().enumerate() {
                values.push(match column.spec.value {
                    ValueKind::Integer { .. } => record
                        .try_get::<Option<i32>, _>(index)
                        .map_err(database)?
                        .map(ExportValue::Integer),
                    ValueKind::PositiveReal => record
                        .try_get::<Option<f64>, _>(index)
                        .map_err(database)?
                        .map(ExportValue::Real),
                    _ => record
                        .try_get::<Option<String>, _>(index)
                        .map_err(database)?
                        .filter(|text| !text.is_empty())
                        .map(ExportValue::Text),
                });
            }
            let mut wkb: Option<Vec<u8>> = record.try_get(columns.len()).map_err(database)?;
            if let (Some(SourceCrs::Offset(crs)), Some(wkb)) = (options.crs, wkb.as_mut()) {
                shift_wkb(wkb, crs)?;
            }
            batch.push(ExportRow { values, wkb });
        }
        if sender.send(batch).is_err() {
            // The writer stopped on an error, which awaiting it returns below.
            break;
        }
    }
    drop(sender);
    transaction.rollback().await.map_err(database)?;
    let written = writer.await.map_err(|source| ExportError::Writer {
        path: options.out.clone(),
        source,
    })??;
    tracing::info!(
        table,
        features = written,
        out = %options.out.display(),
        "exported"
    );
    Ok(ExportReport {
        features: written,
        fields: columns
            .iter()
            .map(|column| column.field.to_owned())
            .collect(),
    })
}

enum ExportValue {
    Integer(i32),
    Real(f64),
    Text(String),
}

struct ExportRow {
    values: Vec<Option<ExportValue>>,
    /// `None` for a layer without geometry.
    wkb: Option<Vec<u8>>,
}

/// Moves every coordinate from CGCS2000 into `crs`.
fn shift_wkb(wkb: &mut [u8], crs: LonLatCrs) -> Result<(), ExportError> {
    let mut position = 0;
    crate::read::map_wkb_points(wkb, &mut position, &|lon, lat| crs.from_cgcs2000(lon, lat))
        .map_err(|reason| ExportError::Geometry {
            crs: SourceCrs::Offset(crs).to_string(),
            reason,
        })
}

/// Creates the file and writes the batches `receiver` delivers; returns the
/// number of features.
fn write_file(
    options: &ExportOptions,
    fields: &[(&'static str, ValueKind)],
    geometry_kind: GeometryKind,
    receiver: &std::sync::mpsc::Receiver<Vec<ExportRow>>,
) -> Result<u64, ExportError> {
    let gdal = |source| ExportError::Gdal {
        path: options.out.clone(),
        source,
    };
    let driver = DriverManager::get_driver_by_name(options.format.driver()).map_err(gdal)?;
    let mut dataset = driver.create_vector_only(&options.out).map_err(gdal)?;
    let srs = match options.crs {
        Some(SourceCrs::Epsg(code)) => SpatialRef::from_epsg(code).map_err(gdal)?,
        // GCJ-02 and BD-09 have no EPSG code; web maps read them as WGS 84
        // degrees, and a re-import names them with --crs.
        Some(SourceCrs::Offset(_)) => SpatialRef::from_epsg(4326).map_err(gdal)?,
        None => SpatialRef::from_epsg(STORAGE_SRID.unsigned_abs()).map_err(gdal)?,
    };
    let encoding = format!(
        "ENCODING={}",
        options.encoding.as_deref().unwrap_or("CP936")
    );
    let layer_options: Vec<&str> = match options.format {
        ExportFormat::Shapefile => vec![encoding.as_str()],
        // Full double precision, so a re-import finds the stored coordinates.
        ExportFormat::GeoJson => vec!["SIGNIFICANT_FIGURES=17", "RFC7946=NO"],
        ExportFormat::GeoPackage => vec![],
    };
    let layer_type = match geometry_kind {
        GeometryKind::Area => OGRwkbGeometryType::wkbMultiPolygon,
        GeometryKind::Point => OGRwkbGeometryType::wkbPoint,
        GeometryKind::Line => OGRwkbGeometryType::wkbLineString,
        GeometryKind::None => OGRwkbGeometryType::wkbNone,
    };
    let name = match options.format {
        // A shapefile's layer is named after the file whatever is asked.
        ExportFormat::Shapefile => options
            .out
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or(options.entity.as_str())
            .to_owned(),
        _ => options.entity.as_str().to_owned(),
    };
    {
        let layer = dataset
            .create_layer(LayerOptions {
                name: &name,
                srs: (geometry_kind != GeometryKind::None).then_some(&srs),
                ty: layer_type,
                options: Some(&layer_options),
            })
            .map_err(gdal)?;
        for (field, value) in fields {
            let field_type = match value {
                ValueKind::Integer { .. } => OGRFieldType::OFTInteger,
                ValueKind::PositiveReal => OGRFieldType::OFTReal,
                _ => OGRFieldType::OFTString,
            };
            let definition = FieldDefn::new(field, field_type).map_err(gdal)?;
            if options.format == ExportFormat::Shapefile && field_type == OGRFieldType::OFTString {
                // The dBase maximum: a GBK address of 100 characters still fits.
                definition.set_width(254);
            }
            definition.add_to_layer(&layer).map_err(gdal)?;
        }
    }
    let written = if options.format == ExportFormat::GeoPackage {
        // One SQLite transaction instead of one per feature.
        let transaction = dataset.start_transaction().map_err(gdal)?;
        let written = {
            let layer = transaction.layer_by_name(&name).map_err(gdal)?;
            write_features(&layer, receiver).map_err(gdal)?
        };
        transaction.commit().map_err(gdal)?;
        written
    } else {
        let layer = dataset.layer_by_name(&name).map_err(gdal)?;
        write_features(&layer, receiver).map_err(gdal)?
    };
    dataset.close().map_err(gdal)?;
    Ok(written)
}

fn write_features(
    layer: &gdal::vector::Layer<'_>,
    receiver: &std::sync::mpsc::Receiver<Vec<ExportRow>>,
) -> Result<u64, gdal::errors::GdalError> {
    let mut written = 0;
    for batch in receiver {
        for row in batch {
            let mut feature = Feature::new(layer.defn())?;
            for (index, value) in row.values.iter().enumerate() {
                match value {
                    Some(ExportValue::Integer(number)) => feature.set_field_integer(index, *number),
                    Some(ExportValue::Real(number)) => feature.set_field_double(index, *number),
                    Some(ExportValue::Text(text)) => feature.set_field_string(index, text),
                    None => feature.set_field_null(index),
                }?;
            }
            if let Some(wkb) = &row.wkb {
                feature.set_geometry(Geometry::from_wkb(wkb)?)?;
            }
            feature.create(layer)?;
            written += 1;
        }
    }
    Ok(written)
}
