//! Buildings and addresses from OpenStreetMap files, which carry no
//! administrative codes: each feature gets its parent spatially, from the rows
//! already stored, and a code derived from that parent or from its OSM id.
//!
//! - A building (a closed way or multipolygon relation with a `building` tag,
//!   as GDAL's OSM driver yields them in its `multipolygons` layer) belongs to
//!   the stored grid that holds its interior point (the grid with the smallest
//!   code where the point is on a shared boundary). Its code is the grid's code
//!   and a seven-digit number counting the grid's OSM buildings in file order,
//!   so the same file over the same grids always gives the same codes. Its name
//!   is the `name` tag, else `addr:street addr:housenumber`, else `OSM way N`
//!   (or `OSM relation N`); households are `building:flats` (0 when absent: OSM
//!   rarely counts dwellings), floors `building:levels` when a whole number.
//! - An address is a node, or a building, with both `addr:street` and
//!   `addr:housenumber`. Its code is `osm/node/N`, `osm/way/N` or
//!   `osm/relation/N`, its text `street housenumber`, its point the node or the
//!   building's interior point, and its building the stored building that
//!   holds that point (the smallest code on a shared boundary).
//!
//! A feature whose point lies in no stored parent is a problem of that feature
//! (with `--skip-invalid`, it is left out). Parents come from the database, not
//! from other files of the same import: load the grids (or the buildings)
//! first, then the OpenStreetMap file. An import that stages such a parent
//! layer as well (not yet in its table when the OpenStreetMap file is read)
//! is refused with a problem of the OpenStreetMap file saying which layer to
//! import first: its features would otherwise be placed in the parents
//! stored before, which the same import may be replacing.

use std::collections::HashMap;

use gdal::vector::{Feature, Geometry, LayerAccess};
use gdal::Dataset;
use sqlx::Row as _;

use crate::fields::{GeometryKind, LayerSpec};
use crate::problem::{ImportError, Problem};
use crate::read::{Batch, LayerHeader, RawFeature, ReadMessage, BATCH_FEATURES};
use crate::report::{FieldOrigin, FieldUse};
use crate::{Entity, ImportOptions, Source};

/// Digits after the grid code in the code of an OSM building.
const BUILDING_NUMBER_DIGITS: usize = 7;

/// The stored rows OSM features are placed in: grids for buildings, buildings
/// for addresses, as (code, WKB in EPSG:4490), ordered by code.
#[derive(Debug, Default)]
pub(crate) struct StoredParents {
    pub rows: Vec<(String, Vec<u8>)>,
    /// The parent layer (grids or buildings) when the same import also
    /// stages a file of it, whose rows the OSM features cannot see.
    pub staged_alongside: Option<Entity>,
}

/// Whether `source` is an OpenStreetMap file (by its extension, as GDAL's OSM
/// driver recognises it).
pub(crate) fn is_osm(source: &Source) -> bool {
    let name = source.path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".pbf") || name.ends_with(".osm")
}

/// Loads the parents an OSM buildings or addresses source needs, or `None` for
/// any other source.
///
/// # Errors
/// [`ImportError::Database`] when the query fails.
pub(crate) async fn load_parents(
    connection: &mut sqlx::PgConnection,
    source: &Source,
) -> Result<Option<StoredParents>, ImportError> {
    let parent = match source.entity {
        Entity::Buildings if is_osm(source) => Entity::Grids,
        Entity::Addresses if is_osm(source) => Entity::Buildings,
        _ => return Ok(None),
    };
    let table = parent.table();
    let rows = sqlx::query(&format!(
        "SELECT code, ST_AsBinary(geom) AS wkb FROM {table} ORDER BY code"
    ))
    .fetch_all(&mut *connection)
    .await
    .map_err(ImportError::database(
        "loading the parents of OpenStreetMap features",
    ))?;
    let rows = rows
        .into_iter()
        .map(|row| (row.get::<String, _>("code"), row.get::<Vec<u8>, _>("wkb")))
        .collect();
    let staged_alongside = staged_in_this_import(connection, parent)
        .await?
        .then_some(parent);
    Ok(Some(StoredParents {
        rows,
        staged_alongside,
    }))
}

