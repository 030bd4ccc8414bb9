//! Reading one source through GDAL into plain values: field text per column of
//! the alias table and geometry as WKB in EPSG:4490, with the problems found on
//! the way. GDAL calls block, so this runs on the blocking thread pool.

use std::path::Path;
use std::time::Instant;

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{
    geometry_type_flatten, Geometry, Layer, LayerAccess, OGRwkbGeometryType as Wkb,
};
use gdal::{Dataset, DatasetOptions, GdalOpenFlags};
use gridmap_crs::LonLatCrs;
use gridmap_model::STORAGE_SRID;

use crate::fields::{GeometryKind, LayerSpec};
use crate::problem::{ImportError, Problem};
use crate::report::FieldUse;
use crate::{ImportOptions, Source, SourceCrs};

/// China's rough extent: coordinates outside it are a CRS or axis-order mistake.
pub(crate) const CHINA_LON: std::ops::RangeInclusive<f64> = 73.0..=136.0;
pub(crate) const CHINA_LAT: std::ops::RangeInclusive<f64> = 3.0..=54.0;

/// Features per message from the reading thread: large enough that channel
/// traffic does not matter, small enough that the few messages in flight
/// hold well under a megabyte of buildings.
pub(crate) const BATCH_FEATURES: usize = 2_048;

/// What the reading thread sends: first the layer's header, then its
/// features in batches.
#[derive(Debug)]
pub(crate) enum ReadMessage {
    Header(LayerHeader),
    /// A header and the number of features that follow, when the reader
    /// knows it before reading them (a GeoPackage's count, the native GeoJSON
    /// reader's first pass, a driver's fast count): it lets the writer choose
    /// how to write before the first row.
    CountedHeader(LayerHeader, u64),
    Batch(Batch),
}

/// What is known of a source before its features: the field mapping, the CRS
/// and the problems of the whole layer.
#[derive(Debug)]
pub(crate) struct LayerHeader {
    /// For each column of the layer spec's fields, the source field that feeds it.
    pub fields: Vec<FieldUse>,
    /// The source CRS as found (`EPSG:4490`, a CRS name, or a note that none was declared).
    pub crs: String,
    /// Whether geometries were transformed to EPSG:4490.
    pub transformed: bool,
    /// Problems of the whole layer (unreadable file, missing layer or
    /// required field, unknown CRS).
    pub problems: Vec<Problem>,
    /// Source fields left out because they identify a person (see
    /// [`LayerSpec::is_personal`]), as spelled in the file.
    pub dropped_personal: Vec<String>,
}

/// Consecutive features and the problems found while reading them (geometry
/// shape, extent).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub features: Vec<RawFeature>,
    pub problems: Vec<Problem>,
}

/// How a native reader (GeoJSON, GeoPackage) goes on after
/// [`start_native_layer`].
pub(crate) enum NativeStart {
    /// The layer needs GDAL after all; nothing was sent.
    Gdal,
    /// The writer has stopped listening.
    Stopped,
    /// The header is sent: read the features with these source field
    /// indexes (per column) and report this CRS.
    Read {
        field_index: Vec<Option<usize>>,
        crs: String,
    },
}

/// Starts a native reader's layer of a plain file with source fields `names`
/// and `features` features in the geographic CRS `epsg` (4490, or 4326,
/// which is stored as it is): maps the fields as the GDAL reader does and
/// sends the layer header.
///
/// # Errors
/// [`ImportError::Gdal`] when GDAL cannot describe the CRS.
pub(crate) fn start_native_layer(
    source: &Source,
    spec: &LayerSpec,
    options: &ImportOptions,
    (names, features): (&[String], u64),
    epsg: u32,
    sender: &tokio::sync::mpsc::Sender<ReadMessage>,
) -> Result<NativeStart, ImportError> {
    let srs = SpatialRef::from_epsg(epsg).map_err(|err| ImportError::Gdal {
        path: source.path.clone(),
        source: err,
    })?;
    let mut header = LayerHeader {
        fields: spec
            .fields
            .iter()
            .map(|field| crate::report::FieldUse::unmapped(field.column))
            .collect(),
        crs: String::new(),
        transformed: false,
        problems: Vec::new(),
        dropped_personal: Vec::new(),
    };
    match plan_crs(Some(srs), None) {
        Ok(plan) if plan.transform.is_none() && plan.offset.is_none() => {
            header.crs = plan.description;
        }
        _ => return Ok(NativeStart::Gdal),
    }
    let mapping = options
        .mapping
        .as_ref()
        .filter(|mapping| mapping.applies_to(source.entity));
    let field_index = map_fields(
        names,
        spec,
        &mut header,
        &source.file_name(),
        &options.field_map,
        mapping,
    );
    let crs = header.crs.clone();
    if sender
        .blocking_send(ReadMessage::CountedHeader(header, features))
        .is_err()
    {
        return Ok(NativeStart::Stopped);
    }
    Ok(NativeStart::Read { field_index, crs })
}

/// Whether a native reader may take `source` at all: an area layer read in
/// the CRS its file declares (no `--crs`), a file on disk rather than a GDAL
/// `/vsi…` path, and the reader not switched off (`switch=0` in the
/// environment). Each reader then checks its own format.
pub(crate) fn native_reader_may_read(
    source: &Source,
    options: &ImportOptions,
    switch: &str,
) -> bool {
    LayerSpec::of(source.entity).geometry == GeometryKind::Area
        && options.crs.is_none()
        && !source.path.to_string_lossy().starts_with("/vsi")
        && !std::env::var(switch).is_ok_and(|value| value == "0")
}

