//! The point, line and building layers encoded in process from an in-memory
//! copy of their tables, as stored (no generalisation: buildings appear from
//! z14, points and roads need none).
//!
//! The copy is read from the stored Web Mercator column (`geom_3857`), the
//! same coordinates `ST_AsMVTGeom` starts from, with each layer's columns and
//! their types: integer columns (a building's floors) are written as MVT
//! integers, as `ST_AsMVT` writes them. A layer filter that depends on the
//! zoom (`$1`, as for footways) is evaluated by PostGIS for every zoom of the
//! layer's range when the copy is read, so the copy answers it exactly.
//!
//! Drawing follows `ST_AsMVTGeom(…, 4096, 64, true)`: a feature is looked up
//! with the tile grown by the buffer (an R-tree per layer), clipped to that
//! buffered square, snapped to the 4096 grid with repeated points removed;
//! points outside the square, lines shorter than two distinct points and
//! rings without area after snapping are left out; rings are wound as spec
//! 2.1 asks. Features are written in primary-key order, so every replica
//! draws the same bytes.

use crate::generalise::lonlat_to_mercator;
use crate::generalise::{SnapshotError, TileFrame, TilePolygon, CLIP_MAX, CLIP_MIN};
use crate::mvt::{LayerWriter, LineGeometry, PolygonGeometry, Value};
use crate::{find_layer, LayerDef, TileCoord, EXTENT};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};
use sqlx::Executor as _;
use std::sync::Arc;

/// Layers served from the copy; the generalised polygon layers come from
/// [`crate::GeneralisedPolygons`], the label layers from PostGIS.
pub const STORED_LAYERS: &[&str] = &[
    "buildings",
    "stations",
    "rider_rest_stops",
    "roads",
    "addresses",
];

/// A column value of a stored feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    Text(Box<str>),
    Integer(i64),
}

impl Attribute {
    fn value(&self) -> Value<'_> {
        match self {
            Attribute::Text(text) => Value::Text(text),
            Attribute::Integer(number) => Value::Integer(*number),
        }
    }
}

/// A feature's geometry in Web Mercator metres.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Point([f64; 2]),
    Lines(Vec<Vec<[f64; 2]>>),
    /// Polygons, each its rings (exterior first), not closed.
    Polygons(Vec<Vec<Vec<[f64; 2]>>>),
}

/// One row of a stored layer.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFeature {
    /// The row's primary key as text: features are written in its order, so
    /// every replica draws the same bytes whatever order it learnt rows in.
    pub key: Box<str>,
    /// Aligned with the layer's columns; `None` (SQL NULL) is left out.
    pub attributes: Vec<Option<Attribute>>,
    pub shape: Shape,
    /// Bit `z` set when the layer's filter admits the feature at zoom `z`.
    pub zooms: u32,
}

/// One row as read: primary key, column texts, WKB, zoom mask.
type StoredRow = (String, Vec<Option<String>>, Vec<u8>, i32);

/// Rows of one layer.
pub type StoredRows = (&'static LayerDef, Vec<StoredFeature>);

/// A feature's extent in the R-tree, with its slot.
type Entry = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// One layer of the copy. Features sit in slots (`None`: removed by an
/// update); a rebuild compacts them.
#[derive(Debug, Clone)]
struct StoredLayer {
    def: &'static LayerDef,
    features: Vec<Option<Arc<StoredFeature>>>,
    index: RTree<Entry>,
}

/// The in-memory copy of [`STORED_LAYERS`]. Layers are shared between
/// copies, so replacing or updating one leaves the others in place.
#[derive(Debug, Default, Clone)]
pub struct StoredLayers {
    layers: Vec<Arc<StoredLayer>>,
}

/// A Web Mercator box `[min x, min y, max x, max y]` around a lon/lat box
/// (degrees), grown by a metre so a row PostGIS finds touching it is found
/// by the copy as well.
#[must_use]
pub fn mercator_box(bbox: [f64; 4]) -> [f64; 4] {
    let [w, s] = lonlat_to_mercator(bbox[0], bbox[1]);
    let [e, n] = lonlat_to_mercator(bbox[2], bbox[3]);
    [w - 1.0, s - 1.0, e + 1.0, n + 1.0]
}

/// The primary key of a layer's table.
fn primary_key(table: &str) -> &'static str {
    if table == "roads" {
        "id"
    } else {
        "code"
    }
}