/// Whether the import running on `connection` has staged a file of
/// `entity`: sources are staged parents first, each into a temporary table
/// (`copy::create_stage`) whose columns are the feature number, the
/// entity's columns and the rejected flag, which tells the entity.
async fn staged_in_this_import(
    connection: &mut sqlx::PgConnection,
    entity: Entity,
) -> Result<bool, ImportError> {
    let spec = LayerSpec::of(entity);
    let columns: Vec<String> = std::iter::once("feature")
        .chain(crate::copy::stored_columns(spec))
        .chain(std::iter::once("rejected"))
        .map(str::to_owned)
        .collect();
    sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM pg_class c
              WHERE c.relnamespace = pg_my_temp_schema() AND c.relkind = 'r'
                AND c.relname LIKE 'gridmap\\_import\\_stage\\_%'
                AND ARRAY(SELECT a.attname::text FROM pg_attribute a
                           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                           ORDER BY a.attnum) = $1::text[])",
    )
    .bind(&columns)
    .fetch_one(&mut *connection)
    .await
    .map_err(ImportError::database(
        "looking for the parents of OpenStreetMap features in this import",
    ))
}

/// The stored parents as GDAL geometries with a coarse bucket index on their
/// envelopes, for point lookups.
struct ParentIndex {
    codes: Vec<String>,
    geometries: Vec<Geometry>,
    buckets: HashMap<(i64, i64), Vec<usize>>,
}

/// Bucket size of [`ParentIndex`] in degrees (about 1 km).
const BUCKET_DEGREES: f64 = 0.01;

fn bucket(value: f64) -> i64 {
    (value / BUCKET_DEGREES).floor() as i64
}

impl ParentIndex {
    fn new(parents: &StoredParents) -> Result<Self, String> {
        let mut index = Self {
            codes: Vec::with_capacity(parents.rows.len()),
            geometries: Vec::with_capacity(parents.rows.len()),
            buckets: HashMap::new(),
        };
        for (position, (code, wkb)) in parents.rows.iter().enumerate() {
            let geometry = Geometry::from_wkb(wkb)
                .map_err(|err| format!("cannot read the stored geometry of {code} ({err})"))?;
            let envelope = geometry.envelope();
            for x in bucket(envelope.MinX)..=bucket(envelope.MaxX) {
                for y in bucket(envelope.MinY)..=bucket(envelope.MaxY) {
                    index.buckets.entry((x, y)).or_default().push(position);
                }
            }
            index.codes.push(code.clone());
            index.geometries.push(geometry);
        }
        Ok(index)
    }

    /// The code of the parent whose area holds the point (its boundary
    /// included), the smallest code when several do.
    fn find(&self, x: f64, y: f64, point: &Geometry) -> Option<usize> {
        let candidates = self.buckets.get(&(bucket(x), bucket(y)))?;
        // Candidates are in code order, so the first hit has the smallest code.
        candidates
            .iter()
            .copied()
            .find(|&position| self.geometries[position].intersects(point))
    }
}

fn point(x: f64, y: f64) -> Option<Geometry> {
    Geometry::from_wkt(&format!("POINT ({x:.9} {y:.9})")).ok()
}

/// The tags GDAL's OSM driver leaves in `other_tags`, written
/// `"key"=>"value","key2"=>"value2"` (quotes and backslashes escaped).
fn parse_other_tags(text: &str) -> HashMap<String, String> {
    let mut tags = HashMap::new();
    let mut strings = Vec::new();
    let mut current = String::new();
    let mut inside = false;
    let mut escaped = false;
    for character in text.chars() {
        if inside {
            if escaped {
                current.push(character);
                escaped = false;
            } else if character == '\\' {
                escaped = true;
            } else if character == '"' {
                inside = false;
                strings.push(std::mem::take(&mut current));
            } else {
                current.push(character);
            }
        } else if character == '"' {
            inside = true;
        }
    }
    let mut pairs = strings.into_iter();
    while let (Some(key), Some(value)) = (pairs.next(), pairs.next()) {
        tags.insert(key, value);
    }
    tags
}

/// A feature's tags: the driver's own fields and `other_tags`.
fn tags_of(feature: &Feature<'_>, names: &[String]) -> HashMap<String, String> {
    let mut tags = HashMap::new();
    for (index, name) in names.iter().enumerate() {
        let Ok(Some(value)) = feature.field_as_string(index) else {
            continue;
        };
        if name == "other_tags" {
            tags.extend(parse_other_tags(&value));
        } else if !value.is_empty() {
            tags.insert(name.clone(), value);
        }
    }
    tags
}

/// `node/N` for a feature of the `points` layer; `way/N` (a closed way) or
/// `relation/N` (a multipolygon relation) for one of the `multipolygons` layer.
fn osm_ref(layer: &str, tags: &HashMap<String, String>) -> Option<(&'static str, String)> {
    if layer == "points" {
        return Some(("node", tags.get("osm_id")?.clone()));
    }
    if let Some(way) = tags.get("osm_way_id") {
        return Some(("way", way.clone()));
    }
    Some(("relation", tags.get("osm_id")?.clone()))
}