/// A native reader's second pass finding the file unlike its first pass.
pub(crate) fn changed_while_read(source: &Source, reason: impl std::fmt::Display) -> ImportError {
    ImportError::Io {
        path: source.path.clone(),
        source: std::io::Error::other(format!("the file changed while it was read ({reason})")),
    }
}

/// Gathers features (and problems) into batches of [`BATCH_FEATURES`] and
/// hands each to the writer as it fills, counting progress; shared by the
/// GDAL reader and the native ones.
pub(crate) struct BatchSender<'a> {
    sender: &'a tokio::sync::mpsc::Sender<ReadMessage>,
    options: &'a ImportOptions,
    pub(crate) batch: Batch,
}

impl<'a> BatchSender<'a> {
    pub(crate) fn new(
        sender: &'a tokio::sync::mpsc::Sender<ReadMessage>,
        options: &'a ImportOptions,
    ) -> Self {
        Self {
            sender,
            options,
            batch: Batch::default(),
        }
    }

    /// Adds a feature and sends the batch when it is full; `false` once the
    /// writer has stopped listening (it failed or was cancelled), when the
    /// reader should stop too.
    pub(crate) fn push(&mut self, feature: RawFeature) -> bool {
        self.batch.features.push(feature);
        if self.batch.features.len() < BATCH_FEATURES {
            return true;
        }
        self.options.advance(self.batch.features.len() as u64);
        self.sender
            .blocking_send(ReadMessage::Batch(std::mem::take(&mut self.batch)))
            .is_ok()
    }

    /// Sends what is left.
    pub(crate) fn finish(self) {
        self.options.advance(self.batch.features.len() as u64);
        if !self.batch.features.is_empty() || !self.batch.problems.is_empty() {
            let _ = self.sender.blocking_send(ReadMessage::Batch(self.batch));
        }
    }
}

/// One feature: trimmed field text (empty text as `None`) per column, and the
/// geometry as WKB unless a problem with it was already recorded.
#[derive(Debug)]
pub(crate) struct RawFeature {
    pub number: u64,
    pub values: Vec<Option<String>>,
    pub wkb: Option<Vec<u8>>,
}

/// Reads `source` and sends its header, then its features in batches of
/// [`BATCH_FEATURES`], to `sender`; the bounded channel keeps memory flat
/// whatever the file size. Stops early, without error, when the receiver is
/// gone (the import failed elsewhere). Returns the number of features read.
///
/// # Errors
/// [`ImportError::Io`] when the file does not exist, [`ImportError::Gdal`] when
/// GDAL fails after opening it. A file GDAL cannot open at all is not an error
/// here but a layer problem, so it is reported with every other problem.
pub(crate) fn read_source(
    source: &Source,
    options: &ImportOptions,
    osm_parents: Option<&crate::osm::StoredParents>,
    sender: &tokio::sync::mpsc::Sender<ReadMessage>,
) -> Result<u64, ImportError> {
    let started = Instant::now();
    let spec = LayerSpec::of(source.entity);
    let file_name = source.file_name();
    let mut header = LayerHeader {
        fields: spec
            .fields
            .iter()
            .map(|field| FieldUse::unmapped(field.column))
            .collect(),
        crs: String::new(),
        transformed: false,
        problems: Vec::new(),
        dropped_personal: Vec::new(),
    };
    // GDAL's virtual file systems (/vsizip/, /vsicurl/) have no local metadata.
    let path_text = source.path.to_string_lossy();
    if !path_text.starts_with("/vsi") {
        std::fs::metadata(&source.path).map_err(|err| ImportError::Io {
            path: source.path.clone(),
            source: err,
        })?;
    }
    // OpenStreetMap buildings and addresses get their codes and parents from
    // the stored rows (see crate::osm).
    if let Some(parents) = osm_parents {
        return crate::osm::read(source, options, parents, sender);
    }
    // Plain GeoJSON areas are read natively, several times faster.
    if let Some(count) = crate::geojson::read_plain(source, options, sender)? {
        return Ok(count);
    }
    // So are plain GeoPackage areas.
    if let Some(count) = crate::gpkg::read_plain(source, options, sender)? {
        return Ok(count);
    }
    let send_header = |header: LayerHeader| {
        // A closed channel means the import already failed; nothing to do.
        let _ = sender.blocking_send(ReadMessage::Header(header));
        Ok(0)
    };
    let dataset = match open(source, options.encoding.as_deref()) {
        Ok(dataset) => dataset,
        Err(err) => {
            header.problems.push(Problem::layer(
                &file_name,
                None,
                format!("GDAL cannot read this file as a vector dataset ({err})"),
            ));
            return send_header(header);
        }
    };
    let mut layer = match pick_layer(&dataset, source) {
        Ok(layer) => layer,
        Err(reason) => {
            header
                .problems
                .push(Problem::layer(&file_name, None, reason));
            return send_header(header);
        }
    };
    let (transform, offset) = match plan_crs(layer.spatial_ref(), options.crs) {
        Ok(plan) => {
            if !plan.declared && spec.geometry != GeometryKind::None {
                tracing::warn!(
                    file = %file_name,
                    "the layer declares no CRS; assuming EPSG:{STORAGE_SRID} (CGCS2000)"
                );
            }
            header.crs = plan.description;
            header.transformed = plan.transform.is_some() || plan.offset.is_some();
            (plan.transform, plan.offset)
        }
        Err(reason) => {
            header
                .problems
                .push(Problem::layer(&file_name, None, reason));
            return send_header(header);
        }
    };
    let mapping = options
        .mapping
        .as_ref()
        .filter(|mapping| mapping.applies_to(source.entity));
    let names: Vec<String> = layer.defn().fields().map(|field| field.name()).collect();
    let field_index = map_fields(
        &names,
        spec,
        &mut header,
        &file_name,
        &options.field_map,
        mapping,
    );
    let crs = header.crs.clone();
    // Only a count the driver has at hand: forcing one would read the file.
    let message = match layer.try_feature_count() {
        Some(features) => ReadMessage::CountedHeader(header, features),
        None => ReadMessage::Header(header),
    };
    if sender.blocking_send(message).is_err() {
        return Ok(0);
    }
    let gdal_error = |err| ImportError::Gdal {
        path: source.path.clone(),
        source: err,
    };
    let mut batch = BatchSender::new(sender, options);
    let mut count = 0u64;
    for (index, feature) in layer.features().enumerate() {
        let number = index as u64 + 1;
        let mut values = Vec::with_capacity(field_index.len());
        for field in &field_index {
            let value = match field {
                Some(field) => feature.field_as_string(*field).map_err(gdal_error)?,
                None => None,
            };
            values.push(
                value
                    .map(|text| text.trim().to_owned())
                    .filter(|t| !t.is_empty()),
            );
        }
        // `geometry_by_index` rather than `geometry`: only the former reports a
        // feature without geometry instead of handing out a null geometry.
        let geometry = feature.geometry_by_index(0).ok();
        let wkb = match prepare_geometry(
            geometry,
            spec.geometry,
            transform.as_ref(),
            offset,
            options.outside_china,
        ) {
            Ok(wkb) => (!wkb.is_empty()).then_some(wkb),
            Err(reason) => {
                batch
                    .batch
                    .problems
                    .push(Problem::feature(&file_name, number, None, reason));
                None
            }
        };
        count = number;
        if !batch.push(RawFeature {
            number,
            values,
            wkb,
        }) {
            return Ok(count);
        }
    }
    batch.finish();
    tracing::info!(
        file = %file_name,
        entity = %spec.entity,
        features = count,
        crs = %crs,
        elapsed_ms = started.elapsed().as_millis(),
        "read"
    );
    Ok(count)
}

