//! Layers computed in process rather than read from a table (the service
//! circles, the gap findings): a snapshot of features drawn per tile like the
//! generalised polygon layers, with points written as points.
//!
//! Polygons go through a [`GeneralisedPolygons`] of their own (chains,
//! Douglas–Peucker per zoom, clipping, tiny-feature rule), so they look like
//! every other polygon layer; overlapping features (circles of neighbouring
//! stations) share no edges and simply become chains of their own. Points are
//! kept when they lie in the buffered tile, as `ST_AsMVTGeom` keeps them.
//!
//! Each snapshot remembers, per feature, its extent and a fingerprint of its
//! geometry, so [`ComputedLayer::changed_extent`] can name exactly the area
//! whose tiles differ between two snapshots.

use crate::generalise::{boxes_meet, lonlat_to_mercator, TileFrame};
use crate::mvt::LayerWriter;
use crate::{GeneralisedPolygons, LayerDef, TileCoord, BUFFER, EXTENT};
use geo_types::{Geometry, MultiPolygon};
use std::collections::BTreeMap;
use std::hash::{Hash as _, Hasher as _};

/// One feature of a computed layer: attributes aligned with the layer's
/// columns (`None` is left out of the tile) and a geometry in lon/lat degrees
/// (CGCS2000): a (multi)polygon or a point; anything else is dropped.
pub type ComputedFeature = (Vec<Option<String>>, Geometry<f64>);

/// The extent of a feature (degrees) and a fingerprint of its geometry.
type Footprint = ([f64; 4], u64);

/// A computed layer's features, ready to draw.
#[derive(Debug)]
pub struct ComputedLayer {
    def: &'static LayerDef,
    polygons: GeneralisedPolygons,
    /// Point features in Web Mercator.
    points: Vec<(Vec<Option<String>>, [f64; 2])>,
    /// Footprints by attributes (several features may share attributes).
    footprints: BTreeMap<Vec<Option<String>>, Vec<Footprint>>,
}