/// The street address of tagged features: `addr:street addr:housenumber`.
fn street_address(tags: &HashMap<String, String>) -> Option<String> {
    let street = tags.get("addr:street")?.trim();
    let number = tags.get("addr:housenumber")?.trim();
    (!street.is_empty() && !number.is_empty()).then(|| format!("{street} {number}"))
}

fn whole_number(text: Option<&String>, min: i64) -> Option<i64> {
    text.and_then(|text| text.trim().parse::<i64>().ok())
        .filter(|number| *number >= min)
}

/// An interior point of a polygon or multipolygon: the middle of the widest
/// stretch of a horizontal line through the middle of a polygon's extent,
/// moved off any vertex: the method of PostGIS `ST_PointOnSurface` (JTS),
/// though not necessarily the same point.
fn interior_point(geometry: &Geometry) -> Option<(f64, f64)> {
    let polygons: Vec<Vec<Vec<(f64, f64)>>> = match geometry.geometry_count() {
        _ if geometry.geometry_name().eq_ignore_ascii_case("POLYGON") => {
            vec![rings(geometry)]
        }
        count => (0..count)
            .map(|index| rings(&geometry.get_geometry(index)))
            .collect(),
    };
    let mut best: Option<(f64, (f64, f64))> = None;
    for polygon in &polygons {
        let Some(outer) = polygon.first() else {
            continue;
        };
        let (low, high) = outer
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), point| {
                (low.min(point.1), high.max(point.1))
            });
        let centre = (low + high) / 2.0;
        // The scan line runs halfway between the vertex heights nearest to the
        // centre, so it crosses edges, never runs through a vertex.
        let (mut below, mut above) = (low, high);
        for point in polygon.iter().flatten() {
            if point.1 <= centre && point.1 > below {
                below = point.1;
            }
            if point.1 > centre && point.1 < above {
                above = point.1;
            }
        }
        let y = (below + above) / 2.0;
        let mut crossings: Vec<f64> = Vec::new();
        for ring in polygon {
            for pair in ring.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                if (a.1 > y) != (b.1 > y) {
                    crossings.push(a.0 + (y - a.1) / (b.1 - a.1) * (b.0 - a.0));
                }
            }
        }
        crossings.sort_by(f64::total_cmp);
        for pair in crossings.chunks_exact(2) {
            let width = pair[1] - pair[0];
            if best.is_none_or(|(widest, _)| width > widest) {
                best = Some((width, ((pair[0] + pair[1]) / 2.0, y)));
            }
        }
    }
    best.map(|(_, point)| point)
}

fn rings(polygon: &Geometry) -> Vec<Vec<(f64, f64)>> {
    (0..polygon.geometry_count())
        .map(|index| {
            let mut points = Vec::new();
            polygon.get_geometry(index).get_points(&mut points);
            points.into_iter().map(|(x, y, _)| (x, y)).collect()
        })
        .collect()
}