/// The field names of the layer `source` reads, as spelled in the file.
pub(crate) fn field_names(source: &Source, encoding: Option<&str>) -> Result<Vec<String>, String> {
    let dataset = open(source, encoding).map_err(|err| err.to_string())?;
    let layer = pick_layer(&dataset, source)?;
    let names = layer.defn().fields().map(|field| field.name()).collect();
    Ok(names)
}

/// Opens `source` read-only as a vector dataset. `encoding` becomes the
/// shapefile driver's `ENCODING` open option (the per-dataset form of the
/// `SHAPE_ENCODING` setting), which only matters for a `.dbf` without `.cpg`;
/// other drivers ignore it with a warning.
fn open(source: &Source, encoding: Option<&str>) -> Result<Dataset, gdal::errors::GdalError> {
    let encoding_option = encoding.map(|encoding| format!("ENCODING={encoding}"));
    let mut open_options: Vec<&str> = encoding_option.iter().map(String::as_str).collect();
    let extension = source
        .path
        .extension()
        .map(|extension| extension.to_string_lossy().to_ascii_lowercase());
    if extension.as_deref() == Some("csv") {
        open_options.extend(CSV_OPEN_OPTIONS);
    }
    let options = DatasetOptions {
        open_flags: GdalOpenFlags::GDAL_OF_VECTOR | GdalOpenFlags::GDAL_OF_READONLY,
        open_options: (!open_options.is_empty()).then_some(open_options.as_slice()),
        ..DatasetOptions::default()
    };
    Dataset::open_ex(&source.path, options)
}

/// A CSV's geometry: a WKT column, or longitude and latitude columns under
/// the names Chinese spreadsheets use; those columns are not fields.
const CSV_OPEN_OPTIONS: [&str; 4] = [
    "GEOM_POSSIBLE_NAMES=WKT,geometry,geom,几何",
    "X_POSSIBLE_NAMES=lon,lng,longitude,x,经度,JD",
    "Y_POSSIBLE_NAMES=lat,latitude,y,纬度,WD",
    "KEEP_GEOM_COLUMNS=NO",
];

/// One feature as found in its file, for the rejects file: every attribute
/// as JSON and the geometry as GeoJSON, untransformed.
pub(crate) struct OriginalFeature {
    pub properties: serde_json::Map<String, serde_json::Value>,
    pub geometry: serde_json::Value,
}