impl StoredLayers {
    /// Reads one stored layer from the database (see the module docs).
    ///
    /// # Errors
    /// [`SnapshotError`] when the layer cannot be read or holds a geometry
    /// that is not a point, line or polygon.
    pub async fn fetch_layer(
        pool: &sqlx::PgPool,
        def: &'static LayerDef,
    ) -> Result<StoredRows, SnapshotError> {
        Self::fetch_layer_within(pool, def, None).await
    }

    /// Reads the rows of one stored layer whose geometry's box meets
    /// `within` (Web Mercator, see [`mercator_box`]); all rows for `None`.
    ///
    /// # Errors
    /// As [`Self::fetch_layer`].
    pub async fn fetch_layer_within(
        pool: &sqlx::PgPool,
        def: &'static LayerDef,
        within: Option<[f64; 4]>,
    ) -> Result<StoredRows, SnapshotError> {
        let query_error = |source| SnapshotError::Query {
            layer: def.name,
            source,
        };
        let columns: Vec<String> = def
            .columns
            .iter()
            .map(|(expr, _, _)| format!("({expr})"))
            .collect();
        // The columns' types, without reading a row.
        let described = pool
            .describe(&format!(
                "SELECT {} FROM {} LIMIT 0",
                columns.join(", "),
                def.table
            ))
            .await
            .map_err(query_error)?;
        let integer: Vec<bool> = described
            .columns()
            .iter()
            .map(|column| {
                matches!(
                    sqlx::TypeInfo::name(sqlx::Column::type_info(column)),
                    "INT2" | "INT4" | "INT8"
                )
            })
            .collect();
        let texts: Vec<String> = columns.iter().map(|c| format!("{c}::text")).collect();
        // The layer's own filter goes into the query unless it depends on
        // the zoom, which becomes the per-feature zoom mask instead.
        let mut conditions: Vec<String> = Vec::new();
        let zooms = match def.filter {
            Some(predicate) if predicate.contains("$1") => format!(
                "(SELECT COALESCE(bit_or(1 << z), 0) FROM generate_series({}, {}) AS z WHERE {})",
                def.minzoom,
                def.maxzoom,
                predicate.replace("$1", "z")
            ),
            Some(predicate) => {
                conditions.push(format!("({predicate})"));
                "-1".to_owned()
            }
            None => "-1".to_owned(),
        };
        if let Some([w, s, e, n]) = within {
            conditions.push(format!(
                "{} && ST_MakeEnvelope({w}, {s}, {e}, {n}, 3857)",
                def.geometry
            ));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT ({})::text, ARRAY[{}], ST_AsBinary({}), {zooms} FROM {}{filter}",
            primary_key(def.table),
            texts.join(", "),
            def.geometry,
            def.table,
        );
        let rows: Vec<StoredRow> = sqlx::query_as(&sql)
            .fetch_all(pool)
            .await
            .map_err(query_error)?;
        let mut features = Vec::with_capacity(rows.len());
        for (index, (key, texts, wkb, zooms)) in rows.into_iter().enumerate() {
            let geometry_error = |reason: String| SnapshotError::Geometry {
                layer: def.name,
                index,
                reason,
            };
            let attributes = texts
                .into_iter()
                .zip(&integer)
                .map(|(text, &is_integer)| {
                    let text = text?;
                    Some(match text.parse::<i64>() {
                        Ok(number) if is_integer => Attribute::Integer(number),
                        _ => Attribute::Text(text.into_boxed_str()),
                    })
                })
                .collect();
            let shape = decode(&wkb).map_err(geometry_error)?;
            #[expect(clippy::cast_sign_loss, reason = "a bit mask")]
            let zooms = zooms as u32;
            features.push(StoredFeature {
                key: key.into_boxed_str(),
                attributes,
                shape,
                zooms,
            });
        }
        Ok((def, features))
    }

    /// Reads every stored layer, for [`Self::build`].
    ///
    /// # Errors
    /// As [`Self::fetch_layer`].
    pub async fn fetch(pool: &sqlx::PgPool) -> Result<Vec<StoredRows>, SnapshotError> {
        let mut rows = Vec::new();
        for def in STORED_LAYERS.iter().filter_map(|name| find_layer(name)) {
            rows.push(Self::fetch_layer(pool, def).await?);
        }
        Ok(rows)
    }

    /// Indexes the rows (CPU work: run it off the async workers).
    #[must_use]
    pub fn build(rows: Vec<StoredRows>) -> Self {
        Self {
            layers: rows
                .into_iter()
                .map(|rows| Arc::new(StoredLayer::build(rows)))
                .collect(),
        }
    }