impl ComputedLayer {
    /// Builds the layer `def` from its features (CPU work: run it off the
    /// async workers).
    #[must_use]
    pub fn build(def: &'static LayerDef, features: Vec<ComputedFeature>) -> Self {
        let mut polygon_rows = Vec::new();
        let mut points = Vec::new();
        let mut footprints: BTreeMap<Vec<Option<String>>, Vec<Footprint>> = BTreeMap::new();
        for (attributes, geometry) in features {
            let multi = match geometry {
                Geometry::Point(point) => {
                    let (x, y) = point.x_y();
                    footprints
                        .entry(attributes.clone())
                        .or_default()
                        .push(([x, y, x, y], fingerprint(&[[x, y]])));
                    points.push((attributes, lonlat_to_mercator(x, y)));
                    continue;
                }
                Geometry::Polygon(polygon) => MultiPolygon(vec![polygon]),
                Geometry::MultiPolygon(multi) => multi,
                _ => continue,
            };
            let coords: Vec<[f64; 2]> = multi
                .0
                .iter()
                .flat_map(|polygon| std::iter::once(polygon.exterior()).chain(polygon.interiors()))
                .flat_map(|ring| ring.0.iter().map(|c| [c.x, c.y]))
                .collect();
            if coords.is_empty() {
                continue;
            }
            let bbox = coords
                .iter()
                .fold([f64::MAX, f64::MAX, f64::MIN, f64::MIN], |b, &[x, y]| {
                    [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)]
                });
            footprints
                .entry(attributes.clone())
                .or_default()
                .push((bbox, fingerprint(&coords)));
            let mercator = multi_to_mercator(&multi);
            polygon_rows.push((attributes, mercator));
        }
        // In a fixed order, so equal feature sets compare equal.
        for list in footprints.values_mut() {
            list.sort_by_key(|(bbox, print)| (*print, bbox.map(f64::to_bits)));
        }
        Self {
            def,
            polygons: GeneralisedPolygons::build(vec![(def, polygon_rows)]),
            points,
            footprints,
        }
    }

    /// The layer this snapshot draws.
    #[must_use]
    pub fn def(&self) -> &'static LayerDef {
        self.def
    }

    /// Number of features.
    #[must_use]
    pub fn feature_count(&self) -> usize {
        self.footprints.values().map(Vec::len).sum()
    }

    /// The layer in `tile` as an MVT message; empty when no feature meets it.
    #[must_use]
    pub fn encode(&self, tile: TileCoord) -> Vec<u8> {
        let mut writer = LayerWriter::new(self.def.name, EXTENT);
        self.polygons
            .write_features(self.def.name, tile, &mut writer);
        let frame = TileFrame::new(tile);
        for (attributes, point) in &self.points {
            if !boxes_meet(&[point[0], point[1], point[0], point[1]], &frame.query) {
                continue;
            }
            let [x, y] = frame.to_tile(*point);
            // Inside the buffered tile, so far within i32.
            #[expect(clippy::cast_possible_truncation, reason = "within the buffered tile")]
            let snapped = [x.round() as i32, y.round() as i32];
            let limit = i32::try_from(EXTENT + BUFFER).unwrap_or(i32::MAX);
            let low = -i32::try_from(BUFFER).unwrap_or(0);
            if !(low..=limit).contains(&snapped[0]) || !(low..=limit).contains(&snapped[1]) {
                continue;
            }
            let attributes = self
                .def
                .columns
                .iter()
                .zip(attributes)
                .filter_map(|((_, key, _), value)| Some((*key, value.as_deref()?)));
            writer.add_point(attributes, snapped);
        }
        writer.finish()
    }

    /// The extent (degrees, `[west, south, east, north]`) of every feature
    /// that is in one snapshot and not the other (added, removed, moved or
    /// with other attributes), old and new places both; `None` when the two
    /// draw the same features. Without an old snapshot, everything changed.
    #[must_use]
    pub fn changed_extent(old: Option<&Self>, new: &Self) -> Option<[f64; 4]> {
        let empty = BTreeMap::new();
        let old_footprints = old.map_or(&empty, |old| &old.footprints);
        let mut extent: Option<[f64; 4]> = None;
        let mut grow = |footprints: &[Footprint]| {
            for (bbox, _) in footprints {
                extent = Some(extent.map_or(*bbox, |e| {
                    [
                        e[0].min(bbox[0]),
                        e[1].min(bbox[1]),
                        e[2].max(bbox[2]),
                        e[3].max(bbox[3]),
                    ]
                }));
            }
        };
        for (attributes, before) in old_footprints {
            match new.footprints.get(attributes) {
                Some(after) if after == before => {}
                Some(after) => {
                    grow(before);
                    grow(after);
                }
                None => grow(before),
            }
        }
        for (attributes, after) in &new.footprints {
            if !old_footprints.contains_key(attributes) {
                grow(after);
            }
        }
        extent
    }
}

/// A fingerprint of coordinates (exact bits): equal geometries give equal
/// fingerprints, and a moved vertex almost surely another.
fn fingerprint(coords: &[[f64; 2]]) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    for [x, y] in coords {
        x.to_bits().hash(&mut hasher);
        y.to_bits().hash(&mut hasher);
    }
    hasher.finish()
}

fn multi_to_mercator(multi: &MultiPolygon<f64>) -> MultiPolygon<f64> {
    use geo::MapCoords as _;
    multi.map_coords(|coord| {
        let [x, y] = lonlat_to_mercator(coord.x, coord.y);
        geo_types::coord! { x: x, y: y }
    })
}

/// `bbox` (degrees) grown by `metres` on every side, for invalidating tiles
/// around a change by a distance on the ground.
#[must_use]
pub fn grow_lonlat_box(bbox: [f64; 4], metres: f64) -> [f64; 4] {
    // Metres per degree of latitude, and of longitude at the box's edge
    // nearest the pole (where a degree is shortest, so the box grows most).
    const METRES_PER_DEGREE: f64 = 111_320.0;
    let lat = bbox[1].abs().max(bbox[3].abs()).min(89.0).to_radians();
    let dlat = metres / METRES_PER_DEGREE;
    let dlon = metres / (METRES_PER_DEGREE * lat.cos());
    [
        bbox[0] - dlon,
        bbox[1] - dlat,
        bbox[2] + dlon,
        bbox[3] + dlat,
    ]
}