/// Reads the features numbered `numbers` (1-based, as in problems) of
/// `source` again, exactly as the file holds them.
pub(crate) fn original_features(
    source: &Source,
    encoding: Option<&str>,
    numbers: &std::collections::HashSet<u64>,
) -> std::collections::HashMap<u64, OriginalFeature> {
    let mut found = std::collections::HashMap::new();
    let spec = LayerSpec::of(source.entity);
    let Ok(dataset) = open(source, encoding) else {
        return found;
    };
    let Ok(mut layer) = pick_layer(&dataset, source) else {
        return found;
    };
    let last = numbers.iter().copied().max().unwrap_or(0);
    for (index, feature) in layer.features().enumerate() {
        let number = index as u64 + 1;
        if number > last {
            break;
        }
        if !numbers.contains(&number) {
            continue;
        }
        // A rejects file is shared with whoever fixes the data: personal
        // fields the layer never stores stay out of it too.
        let properties = feature
            .fields()
            .filter(|(name, _)| !spec.is_personal(name))
            .map(|(name, value)| (name, field_json(value)))
            .collect();
        let geometry = feature
            .geometry()
            .and_then(|geometry| geometry.json().ok())
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(serde_json::Value::Null);
        found.insert(
            number,
            OriginalFeature {
                properties,
                geometry,
            },
        );
    }
    found
}

fn field_json(value: Option<gdal::vector::FieldValue>) -> serde_json::Value {
    use gdal::vector::FieldValue;
    use serde_json::Value;
    match value {
        None => Value::Null,
        Some(FieldValue::IntegerValue(number)) => Value::from(number),
        Some(FieldValue::Integer64Value(number)) => Value::from(number),
        Some(FieldValue::RealValue(number)) => Value::from(number),
        Some(FieldValue::StringValue(text)) => Value::from(text),
        Some(FieldValue::IntegerListValue(list)) => Value::from(list),
        Some(FieldValue::Integer64ListValue(list)) => Value::from(list),
        Some(FieldValue::RealListValue(list)) => Value::from(list),
        Some(FieldValue::StringListValue(list)) => Value::from(list),
        Some(FieldValue::DateValue(date)) => Value::from(date.to_string()),
        Some(FieldValue::DateTimeValue(time)) => Value::from(time.to_string()),
    }
}

/// The layer named after the entity, else the only layer. In an
/// OpenStreetMap file, the layer of the entity's geometry filtered to its
/// features (see [`osm_layer`]).
fn pick_layer<'a>(dataset: &'a Dataset, source: &Source) -> Result<Layer<'a>, String> {
    if dataset.driver().short_name() == "OSM" {
        return osm_layer(dataset, source.entity);
    }
    let layers: Vec<Layer<'a>> = dataset.layers().collect();
    let names: Vec<String> = layers.iter().map(LayerAccess::name).collect();
    let named = names.iter().position(|name| {
        name.eq_ignore_ascii_case(source.entity.as_str())
            || crate::Entity::from_file_stem(name) == Some(source.entity)
    });
    let count = layers.len();
    let mut layers = layers.into_iter();
    match (named, count) {
        (Some(position), _) => layers.nth(position),
        (None, 1) => layers.next(),
        (None, 0) => return Err("the file holds no vector layer".to_owned()),
        (None, _) => None,
    }
    .ok_or_else(|| {
        format!(
            "the file holds {count} layers ({}) and none is named {}",
            names.join(", "),
            source.entity
        )
    })
}

/// Walkable OpenStreetMap ways: their `highway` values are aliases of the
/// road classes in [`crate::fields`].
const OSM_WALKABLE: &str =
    "'trunk','primary','primary_link','trunk_link','secondary','secondary_link',\
    'tertiary','tertiary_link','residential','living_street','service','unclassified',\
    'footway','path','pedestrian','steps'";

/// The layer of an OpenStreetMap file that holds `entity`: walkable ways
/// for roads, building outlines for buildings, addressed nodes for addresses.
/// Roads are read through it; buildings and addresses, which need codes and
/// parents, are read by [`crate::osm`], and this layer only serves their field
/// names and the rejects file.
fn osm_layer(dataset: &Dataset, entity: crate::Entity) -> Result<Layer<'_>, String> {
    let (name, filter) = match entity {
        crate::Entity::Roads => ("lines", format!("highway IN ({OSM_WALKABLE})")),
        crate::Entity::Buildings => ("multipolygons", "building IS NOT NULL".to_owned()),
        crate::Entity::Addresses => ("points", "other_tags LIKE '%addr:%'".to_owned()),
        other => {
            return Err(format!(
                "OpenStreetMap files hold roads, buildings and addresses, not {other}"
            ))
        }
    };
    let mut layer = dataset
        .layer_by_name(name)
        .map_err(|err| format!("the OpenStreetMap file has no {name} layer ({err})"))?;
    layer
        .set_attribute_filter(&filter)
        .map_err(|err| format!("cannot filter the {name} layer ({err})"))?;
    Ok(layer)
}

/// How geometries get to EPSG:4490.
pub(crate) struct CrsPlan {
    pub description: String,
    pub declared: bool,
    pub transform: Option<CoordTransform>,
    /// A lon/lat offset system converted point by point after reading.
    pub offset: Option<LonLatCrs>,
}

