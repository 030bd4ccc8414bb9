//! Reading one source through GDAL into plain values: field text per column of
//! the alias table and geometry as WKB in EPSG:4490, with the problems found on
//! the way. GDAL calls block, so this runs on the blocking thread pool.

use std::path::Path;
use std::time::{Duration, Instant};

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{
    geometry_type_flatten, Geometry, Layer, LayerAccess, OGRwkbGeometryType as Wkb,
};
use gdal::{Dataset, DatasetOptions, GdalOpenFlags};
use gridmap_model::STORAGE_SRID;

use crate::fields::{GeometryKind, LayerSpec};
use crate::problem::{ImportError, Problem};
use crate::report::FieldUse;
use crate::Source;

/// China's rough extent: coordinates outside it are a CRS or axis-order mistake.
const CHINA_LON: std::ops::RangeInclusive<f64> = 73.0..=136.0;
const CHINA_LAT: std::ops::RangeInclusive<f64> = 3.0..=54.0;

/// What was read from one source.
#[derive(Debug)]
pub(crate) struct RawLayer {
    pub file_name: String,
    pub spec: &'static LayerSpec,
    /// For each column of `spec.fields`, the source field that feeds it.
    pub fields: Vec<FieldUse>,
    /// The source CRS as found (`EPSG:4490`, a CRS name, or a note that none was declared).
    pub crs: String,
    /// Whether geometries were transformed to EPSG:4490.
    pub transformed: bool,
    pub features: Vec<RawFeature>,
    /// Problems found while reading (layer structure, geometry shape, CRS).
    pub problems: Vec<Problem>,
    pub elapsed: Duration,
}

/// One feature: trimmed field text (empty text as `None`) per column, and the
/// geometry as WKB unless a problem with it was already recorded.
#[derive(Debug)]
pub(crate) struct RawFeature {
    pub number: u64,
    pub values: Vec<Option<String>>,
    pub wkb: Option<Vec<u8>>,
}

/// Reads `source` completely.
///
/// # Errors
/// [`ImportError::Io`] when the file does not exist, [`ImportError::Gdal`] when
/// GDAL fails after opening it. A file GDAL cannot open at all is not an error
/// here but a layer problem, so it is reported with every other problem.
pub(crate) fn read_source(source: &Source) -> Result<RawLayer, ImportError> {
    let started = Instant::now();
    let spec = LayerSpec::of(source.entity);
    let file_name = source.file_name();
    let mut raw = RawLayer {
        file_name: file_name.clone(),
        spec,
        fields: spec
            .fields
            .iter()
            .map(|field| FieldUse {
                column: field.column,
                source: None,
            })
            .collect(),
        crs: String::new(),
        transformed: false,
        features: Vec::new(),
        problems: Vec::new(),
        elapsed: Duration::ZERO,
    };
    // GDAL's virtual file systems (/vsizip/, /vsicurl/) have no local metadata.
    let path_text = source.path.to_string_lossy();
    if !path_text.starts_with("/vsi") {
        std::fs::metadata(&source.path).map_err(|err| ImportError::Io {
            path: source.path.clone(),
            source: err,
        })?;
    }
    let options = DatasetOptions {
        open_flags: GdalOpenFlags::GDAL_OF_VECTOR | GdalOpenFlags::GDAL_OF_READONLY,
        ..DatasetOptions::default()
    };
    let dataset = match Dataset::open_ex(&source.path, options) {
        Ok(dataset) => dataset,
        Err(err) => {
            raw.problems.push(Problem::layer(
                &file_name,
                None,
                format!("GDAL cannot read this file as a vector dataset ({err})"),
            ));
            return Ok(raw);
        }
    };
    let mut layer = match pick_layer(&dataset, source) {
        Ok(layer) => layer,
        Err(reason) => {
            raw.problems.push(Problem::layer(&file_name, None, reason));
            return Ok(raw);
        }
    };
    let transform = match plan_crs(layer.spatial_ref()) {
        Ok(plan) => {
            if !plan.declared {
                tracing::warn!(
                    file = %file_name,
                    "the layer declares no CRS; assuming EPSG:{STORAGE_SRID} (CGCS2000)"
                );
            }
            raw.crs = plan.description;
            raw.transformed = plan.transform.is_some();
            plan.transform
        }
        Err(reason) => {
            raw.problems.push(Problem::layer(&file_name, None, reason));
            return Ok(raw);
        }
    };
    let field_index = map_fields(&layer, &mut raw);
    let gdal_error = |err| ImportError::Gdal {
        path: source.path.clone(),
        source: err,
    };
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
        let wkb = match prepare_geometry(geometry, spec.geometry, transform.as_ref()) {
            Ok(wkb) => Some(wkb),
            Err(reason) => {
                raw.problems
                    .push(Problem::feature(&file_name, number, None, reason));
                None
            }
        };
        raw.features.push(RawFeature {
            number,
            values,
            wkb,
        });
    }
    raw.elapsed = started.elapsed();
    tracing::info!(
        file = %file_name,
        entity = %spec.entity,
        features = raw.features.len(),
        crs = %raw.crs,
        elapsed_ms = raw.elapsed.as_millis(),
        "read"
    );
    Ok(raw)
}