/// Reads the buildings or addresses of an OpenStreetMap file and sends them,
/// with the values of the layer spec's columns filled as the module
/// documentation describes, in batches to `sender`. Returns the number of
/// features sent.
///
/// # Errors
/// Only when the receiver is gone (reported as `Ok`); unreadable layers are
/// problems of the whole layer.
pub(crate) fn read(
    source: &Source,
    options: &ImportOptions,
    parents: &StoredParents,
    sender: &tokio::sync::mpsc::Sender<ReadMessage>,
) -> Result<u64, ImportError> {
    let spec = LayerSpec::of(source.entity);
    let file_name = source.file_name();
    let sources: &[(&str, &str)] = match source.entity {
        Entity::Buildings => &[
            ("code", "stored grid + OSM order"),
            ("name", "name, addr:street addr:housenumber, OSM id"),
            ("grid_code", "stored grid holding the building"),
            ("households", "building:flats"),
            ("floors", "building:levels"),
        ],
        _ => &[
            ("code", "osm/node|way|relation/id"),
            ("address", "addr:street addr:housenumber"),
            ("building_code", "stored building holding the address"),
        ],
    };
    let fields = spec
        .fields
        .iter()
        .map(|field| {
            let mut used = FieldUse::unmapped(field.column);
            if let Some((_, from)) = sources.iter().find(|(column, _)| *column == field.column) {
                used.source = Some((*from).to_owned());
                used.origin = FieldOrigin::Alias;
            }
            used
        })
        .collect();
    let mut header = LayerHeader {
        fields,
        crs: "EPSG:4326 (OpenStreetMap)".to_owned(),
        transformed: false,
        problems: Vec::new(),
        dropped_personal: Vec::new(),
    };
    if let Some(parent) = parents.staged_alongside {
        header.problems.push(Problem::layer(
            &file_name,
            None,
            format!(
                "OpenStreetMap {} are placed in the {parent} stored before the import starts, \
                 not in the {parent} of this same import, which are written only at its end: \
                 import the {parent} in a run of their own first, then this file",
                source.entity
            ),
        ));
        let _ = sender.blocking_send(ReadMessage::Header(header));
        return Ok(0);
    }
    let index = match ParentIndex::new(parents) {
        Ok(index) => index,
        Err(reason) => {
            header
                .problems
                .push(Problem::layer(&file_name, None, reason));
            let _ = sender.blocking_send(ReadMessage::Header(header));
            return Ok(0);
        }
    };
    if index.codes.is_empty() {
        let parent = if source.entity == Entity::Buildings {
            "grids"
        } else {
            "buildings"
        };
        header.problems.push(Problem::layer(
            &file_name,
            None,
            format!(
                "OpenStreetMap {} are placed in the stored {parent}, and the database has none; \
                 import the {parent} first",
                source.entity
            ),
        ));
        let _ = sender.blocking_send(ReadMessage::Header(header));
        return Ok(0);
    }
    if sender.blocking_send(ReadMessage::Header(header)).is_err() {
        return Ok(0);
    }
    let mut reader = Reader {
        spec,
        file_name: &file_name,
        options,
        index: &index,
        sender,
        batch: Batch::default(),
        number: 0,
        sent: 0,
        per_grid: HashMap::new(),
        stopped: false,
    };
    let passes: &[(&str, &str)] = match source.entity {
        Entity::Buildings => &[("multipolygons", "building IS NOT NULL")],
        _ => &[
            (
                "multipolygons",
                "building IS NOT NULL AND other_tags LIKE '%\"addr:housenumber\"%'",
            ),
            ("points", "other_tags LIKE '%\"addr:housenumber\"%'"),
        ],
    };
    for &(layer_name, filter) in passes {
        // A dataset per layer: the OSM driver reads the file front to back.
        let dataset = match Dataset::open(&source.path) {
            Ok(dataset) => dataset,
            Err(err) => {
                reader.problem(format!("GDAL cannot read this file ({err})"));
                break;
            }
        };
        let mut layer = match dataset.layer_by_name(layer_name) {
            Ok(layer) => layer,
            Err(err) => {
                reader.problem(format!(
                    "the OpenStreetMap file has no {layer_name} layer ({err})"
                ));
                break;
            }
        };
        if let Err(err) = layer.set_attribute_filter(filter) {
            reader.problem(format!("cannot filter the {layer_name} layer ({err})"));
            break;
        }
        let names: Vec<String> = layer.defn().fields().map(|field| field.name()).collect();
        for feature in layer.features() {
            let tags = tags_of(&feature, &names);
            reader.feature(layer_name, &tags, feature.geometry());
            if reader.stopped {
                return Ok(reader.sent);
            }
        }
    }
    reader.flush();
    Ok(reader.sent)
}

/// The state of one OSM read: the batch being filled and the numbering.
struct Reader<'a> {
    spec: &'static LayerSpec,
    file_name: &'a str,
    options: &'a ImportOptions,
    index: &'a ParentIndex,
    sender: &'a tokio::sync::mpsc::Sender<ReadMessage>,
    batch: Batch,
    number: u64,
    sent: u64,
    /// OSM buildings numbered so far in each grid (by position in the index).
    per_grid: HashMap<usize, u64>,
    stopped: bool,
}