/// Plans the way to EPSG:4490 from the CRS given with `--crs`, else the one
/// the layer declares.
pub(crate) fn plan_crs(
    layer_srs: Option<SpatialRef>,
    given: Option<SourceCrs>,
) -> Result<CrsPlan, String> {
    let layer_srs = match given {
        None => layer_srs,
        Some(SourceCrs::Offset(crs)) => {
            return Ok(CrsPlan {
                description: format!("{} (given)", SourceCrs::Offset(crs)),
                declared: true,
                transform: None,
                offset: Some(crs),
            });
        }
        Some(SourceCrs::Epsg(code)) => Some(
            SpatialRef::from_epsg(code)
                .map_err(|err| format!("GDAL does not know the CRS EPSG:{code} ({err})"))?,
        ),
    };
    let Some(mut srs) = layer_srs else {
        return Ok(CrsPlan {
            description: format!("none declared (assumed EPSG:{STORAGE_SRID})"),
            declared: false,
            transform: None,
            offset: None,
        });
    };
    let code = epsg_code(&srs);
    let description = code.map_or_else(
        || srs.name().unwrap_or_else(|| "an unnamed CRS".to_owned()),
        |code| format!("EPSG:{code}"),
    );
    // CGCS2000 and WGS 84 agree within a metre, far below the precision of
    // grid boundaries, so both are stored as they are.
    if matches!(code, Some(4490 | 4326)) {
        return Ok(CrsPlan {
            description,
            declared: true,
            transform: None,
            offset: None,
        });
    }
    let mut target = SpatialRef::from_epsg(STORAGE_SRID.unsigned_abs())
        .map_err(|err| format!("cannot build EPSG:{STORAGE_SRID} ({err})"))?;
    if srs == target {
        return Ok(CrsPlan {
            description,
            declared: true,
            transform: None,
            offset: None,
        });
    }
    // GDAL 3 follows each CRS's official axis order (latitude first for
    // EPSG:4490); files store x = longitude, so both sides use GIS order.
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    target.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let transform = CoordTransform::new(&srs, &target).map_err(|err| {
        format!("cannot transform from {description} to EPSG:{STORAGE_SRID} ({err})")
    })?;
    tracing::info!(from = %description, "transforming to EPSG:{STORAGE_SRID}");
    Ok(CrsPlan {
        description,
        declared: true,
        transform: Some(transform),
        offset: None,
    })
}

/// The EPSG code of a CRS, identifying it when it carries no authority (a
/// shapefile's `.prj` usually does not).
fn epsg_code(srs: &SpatialRef) -> Option<i32> {
    if srs.auth_name().as_deref() == Some("EPSG") {
        if let Ok(code) = srs.auth_code() {
            return Some(code);
        }
    }
    let mut identified = srs.clone();
    identified.auto_identify_epsg().ok()?;
    (identified.auth_name().as_deref() == Some("EPSG"))
        .then(|| identified.auth_code().ok())
        .flatten()
}