    /// This copy with the layers of `rows` replaced (all their rows) and
    /// the others shared.
    #[must_use]
    pub fn replaced(&self, rows: Vec<StoredRows>) -> Self {
        let mut copy = self.clone();
        for rows in rows {
            copy.put(Arc::new(StoredLayer::build(rows)));
        }
        copy
    }

    /// This copy after a change within `within` (Web Mercator, see
    /// [`mercator_box`]): `rows` are the layer's rows PostGIS now finds
    /// there ([`Self::fetch_layer_within`]). Every feature of the copy
    /// meeting the box, or with the key of one of `rows`, is dropped and
    /// `rows` are added, so a change whose old and new extents lie in the
    /// box (as a change notice's extent does) is applied exactly. Other
    /// layers are shared.
    #[must_use]
    pub fn updated(&self, (def, rows): StoredRows, within: [f64; 4]) -> Self {
        let mut copy = self.clone();
        let layer = match self.layers.iter().find(|held| held.def.name == def.name) {
            Some(held) => held.updated(rows, within),
            None => StoredLayer::build((def, rows)),
        };
        copy.put(Arc::new(layer));
        copy
    }

    fn put(&mut self, layer: Arc<StoredLayer>) {
        match self
            .layers
            .iter_mut()
            .find(|held| held.def.name == layer.def.name)
        {
            Some(held) => *held = layer,
            None => self.layers.push(layer),
        }
    }

    /// The layers whose rows come from `table`.
    #[must_use]
    pub fn layers_of(table: &str) -> Vec<&'static LayerDef> {
        STORED_LAYERS
            .iter()
            .filter_map(|name| find_layer(name))
            .filter(|def| def.table == table)
            .collect()
    }

    /// Number of features of `layer`, `None` when the copy does not hold it.
    #[must_use]
    pub fn feature_count(&self, layer: &str) -> Option<usize> {
        self.layers
            .iter()
            .find(|held| held.def.name == layer)
            .map(|held| held.features.iter().flatten().count())
    }

    /// `layer` of `tile` as an MVT message (empty when no feature meets the
    /// tile), or `None` when the copy does not hold `layer`.
    #[must_use]
    pub fn encode_layer(&self, layer: &str, tile: TileCoord) -> Option<Vec<u8>> {
        let held = self.layers.iter().find(|held| held.def.name == layer)?;
        Some(held.encode(tile))
    }
}

fn entry(id: usize, feature: &StoredFeature) -> Option<Entry> {
    let [w, s, e, n] = extent(&feature.shape)?;
    let id = u32::try_from(id).ok()?;
    Some(GeomWithData::new(
        Rectangle::from_corners([w, s], [e, n]),
        id,
    ))
}

fn aabb([w, s, e, n]: [f64; 4]) -> AABB<[f64; 2]> {
    AABB::from_corners([w, s], [e, n])
}

impl StoredLayer {
    fn build((def, features): StoredRows) -> Self {
        let features: Vec<Option<Arc<StoredFeature>>> =
            features.into_iter().map(|f| Some(Arc::new(f))).collect();
        let entries: Vec<Entry> = features
            .iter()
            .enumerate()
            .filter_map(|(i, feature)| entry(i, feature.as_ref()?))
            .collect();
        Self {
            def,
            features,
            index: RTree::bulk_load(entries),
        }
    }

    fn updated(&self, rows: Vec<StoredFeature>, within: [f64; 4]) -> Self {
        let mut layer = self.clone();
        let mut gone: Vec<Entry> = layer
            .index
            .locate_in_envelope_intersecting(&aabb(within))
            .copied()
            .collect();
        // A row PostGIS found by its (outward-rounded) box but whose extent
        // misses `within` is also still held: drop it by its key.
        for row in &rows {
            let Some(bbox) = extent(&row.shape) else {
                continue;
            };
            gone.extend(
                layer
                    .index
                    .locate_in_envelope_intersecting(&aabb(bbox))
                    .filter(|entry| {
                        layer.features[entry.data as usize]
                            .as_ref()
                            .is_some_and(|held| held.key == row.key)
                    })
                    .copied(),
            );
        }
        for entry in gone {
            if layer.index.remove(&entry).is_some() {
                layer.features[entry.data as usize] = None;
            }
        }
        for row in rows {
            let id = layer.features.len();
            if let Some(entry) = entry(id, &row) {
                layer.index.insert(entry);
            }
            layer.features.push(Some(Arc::new(row)));
        }
        // Compact once removed slots outnumber the features.
        let held = layer.features.iter().flatten().count();
        if layer.features.len() > 2 * held + 1024 {
            let rows = layer
                .features
                .into_iter()
                .flatten()
                .map(Arc::unwrap_or_clone)
                .collect();
            return StoredLayer::build((layer.def, rows));
        }
        layer
    }