/// The layer named after the entity, else the only layer.
fn pick_layer<'a>(dataset: &'a Dataset, source: &Source) -> Result<Layer<'a>, String> {
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

/// How geometries get to EPSG:4490.
struct CrsPlan {
    description: String,
    declared: bool,
    transform: Option<CoordTransform>,
}

fn plan_crs(layer_srs: Option<SpatialRef>) -> Result<CrsPlan, String> {
    let Some(mut srs) = layer_srs else {
        return Ok(CrsPlan {
            description: format!("none declared (assumed EPSG:{STORAGE_SRID})"),
            declared: false,
            transform: None,
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
        });
    }
    let mut target = SpatialRef::from_epsg(STORAGE_SRID.unsigned_abs())
        .map_err(|err| format!("cannot build EPSG:{STORAGE_SRID} ({err})"))?;
    if srs == target {
        return Ok(CrsPlan {
            description,
            declared: true,
            transform: None,
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
fn map_fields(layer: &Layer<'_>, raw: &mut RawLayer) -> Vec<Option<usize>> {
    let names: Vec<String> = layer.defn().fields().map(|field| field.name()).collect();
    let mut indexes = Vec::with_capacity(raw.spec.fields.len());
    for (spec, used) in raw.spec.fields.iter().zip(raw.fields.iter_mut()) {
        let found = spec.aliases.iter().find_map(|alias| {
            names
                .iter()
                .position(|name| name.to_lowercase() == alias.to_lowercase())
        });
        used.source = found.map(|index| names[index].clone());
        indexes.push(found);
        if found.is_none() && spec.required {
            raw.problems.push(Problem::layer(
                &raw.file_name,
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
            !raw.fields
                .iter()
                .any(|used| used.source.as_ref() == Some(*name))
        })
        .collect();
    if !ignored.is_empty() {
        tracing::debug!(file = %raw.file_name, ?ignored, "fields not imported");
    }
    indexes
}

/// Checks a feature's geometry and turns it into WKB in EPSG:4490.
fn prepare_geometry(
    geometry: Option<&Geometry>,
    kind: GeometryKind,
    transform: Option<&CoordTransform>,
) -> Result<Vec<u8>, String> {
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
    check_extent(&geometry)?;
    geometry
        .wkb()
        .map_err(|err| format!("the geometry cannot be encoded as WKB ({err})"))
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
        prepare_geometry(Some(&wkt(text)), kind, None)
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
        assert!(prepare_geometry(None, GeometryKind::Point, None)
            .unwrap_err()
            .contains("no geometry"));
    }

    #[test]
    fn gauss_kruger_is_transformed_in_gis_axis_order() {
        let plan = plan_crs(Some(SpatialRef::from_epsg(4528).unwrap())).unwrap();
        assert_eq!(plan.description, "EPSG:4528");
        // Zone 40 of the 3-degree CGCS2000 Gauss-Krüger projection has its
        // central meridian at 120°E and a false easting of 40,500,000 m.
        let point = wkt("POINT (40500000 4160000)");
        let wkb =
            prepare_geometry(Some(&point), GeometryKind::Point, plan.transform.as_ref()).unwrap();
        let (lon, lat, _) = Geometry::from_wkb(&wkb).unwrap().get_point(0);
        assert!((lon - 120.0).abs() < 1e-9, "{lon}");
        assert!((37.0..38.0).contains(&lat), "{lat}");
    }

    #[test]
    fn geographic_crs_are_stored_as_they_are() {
        for code in [4490, 4326] {
            let plan = plan_crs(Some(SpatialRef::from_epsg(code).unwrap())).unwrap();
            assert!(plan.transform.is_none(), "{code}");
            assert_eq!(plan.description, format!("EPSG:{code}"));
        }
        let none = plan_crs(None).unwrap();
        assert!(!none.declared && none.transform.is_none());
    }
}