impl Reader<'_> {
    fn problem(&mut self, reason: String) {
        self.batch
            .problems
            .push(Problem::layer(self.file_name, None, reason));
    }

    fn feature(
        &mut self,
        layer: &str,
        tags: &HashMap<String, String>,
        geometry: Option<&Geometry>,
    ) {
        self.number += 1;
        let number = self.number;
        let Some((kind, id)) = osm_ref(layer, tags) else {
            self.feature_problem(number, "the feature has no OSM id".to_owned());
            return;
        };
        let address = street_address(tags);
        if self.spec.entity == Entity::Addresses && address.is_none() {
            // The filter only looked for a house number; a street is needed too.
            self.number -= 1;
            return;
        }
        let Some(geometry) = geometry else {
            self.feature_problem(number, "the feature has no geometry".to_owned());
            return;
        };
        // A node is a point; a building, also as an address, is an area.
        let shape = if kind == "node" {
            GeometryKind::Point
        } else {
            GeometryKind::Area
        };
        let wkb = match crate::read::prepare_osm_geometry(geometry, shape, self.options) {
            Ok(wkb) => wkb,
            Err(reason) => {
                self.feature_problem(number, reason);
                return;
            }
        };
        // A node is looked up as it is stored: an entrance node lies on its
        // building's outline, where a rounded copy could fall either side.
        let spot = if kind == "node" {
            let (x, y, _) = geometry.get_point(0);
            Some((x, y, geometry.clone()))
        } else {
            interior_point(geometry).and_then(|(x, y)| point(x, y).map(|point| (x, y, point)))
        };
        let Some((x, y, spot)) = spot else {
            self.feature_problem(number, "the area has no interior point".to_owned());
            return;
        };
        let Some(parent) = self.index.find(x, y, &spot) else {
            let parent = if self.spec.entity == Entity::Buildings {
                "grid"
            } else {
                "building"
            };
            self.feature_problem(
                number,
                format!("OSM {kind} {id} lies in no stored {parent} (at {x:.7} {y:.7})"),
            );
            return;
        };
        let parent_code = self.index.codes[parent].clone();
        let (values, wkb) = if self.spec.entity == Entity::Buildings {
            let count = self.per_grid.entry(parent).or_insert(0);
            *count += 1;
            if *count >= 10u64.pow(BUILDING_NUMBER_DIGITS as u32) {
                self.feature_problem(
                    number,
                    format!("grid {parent_code} holds more OSM buildings than seven digits number"),
                );
                return;
            }
            let code = format!("{parent_code}{count:0BUILDING_NUMBER_DIGITS$}");
            let name = tags
                .get("name")
                .filter(|name| !name.trim().is_empty())
                .map(|name| name.trim().to_owned())
                .or(address)
                .unwrap_or_else(|| format!("OSM {kind} {id}"));
            let households = whole_number(tags.get("building:flats"), 0).unwrap_or(0);
            let floors = whole_number(tags.get("building:levels"), 1);
            let values = self.columns(&[
                ("code", Some(code)),
                ("name", Some(name)),
                ("grid_code", Some(parent_code)),
                ("households", Some(households.to_string())),
                ("floors", floors.map(|floors| floors.to_string())),
            ]);
            (values, wkb)
        } else {
            let Ok(point_wkb) = spot.wkb() else {
                self.feature_problem(number, "cannot encode the address point".to_owned());
                return;
            };
            let values = self.columns(&[
                ("code", Some(format!("osm/{kind}/{id}"))),
                ("address", address),
                ("building_code", Some(parent_code)),
            ]);
            (values, if kind == "node" { wkb } else { point_wkb })
        };
        self.batch.features.push(RawFeature {
            number,
            values,
            wkb: Some(wkb),
        });
        self.sent += 1;
        if self.batch.features.len() >= BATCH_FEATURES {
            self.flush();
        }
    }

    /// Values in the order of the layer spec's columns.
    fn columns(&self, values: &[(&str, Option<String>)]) -> Vec<Option<String>> {
        self.spec
            .fields
            .iter()
            .map(|field| {
                values
                    .iter()
                    .find(|(column, _)| *column == field.column)
                    .and_then(|(_, value)| value.clone())
            })
            .collect()
    }

    fn feature_problem(&mut self, number: u64, reason: String) {
        self.batch
            .problems
            .push(Problem::feature(self.file_name, number, None, reason));
    }

    fn flush(&mut self) {
        self.options.advance(self.batch.features.len() as u64);
        if self.batch.features.is_empty() && self.batch.problems.is_empty() {
            return;
        }
        if self
            .sender
            .blocking_send(ReadMessage::Batch(std::mem::take(&mut self.batch)))
            .is_err()
        {
            self.stopped = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_tags_are_parsed_with_escapes() {
        let tags = parse_other_tags(r#""addr:street"=>"Aleksanterinkatu","name:sv"=>"Say \"hi\"""#);
        assert_eq!(tags["addr:street"], "Aleksanterinkatu");
        assert_eq!(tags["name:sv"], "Say \"hi\"");
    }

    #[test]
    fn interior_point_of_an_l_shape_is_inside_it() {
        // An L whose centroid lies outside it.
        let geometry = Geometry::from_wkt("POLYGON ((0 0, 10 0, 10 1, 1 1, 1 10, 0 10, 0 0))")
            .expect("valid WKT");
        let (x, y) = interior_point(&geometry).expect("a point");
        let point = point(x, y).expect("a point");
        assert!(geometry.contains(&point), "({x} {y})");
    }
}