    fn encode(&self, tile: TileCoord) -> Vec<u8> {
        let frame = TileFrame::new(tile);
        let [w, s, e, n] = frame.query;
        let zoom_bit = 1_u32 << tile.z;
        // Each feature with its extent, as the R-tree holds it.
        let mut found: Vec<(&StoredFeature, [f64; 4])> = self
            .index
            .locate_in_envelope_intersecting(&AABB::from_corners([w, s], [e, n]))
            .filter_map(|entry| {
                let feature = self.features[entry.data as usize].as_deref()?;
                let envelope = rstar::RTreeObject::envelope(entry.geom());
                let ([west, south], [east, north]) = (envelope.lower(), envelope.upper());
                Some((feature, [west, south, east, north]))
            })
            .filter(|(feature, _)| feature.zooms & zoom_bit != 0)
            .collect();
        // Primary-key order, whatever order the tree walks in.
        found.sort_unstable_by(|a, b| a.0.key.cmp(&b.0.key));
        let mut writer = LayerWriter::new(self.def.name, EXTENT);
        for (feature, bbox) in found {
            let attributes = || {
                self.def
                    .columns
                    .iter()
                    .zip(&feature.attributes)
                    .filter_map(|((_, key, _), value)| Some((*key, value.as_ref()?.value())))
            };
            match &feature.shape {
                Shape::Point(point) => {
                    if let Some(snapped) = snap_point(frame.to_tile(*point)) {
                        writer.add_point(attributes(), snapped);
                    }
                }
                Shape::Lines(_) | Shape::Polygons(_) if below_resolution(bbox, &frame) => {}
                Shape::Lines(lines) => {
                    let mut geometry = LineGeometry::default();
                    for line in lines {
                        let in_tile: Vec<[f64; 2]> =
                            line.iter().map(|&point| frame.to_tile(point)).collect();
                        for part in clip_line(&in_tile) {
                            geometry.push_line(&part);
                        }
                    }
                    writer.add_line(attributes(), &geometry);
                }
                Shape::Polygons(polygons) => {
                    let mut geometry = PolygonGeometry::default();
                    let mut ring_points: Vec<[f64; 2]> = Vec::new();
                    for rings in polygons {
                        let mut polygon = TilePolygon::default();
                        for (i, ring) in rings.iter().enumerate() {
                            ring_points.clear();
                            ring_points.extend(ring.iter().map(|&point| frame.to_tile(point)));
                            if !polygon.push_ring(&ring_points, i == 0) {
                                break;
                            }
                        }
                        polygon.write(&mut geometry);
                    }
                    writer.add_polygon(attributes(), &geometry);
                }
            }
        }
        writer.finish()
    }
}