/// Finds the source field of every column and records layer-level problems
/// for required columns that no field feeds.
pub(crate) fn map_fields(
    names: &[String],
    layer_spec: &LayerSpec,
    header: &mut LayerHeader,
    file_name: &str,
    field_map: &[(String, String)],
    mapping: Option<&crate::mapping::Mapping>,
) -> Vec<Option<usize>> {
    use crate::report::FieldOrigin;
    let mut indexes = Vec::with_capacity(header.fields.len());
    for (spec, used) in layer_spec.fields.iter().zip(header.fields.iter_mut()) {
        // A constant of the mapping file: the column reads no field.
        if let Some(value) = mapping.and_then(|mapping| mapping.constant(spec.column)) {
            used.origin = FieldOrigin::Constant;
            used.constant = Some(value.to_owned());
            indexes.push(None);
            continue;
        }
        let mapped = mapping
            .and_then(|mapping| mapping.field(spec.column))
            .map(|source| (source, FieldOrigin::Mapping));
        let given = field_map
            .iter()
            .filter(|(column, _)| column == spec.column)
            .map(|(_, source)| (source.as_str(), FieldOrigin::Flag));
        let aliases = spec
            .aliases
            .iter()
            .map(|alias| (*alias, FieldOrigin::Alias));
        // A personal field feeds no column, not even through --field.
        let found = mapped
            .into_iter()
            .chain(given)
            .chain(aliases)
            .find_map(|(alias, origin)| {
                names
                    .iter()
                    .position(|name| {
                        name.to_lowercase() == alias.to_lowercase() && !layer_spec.is_personal(name)
                    })
                    .map(|index| (index, origin))
            });
        used.source = found.map(|(index, _)| names[index].clone());
        used.origin = found.map_or(FieldOrigin::None, |(_, origin)| origin);
        let found = found.map(|(index, _)| index);
        indexes.push(found);
        if found.is_none() && spec.required {
            header.problems.push(Problem::layer(
                file_name,
                Some(spec.column),
                format!(
                    "required field missing: expected one of {}; the layer has {}",
                    spec.aliases.join(", "),
                    if names.is_empty() {
                        "no fields".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
    }
    let ignored: Vec<&String> = names
        .iter()
        .filter(|name| {
            !header
                .fields
                .iter()
                .any(|used| used.source.as_ref() == Some(*name))
        })
        .collect();
    // Personal fields are never read into a column of this layer; naming
    // them lets the report say they were dropped, not merely unused.
    let (personal, ignored): (Vec<&String>, Vec<&String>) = ignored
        .into_iter()
        .partition(|name| layer_spec.is_personal(name));
    if !personal.is_empty() {
        tracing::warn!(
            file = %file_name,
            fields = ?personal,
            "personal fields dropped: this layer stores no personal data"
        );
    }
    header.dropped_personal = personal.into_iter().cloned().collect();
    if !ignored.is_empty() {
        tracing::debug!(file = %file_name, ?ignored, "fields not imported");
    }
    indexes
}

/// Checks the geometry of an OpenStreetMap feature (WGS 84, stored as it is,
/// like any EPSG:4326 source) and turns it into WKB.
pub(crate) fn prepare_osm_geometry(
    geometry: &Geometry,
    kind: GeometryKind,
    options: &ImportOptions,
) -> Result<Vec<u8>, String> {
    prepare_geometry(Some(geometry), kind, None, None, options.outside_china)
}

/// Checks a feature's geometry and turns it into WKB in EPSG:4490.
fn prepare_geometry(
    geometry: Option<&Geometry>,
    kind: GeometryKind,
    transform: Option<&CoordTransform>,
    offset: Option<LonLatCrs>,
    outside_china: bool,
) -> Result<Vec<u8>, String> {
    if kind == GeometryKind::None {
        // A roster: any geometry the source has is not read.
        return Ok(Vec::new());
    }
    let Some(geometry) = geometry else {
        return Err("the feature has no geometry".to_owned());
    };
    if geometry.is_empty() {
        return Err("the geometry is empty".to_owned());
    }
    let mut geometry = geometry.clone();
    geometry.flatten_to_2d();
    let geometry = single_part(geometry, kind)?;
    check_structure(&geometry)?;
    let geometry = match transform {
        Some(transform) => geometry
            .transform(transform)
            .map_err(|err| format!("the geometry cannot be transformed to EPSG:4490 ({err})"))?,
        None => geometry,
    };
    // The offsets move points by less than a kilometre, so the extent check
    // on the offset coordinates catches swapped axes and metres just as well.
    if outside_china {
        check_degrees(&geometry)?;
    } else {
        check_extent(&geometry)?;
    }
    let mut wkb = geometry
        .wkb()
        .map_err(|err| format!("the geometry cannot be encoded as WKB ({err})"))?;
    if let Some(crs) = offset {
        let mut position = 0;
        map_wkb_points(&mut wkb, &mut position, &|lon, lat| {
            crs.to_cgcs2000(lon, lat)
        })?;
    }
    Ok(wkb)
}

/// Rewrites every coordinate of a 2D WKB geometry in place. GDAL has no
/// transformation for GCJ-02 or BD-09, and walking the WKB avoids rebuilding
/// the geometry part by part.
pub(crate) fn map_wkb_points(
    wkb: &mut [u8],
    position: &mut usize,
    map: &dyn Fn(f64, f64) -> (f64, f64),
) -> Result<(), String> {
    let little = match wkb.get(*position) {
        Some(1) => true,
        Some(0) => false,
        _ => return Err("the geometry's WKB has no byte order mark".to_owned()),
    };
    *position += 1;
    let kind = read_u32(wkb, position, little)?;
    match kind {
        1 => map_points(wkb, position, little, 1, map),
        2 => {
            let count = read_u32(wkb, position, little)?;
            map_points(wkb, position, little, count, map)
        }
        3 => {
            for _ in 0..read_u32(wkb, position, little)? {
                let count = read_u32(wkb, position, little)?;
                map_points(wkb, position, little, count, map)?;
            }
            Ok(())
        }
        4..=6 => {
            for _ in 0..read_u32(wkb, position, little)? {
                map_wkb_points(wkb, position, map)?;
            }
            Ok(())
        }
        other => Err(format!("unexpected WKB geometry type {other}")),
    }
}

fn read_u32(wkb: &[u8], position: &mut usize, little: bool) -> Result<u32, String> {
    let bytes: [u8; 4] = wkb
        .get(*position..*position + 4)
        .and_then(|slice| slice.try_into().ok())
        .ok_or_else(|| "the geometry's WKB is truncated".to_owned())?;
    *position += 4;
    Ok(if little {
        u32::from_le_bytes(bytes)
    } else {
        u32::from_be_bytes(bytes)
    })
}

fn map_points(
    wkb: &mut [u8],
    position: &mut usize,
    little: bool,
    count: u32,
    map: &dyn Fn(f64, f64) -> (f64, f64),
) -> Result<(), String> {
    for _ in 0..count {
        let slot = wkb
            .get_mut(*position..*position + 16)
            .ok_or_else(|| "the geometry's WKB is truncated".to_owned())?;
        let (x_bytes, y_bytes) = slot.split_at_mut(8);
        let decode = |bytes: &[u8]| -> f64 {
            let mut array = [0u8; 8];
            array.copy_from_slice(bytes);
            if little {
                f64::from_le_bytes(array)
            } else {
                f64::from_be_bytes(array)
            }
        };
        let (x, y) = map(decode(x_bytes), decode(y_bytes));
        let encode = |value: f64| {
            if little {
                value.to_le_bytes()
            } else {
                value.to_be_bytes()
            }
        };
        x_bytes.copy_from_slice(&encode(x));
        y_bytes.copy_from_slice(&encode(y));
        *position += 16;
    }
    Ok(())
}

/// Checks the geometry type for the layer kind, taking the only part of a
/// one-part collection where the table holds single geometries.
fn single_part(geometry: Geometry, kind: GeometryKind) -> Result<Geometry, String> {
    let found = geometry_type_flatten(geometry.geometry_type());
    let (single, multi, expected) = match kind {
        GeometryKind::Area => {
            if found == Wkb::wkbPolygon || found == Wkb::wkbMultiPolygon {
                return Ok(geometry);
            }
            (
                Wkb::wkbPolygon,
                Wkb::wkbMultiPolygon,
                "a Polygon or MultiPolygon",
            )
        }
        GeometryKind::Point => (Wkb::wkbPoint, Wkb::wkbMultiPoint, "a Point"),
        GeometryKind::Line => (Wkb::wkbLineString, Wkb::wkbMultiLineString, "a LineString"),
        GeometryKind::None => return Ok(geometry),
    };
    if found == single {
        return Ok(geometry);
    }
    let name = geometry.geometry_name();
    if found == multi && kind != GeometryKind::Area {
        let parts = geometry.geometry_count();
        if parts == 1 {
            return Ok(geometry.get_geometry(0).clone());
        }
        return Err(format!(
            "expected {expected}, found a {name} of {parts} parts; split it into one feature per part"
        ));
    }
    Err(format!("expected {expected}, found a {name}"))
}

/// Rejects shapes PostGIS cannot even represent: unclosed rings, rings of
/// fewer than four points, lines of fewer than two.
fn check_structure(geometry: &Geometry) -> Result<(), String> {
    let kind = geometry_type_flatten(geometry.geometry_type());
    if kind == Wkb::wkbPolygon {
        return check_polygon(geometry, "");
    }
    if kind == Wkb::wkbMultiPolygon {
        for part in 0..geometry.geometry_count() {
            let polygon = geometry.get_geometry(part);
            check_polygon(&polygon, &format!(" of part {}", part + 1))?;
        }
        return Ok(());
    }
    if kind == Wkb::wkbLineString && geometry.point_count() < 2 {
        return Err(format!(
            "a line needs at least 2 points, found {}",
            geometry.point_count()
        ));
    }
    Ok(())
}

fn check_polygon(polygon: &Geometry, part: &str) -> Result<(), String> {
    if polygon.geometry_count() == 0 {
        return Err(format!("polygon{part} has no rings"));
    }
    let mut points = Vec::new();
    for index in 0..polygon.geometry_count() {
        let ring_name = if index == 0 {
            format!("outer ring{part}")
        } else {
            format!("hole {index}{part}")
        };
        points.clear();
        polygon.get_geometry(index).get_points(&mut points);
        if points.len() < 4 {
            return Err(format!(
                "too few points: the {ring_name} has {}, a closed ring needs at least 4",
                points.len()
            ));
        }
        let (first, last) = (points[0], points[points.len() - 1]);
        if (first.0, first.1) != (last.0, last.1) {
            return Err(format!(
                "unclosed ring: the {ring_name} starts at ({} {}) but ends at ({} {})",
                first.0, first.1, last.0, last.1
            ));
        }
    }
    Ok(())
}

/// Catches undeclared projected coordinates and swapped axes.
fn check_extent(geometry: &Geometry) -> Result<(), String> {
    let envelope = geometry.envelope();
    let (min_x, max_x, min_y, max_y) = (envelope.MinX, envelope.MaxX, envelope.MinY, envelope.MaxY);
    let inside = |range: &std::ops::RangeInclusive<f64>, low: f64, high: f64| {
        range.contains(&low) && range.contains(&high)
    };
    if inside(&CHINA_LON, min_x, max_x) && inside(&CHINA_LAT, min_y, max_y) {
        return Ok(());
    }
    let hint = if inside(&CHINA_LAT, min_x, max_x) && inside(&CHINA_LON, min_y, max_y) {
        "latitude and longitude look swapped (x holds latitudes); write x = longitude, y = latitude"
    } else if [min_x, max_x, min_y, max_y].iter().any(|v| v.abs() > 180.0) {
        "values this large are metres: the data is probably in a projected CRS (such as a \
         Gauss-Krüger zone, EPSG:4513-4554) that the file does not declare, or declares wrongly"
    } else {
        "check the declared CRS and the axis order"
    };
    Err(format!(
        "coordinates outside China (longitude 73..136, latitude 3..54): \
         x {min_x}..{max_x}, y {min_y}..{max_y}; {hint}"
    ))
}

/// With `--outside-china`: coordinates need only be degrees at all.
fn check_degrees(geometry: &Geometry) -> Result<(), String> {
    let envelope = geometry.envelope();
    if envelope.MinX >= -180.0
        && envelope.MaxX <= 180.0
        && envelope.MinY >= -90.0
        && envelope.MaxY <= 90.0
    {
        return Ok(());
    }
    Err(format!(
        "coordinates are not longitude/latitude degrees: x {}..{}, y {}..{}; \
         check the declared CRS",
        envelope.MinX, envelope.MaxX, envelope.MinY, envelope.MaxY
    ))
}

/// The file name shown in problems and reports.
pub(crate) fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.to_string_lossy().into_owned(),
        |name| name.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wkt(text: &str) -> Geometry {
        Geometry::from_wkt(text).unwrap()
    }

    fn prepare(text: &str, kind: GeometryKind) -> Result<Vec<u8>, String> {
        prepare_geometry(Some(&wkt(text)), kind, None, None, false)
    }

    #[test]
    fn polygons_and_single_part_collections_are_accepted() {
        assert!(prepare(
            "POLYGON ((120 37,120.1 37,120.1 37.1,120 37))",
            GeometryKind::Area
        )
        .is_ok());
        let line = prepare("MULTILINESTRING ((120 37,120.1 37.1))", GeometryKind::Line).unwrap();
        assert_eq!(
            Geometry::from_wkb(&line).unwrap().geometry_name(),
            "LINESTRING"
        );
        let point = prepare("MULTIPOINT ((120 37))", GeometryKind::Point).unwrap();
        assert_eq!(Geometry::from_wkb(&point).unwrap().geometry_name(), "POINT");
        let z = prepare("POINT Z (120 37 15)", GeometryKind::Point).unwrap();
        assert_eq!(Geometry::from_wkb(&z).unwrap().geometry_name(), "POINT");
    }

    #[test]
    fn wrong_types_and_shapes_are_named() {
        let check = |text: &str, kind: GeometryKind, expected: &str| {
            let err = prepare(text, kind).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        };
        check(
            "POINT (120 37)",
            GeometryKind::Area,
            "expected a Polygon or MultiPolygon, found a POINT",
        );
        check(
            "MULTILINESTRING ((120 37,120.1 37),(120 37.1,120.1 37.1))",
            GeometryKind::Line,
            "of 2 parts",
        );
        check(
            "POLYGON ((120 37,120.1 37,120.1 37.1,120 37.1))",
            GeometryKind::Area,
            "unclosed ring",
        );
        check(
            "POLYGON ((120 37,120.1 37,120 37))",
            GeometryKind::Area,
            "too few points",
        );
        check(
            "LINESTRING (120 37)",
            GeometryKind::Line,
            "at least 2 points",
        );
        check("POINT EMPTY", GeometryKind::Point, "empty");
        check("POINT (37.6 120.3)", GeometryKind::Point, "look swapped");
        check(
            "POINT (40500000 4160000)",
            GeometryKind::Point,
            "projected CRS",
        );
        assert!(
            prepare_geometry(None, GeometryKind::Point, None, None, false)
                .unwrap_err()
                .contains("no geometry")
        );
    }

    #[test]
    fn gauss_kruger_is_transformed_in_gis_axis_order() {
        let plan = plan_crs(Some(SpatialRef::from_epsg(4528).unwrap()), None).unwrap();
        assert_eq!(plan.description, "EPSG:4528");
        // Zone 40 of the 3-degree CGCS2000 Gauss-Krüger projection has its
        // central meridian at 120°E and a false easting of 40,500,000 m.
        let point = wkt("POINT (40500000 4160000)");
        let wkb = prepare_geometry(
            Some(&point),
            GeometryKind::Point,
            plan.transform.as_ref(),
            None,
            false,
        )
        .unwrap();
        let (lon, lat, _) = Geometry::from_wkb(&wkb).unwrap().get_point(0);
        assert!((lon - 120.0).abs() < 1e-9, "{lon}");
        assert!((37.0..38.0).contains(&lat), "{lat}");
    }

    #[test]
    fn geographic_crs_are_stored_as_they_are() {
        for code in [4490, 4326] {
            let plan = plan_crs(Some(SpatialRef::from_epsg(code).unwrap()), None).unwrap();
            assert!(plan.transform.is_none(), "{code}");
            assert_eq!(plan.description, format!("EPSG:{code}"));
        }
        let none = plan_crs(None, None).unwrap();
        assert!(!none.declared && none.transform.is_none());
    }

    #[test]
    fn given_crs_overrides_the_declared_one() {
        // A file that declares EPSG:4490 but holds Gauss-Krüger metres.
        let declared = Some(SpatialRef::from_epsg(4490).unwrap());
        let plan = plan_crs(declared.clone(), Some(SourceCrs::Epsg(4528))).unwrap();
        assert_eq!(plan.description, "EPSG:4528");
        assert!(plan.transform.is_some());
        // Taken at its word, the same file is refused with the metres hint.
        let plan = plan_crs(declared, None).unwrap();
        let point = wkt("POINT (40500000 4160000)");
        let err = prepare_geometry(
            Some(&point),
            GeometryKind::Point,
            plan.transform.as_ref(),
            None,
            false,
        )
        .unwrap_err();
        assert!(err.contains("metres"), "{err}");
        let err = plan_crs(None, Some(SourceCrs::Epsg(999_999)))
            .err()
            .unwrap();
        assert!(err.contains("EPSG:999999"), "{err}");
    }

    #[test]
    fn offset_coordinates_are_converted_point_by_point() {
        let original = [
            (120.3, 37.6),
            (120.31, 37.6),
            (120.31, 37.61),
            (120.3, 37.6),
        ];
        for crs in [LonLatCrs::Gcj02, LonLatCrs::Bd09] {
            let shifted: Vec<String> = original
                .iter()
                .map(|(lon, lat)| {
                    let (x, y) = crs.from_cgcs2000(*lon, *lat);
                    format!("{x} {y}")
                })
                .collect();
            let text = format!("MULTIPOLYGON ((({})))", shifted.join(","));
            let plan = plan_crs(None, Some(SourceCrs::Offset(crs))).unwrap();
            assert!(plan.offset.is_some() && plan.transform.is_none());
            let wkb = prepare_geometry(
                Some(&wkt(&text)),
                GeometryKind::Area,
                None,
                plan.offset,
                false,
            )
            .unwrap();
            let mut points = Vec::new();
            Geometry::from_wkb(&wkb)
                .unwrap()
                .get_geometry(0)
                .get_geometry(0)
                .get_points(&mut points);
            for ((lon, lat), (x, y, _)) in original.iter().zip(points) {
                assert!((lon - x).abs() < 1e-7 && (lat - y).abs() < 1e-7, "{crs:?}");
            }
        }
        let swapped = prepare_geometry(
            Some(&wkt("POINT (37.6 120.3)")),
            GeometryKind::Point,
            None,
            Some(LonLatCrs::Gcj02),
            false,
        );
        assert!(swapped.unwrap_err().contains("look swapped"));
    }
}