/// Whether two lon/lat boxes meet.
#[must_use]
pub fn lonlat_boxes_meet(a: [f64; 4], b: [f64; 4]) -> bool {
    boxes_meet(&a, &b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic is the failure report")]

    use super::*;
    use crate::layers::find_any_layer;
    use geo_types::{polygon, Point};

    fn square(west: f64, south: f64, side: f64) -> Geometry<f64> {
        Geometry::Polygon(polygon![
            (x: west, y: south),
            (x: west + side, y: south),
            (x: west + side, y: south + side),
            (x: west, y: south + side),
        ])
    }

    fn finding(code: &str, geometry: Geometry<f64>) -> ComputedFeature {
        (
            vec![Some("gap".into()), Some(code.into()), Some("12.5".into())],
            geometry,
        )
    }

    #[test]
    fn polygons_and_points_are_drawn_in_one_layer() {
        let def = find_any_layer("gap_findings").unwrap();
        let layer = ComputedLayer::build(
            def,
            vec![
                finding("370681001001", square(120.40, 37.60, 0.001)),
                finding(
                    "370681001002",
                    Geometry::Point(Point::new(120.4005, 37.6005)),
                ),
            ],
        );
        assert_eq!(layer.feature_count(), 2);
        let tile = TileCoord::containing(120.4005, 37.6005, 15);
        let bytes = layer.encode(tile);
        // One layer message holding both codes, its name written once.
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(contains(b"370681001001") && contains(b"370681001002"));
        assert_eq!(
            bytes.windows(12).filter(|w| w == b"gap_findings").count(),
            1
        );
        let far = TileCoord::containing(121.0, 38.0, 15);
        assert!(layer.encode(far).is_empty());
    }

    #[test]
    fn the_changed_extent_covers_exactly_the_features_that_differ() {
        let def = find_any_layer("gap_findings").unwrap();
        let old = ComputedLayer::build(
            def,
            vec![
                finding("a", square(120.40, 37.60, 0.001)),
                finding("b", square(120.50, 37.60, 0.001)),
                finding("c", Geometry::Point(Point::new(120.7, 37.7))),
            ],
        );
        let same = ComputedLayer::build(
            def,
            vec![
                finding("c", Geometry::Point(Point::new(120.7, 37.7))),
                finding("b", square(120.50, 37.60, 0.001)),
                finding("a", square(120.40, 37.60, 0.001)),
            ],
        );
        assert_eq!(ComputedLayer::changed_extent(Some(&old), &same), None);
        // "a" moves north, "c" disappears: both old places and the new one.
        let new = ComputedLayer::build(
            def,
            vec![
                finding("a", square(120.40, 37.65, 0.001)),
                finding("b", square(120.50, 37.60, 0.001)),
            ],
        );
        let extent = ComputedLayer::changed_extent(Some(&old), &new).unwrap();
        assert!((extent[0] - 120.40).abs() < 1e-12, "{extent:?}");
        assert!((extent[1] - 37.60).abs() < 1e-12, "{extent:?}");
        assert!((extent[2] - 120.7).abs() < 1e-12, "{extent:?}");
        assert!((extent[3] - 37.7).abs() < 1e-12, "{extent:?}");
        let all = ComputedLayer::changed_extent(None, &new).unwrap();
        assert!((all[3] - 37.651).abs() < 1e-9, "{all:?}");
    }

    #[test]
    fn boxes_grow_by_ground_metres() {
        let grown = grow_lonlat_box([120.0, 37.0, 120.0, 37.0], 1_000.0);
        assert!((grown[3] - 37.0 - 1_000.0 / 111_320.0).abs() < 1e-12);
        assert!(grown[2] - 120.0 > grown[3] - 37.0);
        assert!(lonlat_boxes_meet(grown, [120.005, 37.005, 121.0, 38.0]));
        assert!(!lonlat_boxes_meet(grown, [120.02, 37.0, 121.0, 38.0]));
    }
}