fn extent(shape: &Shape) -> Option<[f64; 4]> {
    let grow =
        |b: [f64; 4], &[x, y]: &[f64; 2]| [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
    let empty = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    let bbox = match shape {
        Shape::Point(point) => grow(empty, point),
        Shape::Lines(lines) => lines.iter().flatten().fold(empty, grow),
        Shape::Polygons(polygons) => polygons
            .iter()
            .filter_map(|rings| rings.first())
            .flatten()
            .fold(empty, grow),
    };
    (bbox[0] <= bbox[2]).then_some(bbox)
}

fn to_units(value: f64) -> i32 {
    // Only called on coordinates inside the buffered tile.
    #[expect(clippy::cast_possible_truncation, reason = "within the buffered tile")]
    let units = value.round() as i32;
    units
}

/// A point in tile units, snapped; `None` outside the buffered tile.
fn snap_point([x, y]: [f64; 2]) -> Option<[i32; 2]> {
    let inside = |v: f64| (CLIP_MIN..=CLIP_MAX).contains(&v);
    (inside(x) && inside(y)).then(|| [to_units(x), to_units(y)])
}

/// The parts of a line (tile units) inside the buffered tile, as
/// `ST_AsMVTGeom` makes them: the line is snapped to the tile grid (repeated
/// points removed) before it is clipped, crossings are rounded, and a part
/// needs two distinct points. Liang–Barsky per segment; consecutive visible
/// segments join one part.
fn clip_line(line: &[[f64; 2]]) -> Vec<Vec<[i32; 2]>> {
    let mut snapped: Vec<[f64; 2]> = Vec::with_capacity(line.len());
    for &[x, y] in line {
        let point = [x.round(), y.round()];
        if snapped.last() != Some(&point) {
            snapped.push(point);
        }
    }
    let mut parts: Vec<Vec<[f64; 2]>> = Vec::new();
    let mut open = false;
    for segment in snapped.windows(2) {
        let (a, b) = (segment[0], segment[1]);
        let Some((t0, t1)) = clip_segment(a, b) else {
            open = false;
            continue;
        };
        let at = |t: f64| [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
        if !(open && t0 == 0.0) {
            parts.push(vec![at(t0)]);
        }
        if let Some(part) = parts.last_mut() {
            part.push(if t1 == 1.0 { b } else { at(t1) });
        }
        open = t1 == 1.0;
    }
    parts
        .into_iter()
        .filter_map(|part| {
            let mut snapped: Vec<[i32; 2]> = Vec::with_capacity(part.len());
            for [x, y] in part {
                let point = [to_units(x), to_units(y)];
                if snapped.last() != Some(&point) {
                    snapped.push(point);
                }
            }
            (snapped.len() >= 2).then_some(snapped)
        })
        .collect()
}

/// Whether a line or polygon is under half a tile unit both wide and high,
/// which `ST_AsMVTGeom` leaves out before drawing anything.
fn below_resolution(bbox: [f64; 4], frame: &TileFrame) -> bool {
    let [w, s] = frame.to_tile([bbox[0], bbox[1]]);
    let [e, n] = frame.to_tile([bbox[2], bbox[3]]);
    (e - w).abs() < 0.5 && (n - s).abs() < 0.5
}

/// The parameter range `[t0, t1]` of segment `a`→`b` inside the buffered
/// tile; `None` when it misses it.
fn clip_segment(a: [f64; 2], b: [f64; 2]) -> Option<(f64, f64)> {
    let (mut t0, mut t1) = (0.0_f64, 1.0_f64);
    let d = [b[0] - a[0], b[1] - a[1]];
    for axis in 0..2 {
        for (p, q) in [
            (-d[axis], a[axis] - CLIP_MIN),
            (d[axis], CLIP_MAX - a[axis]),
        ] {
            if p == 0.0 {
                if q < 0.0 {
                    return None;
                }
            } else {
                let t = q / p;
                if p < 0.0 {
                    t0 = t0.max(t);
                } else {
                    t1 = t1.min(t);
                }
            }
        }
    }
    (t0 <= t1).then_some((t0, t1))
}

fn decode(wkb: &[u8]) -> Result<Shape, String> {
    use geo_types::Geometry;
    let geometry = wkb::reader::read_wkb(wkb).map_err(|err| err.to_string())?;
    let line = |line: &geo_types::LineString<f64>| line.0.iter().map(|c| [c.x, c.y]).collect();
    let rings = |polygon: &geo_types::Polygon<f64>| -> Vec<Vec<[f64; 2]>> {
        std::iter::once(polygon.exterior())
            .chain(polygon.interiors())
            .map(|ring| {
                let mut points: Vec<[f64; 2]> = line(ring);
                if points.len() > 1 && points.first() == points.last() {
                    points.pop();
                }
                points
            })
            .collect()
    };
    match geo_traits::to_geo::ToGeoGeometry::to_geometry(&geometry) {
        Geometry::Point(point) => Ok(Shape::Point([point.x(), point.y()])),
        Geometry::MultiPoint(points) if points.0.len() == 1 => {
            Ok(Shape::Point([points.0[0].x(), points.0[0].y()]))
        }
        Geometry::LineString(single) => Ok(Shape::Lines(vec![line(&single)])),
        Geometry::MultiLineString(multi) => Ok(Shape::Lines(multi.0.iter().map(line).collect())),
        Geometry::Polygon(polygon) => Ok(Shape::Polygons(vec![rings(&polygon)])),
        Geometry::MultiPolygon(multi) => Ok(Shape::Polygons(multi.0.iter().map(rings).collect())),
        other => Err(format!(
            "expected a point, line or polygon, found {other:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic is the failure report")]

    use super::*;

    #[test]
    fn a_line_through_the_tile_is_cut_at_the_buffer() {
        let parts = clip_line(&[[-1000.0, 100.0], [100.0, 100.0], [100.0, 5000.0]]);
        assert_eq!(parts, vec![vec![[-64, 100], [100, 100], [100, 4160]]]);
    }

    #[test]
    fn a_line_leaving_and_coming_back_makes_two_parts() {
        let parts = clip_line(&[[10.0, 10.0], [10.0, -500.0], [20.0, -500.0], [20.0, 10.0]]);
        assert_eq!(
            parts,
            vec![vec![[10, 10], [10, -64]], vec![[20, -64], [20, 10]]]
        );
    }

    #[test]
    fn lines_outside_or_collapsing_are_left_out() {
        assert!(clip_line(&[[-500.0, -500.0], [-100.0, -100.0]]).is_empty());
        assert!(clip_line(&[[10.0, 10.0], [10.2, 10.1]]).is_empty());
    }

    /// A building: a 20 m square at `(x, y)` (Web Mercator) with key `key`.
    fn building(key: usize, name: &str, x: f64, y: f64) -> StoredFeature {
        let square = vec![[x, y], [x + 20.0, y], [x + 20.0, y + 20.0], [x, y + 20.0]];
        StoredFeature {
            key: format!("{key:04}").into_boxed_str(),
            attributes: vec![
                Some(Attribute::Text(format!("{key:04}").into_boxed_str())),
                Some(Attribute::Text(name.into())),
                Some(Attribute::Integer(6)),
                None,
            ],
            shape: Shape::Polygons(vec![vec![square]]),
            zooms: u32::MAX,
        }
    }

    #[test]
    fn an_update_within_a_box_draws_what_a_full_reload_draws() {
        let def = find_layer("buildings").unwrap();
        let (x0, y0) = (13_411_000.0, 4_512_000.0);
        let at = |i: usize| (x0 + (i % 10) as f64 * 50.0, y0 + (i / 10) as f64 * 50.0);
        let before: Vec<StoredFeature> = (0..60)
            .map(|i| {
                let (x, y) = at(i);
                building(i, "楼", x, y)
            })
            .collect();
        // After: 11 moved within the box, 12 renamed, 13 deleted, 99 added.
        let mut after: Vec<StoredFeature> = before
            .iter()
            .filter(|feature| &*feature.key != "0013")
            .cloned()
            .collect();
        for feature in &mut after {
            match &*feature.key {
                "0011" => {
                    let (x, y) = at(24);
                    *feature = building(11, "楼", x + 25.0, y + 25.0);
                }
                "0012" => *feature = building(12, "新楼", at(12).0, at(12).1),
                _ => {}
            }
        }
        let (x, y) = at(23);
        after.push(building(99, "加建", x + 25.0, y + 25.0));
        // The change's extent: rows 11–13 and 23–24 and their new places.
        let within = [x0 + 40.0, y0 + 40.0, x0 + 230.0, y0 + 130.0];
        let meets = |feature: &StoredFeature| {
            let b = extent(&feature.shape).unwrap();
            b[0] <= within[2] && within[0] <= b[2] && b[1] <= within[3] && within[1] <= b[3]
        };
        let mut found: Vec<StoredFeature> = after.iter().filter(|f| meets(f)).cloned().collect();
        // PostGIS may also return a row just outside (its boxes are rounded
        // outwards): the update must not hold it twice.
        found.push(after.iter().find(|f| &*f.key == "0030").unwrap().clone());

        let updated = StoredLayers::build(vec![(def, before)]).updated((def, found), within);
        let reloaded = StoredLayers::build(vec![(def, after)]);
        assert_eq!(updated.feature_count("buildings"), Some(60));
        let [lon, lat] = crate::generalise::mercator_to_lonlat([x0 + 100.0, y0 + 100.0]);
        for z in 14..=16 {
            let tile = TileCoord::containing(lon, lat, z);
            let drawn = updated.encode_layer("buildings", tile).unwrap();
            assert!(!drawn.is_empty());
            assert_eq!(
                drawn,
                reloaded.encode_layer("buildings", tile).unwrap(),
                "z{z}"
            );
        }
    }

    #[test]
    fn points_in_the_buffer_are_kept_and_beyond_it_dropped() {
        assert_eq!(snap_point([-64.0, 4160.0]), Some([-64, 4160]));
        assert_eq!(snap_point([-64.6, 10.0]), None);
    }
}
