//! The polygon layers (districts down to grid units, departmental grids)
//! encoded in process from an in-memory snapshot, generalised per zoom without
//! opening gaps or overlaps between neighbours.
//!
//! Topology: every ring of every polygon layer is cut into *chains* at its
//! *nodes*, the vertices where three or more edges meet (where the set of
//! polygons along the boundary changes). Neighbours share bit-identical
//! vertices (the importer and the fixtures keep shared edges shared), so a
//! shared edge is one chain, stored once. Each chain is simplified once per
//! zoom (Douglas–Peucker, nodes fixed) and every ring is reassembled from its
//! chains, so both neighbours, and a community and its grids, draw the same
//! simplified edge. Clipping to a tile computes each crossing from the
//! segment's endpoints in a fixed order and snaps with one rounding, so shared
//! edges stay shared in the tile too.
//!
//! **Tiny features:** generalisation never removes a feature. A ring whose
//! simplified outline collapses (fewer than three distinct corners) is drawn
//! with its full outline at that zoom; whatever then still collapses when
//! snapped to the 4096 tile grid (under about one tile unit across) is left
//! out, exactly as `ST_AsMVTGeom` leaves it out.

use crate::mvt::{LayerWriter, PolygonGeometry};
use crate::{find_layer, LayerDef, TileCoord, BUFFER, EXTENT};
use geo::SimplifyIdx as _;
use std::collections::HashMap;

/// Layers served from the snapshot. Buildings are not generalised (they share
/// no edges with the rest and appear only from z14): see [`crate::stored`].
pub const GENERALISED_LAYERS: &[&str] = &[
    "districts",
    "streets",
    "communities",
    "grids",
    "department_grids",
    "grid_units",
];

/// The deepest generalised zoom. Tiles of deeper zooms (z16, which clients
/// overzoom) keep every vertex.
pub const GENERALISED_MAX_ZOOM: u8 = 15;

/// Douglas–Peucker tolerance in tile units (a tile is 4096 wide): half a
/// pixel of a 512-pixel tile.
pub const TOLERANCE_UNITS: f64 = 4.0;

/// Half the Web Mercator world width in metres.
const HALF_WORLD: f64 = 20_037_508.342_789_244;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("loading layer {layer} for in-process tiles")]
    Query {
        layer: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("loading the inputs of layer {layer}")]
    Store {
        layer: &'static str,
        #[source]
        source: gridmap_store::StoreError,
    },
    #[error("geometry {index} of layer {layer}: {reason}")]
    Geometry {
        layer: &'static str,
        index: usize,
        reason: String,
    },
}

/// A chain of a ring, walked in its stored direction or reversed.
#[derive(Debug, Clone, Copy)]
struct ChainRef {
    chain: u32,
    reversed: bool,
}

#[derive(Debug)]
struct Feature {
    /// Aligned with the layer's columns; `None` is left out of the tile.
    attributes: Vec<Option<String>>,
    /// `[min x, min y, max x, max y]` in Web Mercator metres.
    bbox: [f64; 4],
    /// Polygons, each its exterior ring then its holes, as chains.
    polygons: Vec<Vec<Vec<ChainRef>>>,
}

#[derive(Debug)]
struct FeatureLayer {
    def: &'static LayerDef,
    features: Vec<Feature>,
    /// The features' extents, so a tile visits only the features near it.
    index:
        rstar::RTree<rstar::primitives::GeomWithData<rstar::primitives::Rectangle<[f64; 2]>, u32>>,
}

impl FeatureLayer {
    fn new(def: &'static LayerDef, features: Vec<Feature>) -> Self {
        let entries = features
            .iter()
            .enumerate()
            .map(|(i, feature)| {
                let [w, s, e, n] = feature.bbox;
                rstar::primitives::GeomWithData::new(
                    rstar::primitives::Rectangle::from_corners([w, s], [e, n]),
                    as_u32(i),
                )
            })
            .collect();
        Self {
            def,
            features,
            index: rstar::RTree::bulk_load(entries),
        }
    }

    /// The features whose extent meets `query`, in stored order.
    fn meeting(&self, query: [f64; 4]) -> impl Iterator<Item = &Feature> {
        let [w, s, e, n] = query;
        let mut ids: Vec<u32> = self
            .index
            .locate_in_envelope_intersecting(&rstar::AABB::from_corners([w, s], [e, n]))
            .map(|entry| entry.data)
            .collect();
        ids.sort_unstable();
        ids.into_iter().map(|id| &self.features[id as usize])
    }
}

/// Chains as vertex ids, flattened: chain `i` is
/// `vertices[offsets[i]..offsets[i + 1]]`, nodes at both ends.
#[derive(Debug, Default)]
struct Chains {
    offsets: Vec<u32>,
    vertices: Vec<u32>,
}

impl Chains {
    fn get(&self, chain: u32) -> &[u32] {
        let i = chain as usize;
        &self.vertices[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    fn push(&mut self, chain: &[u32]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.vertices.extend_from_slice(chain);
        self.offsets.push(as_u32(self.vertices.len()));
    }

    fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
}

fn as_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The generalised snapshot of the polygon layers.
#[derive(Debug)]
pub struct GeneralisedPolygons {
    /// Web Mercator coordinates by vertex id.
    vertices: Vec<[f64; 2]>,
    full: Chains,
    /// `simplified[z]` for z in `0..=GENERALISED_MAX_ZOOM`.
    simplified: Vec<Chains>,
    /// Web Mercator extent of every chain, for invalidation.
    chain_bbox: Vec<[f64; 4]>,
    layers: Vec<FeatureLayer>,
}

/// Tile width in Web Mercator metres at zoom `z`.
fn tile_size(z: u8) -> f64 {
    2.0 * HALF_WORLD / f64::from(1_u32 << z)
}

/// The Douglas–Peucker tolerance of zoom `z` in metres.
#[must_use]
pub fn tolerance(z: u8) -> f64 {
    TOLERANCE_UNITS * tile_size(z) / f64::from(EXTENT)
}

/// Where a tile lies in Web Mercator and how its metres map to tile units.
pub(crate) struct TileFrame {
    west: f64,
    north: f64,
    scale: f64,
    /// The tile grown by the clip buffer, `[min x, min y, max x, max y]`.
    pub(crate) query: [f64; 4],
}

impl TileFrame {
    pub(crate) fn new(tile: TileCoord) -> Self {
        let size = tile_size(tile.z);
        let west = -HALF_WORLD + f64::from(tile.x) * size;
        let north = HALF_WORLD - f64::from(tile.y) * size;
        let margin = size * f64::from(BUFFER) / f64::from(EXTENT);
        Self {
            west,
            north,
            scale: f64::from(EXTENT) / size,
            query: [
                west - margin,
                north - size - margin,
                west + size + margin,
                north + margin,
            ],
        }
    }

    /// Web Mercator metres to tile units (y down).
    pub(crate) fn to_tile(&self, [x, y]: [f64; 2]) -> [f64; 2] {
        [(x - self.west) * self.scale, (self.north - y) * self.scale]
    }
}

pub(crate) fn lonlat_to_mercator(lon: f64, lat: f64) -> [f64; 2] {
    let lat = lat.clamp(-85.051_128_78, 85.051_128_78).to_radians();
    [
        lon.to_radians() * 6_378_137.0,
        (std::f64::consts::FRAC_PI_4 + lat / 2.0).tan().ln() * 6_378_137.0,
    ]
}

pub(crate) fn mercator_to_lonlat([x, y]: [f64; 2]) -> [f64; 2] {
    [
        (x / 6_378_137.0).to_degrees(),
        (2.0 * (y / 6_378_137.0).exp().atan() - std::f64::consts::FRAC_PI_2).to_degrees(),
    ]
}

pub(crate) fn boxes_meet(a: &[f64; 4], b: &[f64; 4]) -> bool {
    a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]
}

/// Per layer, its features' attributes (aligned with the layer's columns)
/// and geometries in Web Mercator.
pub type SnapshotRows = Vec<(
    &'static LayerDef,
    Vec<(Vec<Option<String>>, geo_types::MultiPolygon<f64>)>,
)>;

/// Rings of one polygon as vertex ids, before chaining.
type RawPolygon = Vec<Vec<u32>>;

/// A feature before chaining: attributes, extent, polygons.
type RawFeature = (Vec<Option<String>>, [f64; 4], Vec<RawPolygon>);

struct Builder {
    vertex_ids: HashMap<(u64, u64), u32>,
    vertices: Vec<[f64; 2]>,
}

impl Builder {
    fn vertex(&mut self, x: f64, y: f64) -> u32 {
        let next = as_u32(self.vertices.len());
        let id = *self
            .vertex_ids
            .entry((x.to_bits(), y.to_bits()))
            .or_insert(next);
        if id == next {
            self.vertices.push([x, y]);
        }
        id
    }

    /// The ring as vertex ids without repeats in a row and without the
    /// closing vertex; `None` when fewer than three remain.
    fn ring(&mut self, ring: &geo_types::LineString<f64>) -> Option<Vec<u32>> {
        let mut ids: Vec<u32> = Vec::with_capacity(ring.0.len());
        for coord in &ring.0 {
            let id = self.vertex(coord.x, coord.y);
            if ids.last() != Some(&id) {
                ids.push(id);
            }
        }
        while ids.len() > 1 && ids.first() == ids.last() {
            ids.pop();
        }
        (ids.len() >= 3).then_some(ids)
    }
}

impl GeneralisedPolygons {
    /// Reads [`GENERALISED_LAYERS`] from the database, for [`Self::build`]
    /// (which is CPU work: run it off the async workers).
    ///
    /// # Errors
    /// [`SnapshotError`] when a layer cannot be read or holds a geometry that
    /// is not a (multi)polygon.
    pub async fn fetch(pool: &sqlx::PgPool) -> Result<SnapshotRows, SnapshotError> {
        let mut loaded = Vec::new();
        for name in GENERALISED_LAYERS {
            let Some(def) = find_layer(name) else {
                continue;
            };
            let attributes: Vec<String> = def
                .columns
                .iter()
                .map(|(expr, _, _)| format!("({expr})::text"))
                .collect();
            let filter = def
                .filter
                .map(|predicate| format!(" WHERE {predicate}"))
                .unwrap_or_default();
            let sql = format!(
                "SELECT ARRAY[{}], ST_AsBinary({}) FROM {}{filter} ORDER BY 1",
                attributes.join(", "),
                def.geometry,
                def.table
            );
            let rows: Vec<(Vec<Option<String>>, Vec<u8>)> = sqlx::query_as(&sql)
                .fetch_all(pool)
                .await
                .map_err(|source| SnapshotError::Query {
                    layer: def.name,
                    source,
                })?;
            let mut features = Vec::with_capacity(rows.len());
            for (index, (attributes, wkb)) in rows.into_iter().enumerate() {
                let geometry = decode(&wkb).map_err(|reason| SnapshotError::Geometry {
                    layer: def.name,
                    index,
                    reason,
                })?;
                features.push((attributes, geometry));
            }
            loaded.push((def, features));
        }
        Ok(loaded)
    }

    /// Builds the snapshot from the rows of [`Self::fetch`].
    #[must_use]
    pub fn build(layers: SnapshotRows) -> Self {
        let mut builder = Builder {
            vertex_ids: HashMap::new(),
            vertices: Vec::new(),
        };
        let mut raw_layers: Vec<(&'static LayerDef, Vec<RawFeature>)> = Vec::new();
        for (def, features) in layers {
            let mut raw_features = Vec::with_capacity(features.len());
            for (attributes, multi) in features {
                let mut bbox = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
                let mut polygons = Vec::new();
                for polygon in &multi.0 {
                    for coord in &polygon.exterior().0 {
                        bbox = [
                            bbox[0].min(coord.x),
                            bbox[1].min(coord.y),
                            bbox[2].max(coord.x),
                            bbox[3].max(coord.y),
                        ];
                    }
                    let Some(exterior) = builder.ring(polygon.exterior()) else {
                        continue;
                    };
                    let mut rings = vec![exterior];
                    rings.extend(
                        polygon
                            .interiors()
                            .iter()
                            .filter_map(|ring| builder.ring(ring)),
                    );
                    polygons.push(rings);
                }
                if !polygons.is_empty() {
                    raw_features.push((attributes, bbox, polygons));
                }
            }
            raw_layers.push((def, raw_features));
        }
        let vertices = builder.vertices;
        drop(builder.vertex_ids);

        // Degrees in the graph of distinct edges of all rings of all layers.
        let mut edges: Vec<u64> = Vec::new();
        for (_, features) in &raw_layers {
            for (_, _, polygons) in features {
                for ring in polygons.iter().flatten() {
                    for (i, &a) in ring.iter().enumerate() {
                        let b = ring[(i + 1) % ring.len()];
                        edges.push((u64::from(a.min(b)) << 32) | u64::from(a.max(b)));
                    }
                }
            }
        }
        edges.sort_unstable();
        edges.dedup();
        let mut degree = vec![0_u32; vertices.len()];
        for edge in &edges {
            degree[(edge >> 32) as usize] += 1;
            degree[(edge & 0xffff_ffff) as usize] += 1;
        }
        drop(edges);

        let mut full = Chains::default();
        let mut chain_ids: HashMap<(u32, u32), u32> = HashMap::new();
        let mut layers = Vec::with_capacity(raw_layers.len());
        for (def, raw_features) in raw_layers {
            let mut features = Vec::with_capacity(raw_features.len());
            for (attributes, bbox, polygons) in raw_features {
                let polygons = polygons
                    .iter()
                    .map(|rings| {
                        rings
                            .iter()
                            .map(|ring| {
                                chain_ring(ring, &vertices, &degree, &mut full, &mut chain_ids)
                            })
                            .collect()
                    })
                    .collect();
                features.push(Feature {
                    attributes,
                    bbox,
                    polygons,
                });
            }
            layers.push(FeatureLayer::new(def, features));
        }

        let chain_bbox = (0..as_u32(full.len()))
            .map(|chain| {
                full.get(chain)
                    .iter()
                    .fold([f64::MAX, f64::MAX, f64::MIN, f64::MIN], |b, &v| {
                        let [x, y] = vertices[v as usize];
                        [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)]
                    })
            })
            .collect();

        // Each zoom simplifies the next deeper zoom's chains: the tolerance
        // doubles per zoom, and the deep zooms hold most vertices.
        let mut simplified: Vec<Chains> = Vec::new();
        for z in (0..=GENERALISED_MAX_ZOOM).rev() {
            let source = simplified.last().unwrap_or(&full);
            let next = simplify_chains(source, &vertices, tolerance(z));
            simplified.push(next);
        }
        simplified.reverse();

        Self {
            vertices,
            full,
            simplified,
            chain_bbox,
            layers,
        }
    }

    /// Whether the snapshot serves `layer`.
    #[must_use]
    pub fn holds(&self, layer: &str) -> bool {
        self.layers.iter().any(|held| held.def.name == layer)
    }

    /// Number of distinct chains (shared edges are counted once).
    #[must_use]
    pub fn chain_count(&self) -> usize {
        self.full.len()
    }

    /// `layer` of `tile` as an MVT message (empty when no feature meets the
    /// tile), or `None` when the snapshot does not serve `layer`.
    #[must_use]
    pub fn encode_layer(&self, layer: &str, tile: TileCoord) -> Option<Vec<u8>> {
        let mut writer = LayerWriter::new(layer, EXTENT);
        self.write_features(layer, tile, &mut writer)?;
        Some(writer.finish())
    }

    /// Writes the features of `layer` meeting `tile` into `writer`; `None`
    /// when the snapshot does not serve `layer`.
    pub(crate) fn write_features(
        &self,
        layer: &str,
        tile: TileCoord,
        writer: &mut LayerWriter,
    ) -> Option<()> {
        let held = self.layers.iter().find(|held| held.def.name == layer)?;
        let chains = self.simplified.get(usize::from(tile.z));
        let frame = TileFrame::new(tile);
        let query = frame.query;
        let to_tile = |point: [f64; 2]| frame.to_tile(point);
        let mut ring_points: Vec<[f64; 2]> = Vec::new();
        for feature in held.meeting(query) {
            let mut geometry = PolygonGeometry::default();
            for rings in &feature.polygons {
                let mut polygon = TilePolygon::default();
                for (i, ring) in rings.iter().enumerate() {
                    let exterior = i == 0;
                    ring_points.clear();
                    let simplified = chains.map(|chains| self.assemble(chains, ring));
                    match simplified {
                        Some(ids) if ids.len() >= 3 => {
                            ring_points
                                .extend(ids.iter().map(|&v| to_tile(self.vertices[v as usize])));
                        }
                        // Unsimplified zoom, or the outline collapsed.
                        _ => {
                            let ids = self.assemble(&self.full, ring);
                            ring_points
                                .extend(ids.iter().map(|&v| to_tile(self.vertices[v as usize])));
                        }
                    }
                    if !polygon.push_ring(&ring_points, exterior) {
                        break;
                    }
                }
                polygon.write(&mut geometry);
            }
            if geometry.is_empty() {
                continue;
            }
            let attributes = held
                .def
                .columns
                .iter()
                .zip(&feature.attributes)
                .filter_map(|((_, key, _), value)| Some((*key, value.as_deref()?)));
            writer.add_polygon(attributes, &geometry);
        }
        Some(())
    }

    /// The ring's vertex ids from `chains`, without the closing vertex.
    fn assemble(&self, chains: &Chains, ring: &[ChainRef]) -> Vec<u32> {
        let mut ids: Vec<u32> = Vec::new();
        for part in ring {
            let vertices = chains.get(part.chain);
            let mut push = |v: u32| {
                if ids.last() != Some(&v) {
                    ids.push(v);
                }
            };
            if part.reversed {
                vertices.iter().rev().for_each(|&v| push(v));
            } else {
                vertices.iter().for_each(|&v| push(v));
            }
        }
        while ids.len() > 1 && ids.first() == ids.last() {
            ids.pop();
        }
        ids
    }

    /// The extent (degrees, `[west, south, east, north]`) whose tiles of the
    /// polygon layers may change when the geometry within `bbox` changed:
    /// `bbox` grown by every chain of this snapshot meeting it. Simplifying a
    /// chain depends on all its vertices, so a change at one end of a long
    /// shared edge moves its simplified vertices far away. Call it on the old
    /// and the new snapshot.
    #[must_use]
    pub fn affected_extent(&self, bbox: [f64; 4]) -> [f64; 4] {
        let [w, s] = lonlat_to_mercator(bbox[0], bbox[1]);
        let [e, n] = lonlat_to_mercator(bbox[2], bbox[3]);
        let mut grown = [w, s, e, n];
        for chain_box in &self.chain_bbox {
            if boxes_meet(chain_box, &[w, s, e, n]) {
                grown = [
                    grown[0].min(chain_box[0]),
                    grown[1].min(chain_box[1]),
                    grown[2].max(chain_box[2]),
                    grown[3].max(chain_box[3]),
                ];
            }
        }
        let [west, south] = mercator_to_lonlat([grown[0], grown[1]]);
        let [east, north] = mercator_to_lonlat([grown[2], grown[3]]);
        [
            west.min(bbox[0]),
            south.min(bbox[1]),
            east.max(bbox[2]),
            north.max(bbox[3]),
        ]
    }
}

fn decode(wkb: &[u8]) -> Result<geo_types::MultiPolygon<f64>, String> {
    use geo_types::Geometry;
    let geometry = wkb::reader::read_wkb(wkb).map_err(|err| err.to_string())?;
    match geo_traits::to_geo::ToGeoGeometry::to_geometry(&geometry) {
        Geometry::MultiPolygon(multi) => Ok(multi),
        Geometry::Polygon(polygon) => Ok(geo_types::MultiPolygon(vec![polygon])),
        other => Err(format!("expected a polygon, found {other:?}")
            .chars()
            .take(120)
            .collect()),
    }
}

/// Cuts `ring` into chains at its nodes (vertices of degree other than 2),
/// storing each chain once in canonical direction: from its smaller end
/// node, or for a closed chain towards the smaller of its two second
/// vertices. A ring without nodes is cut at its smallest vertex id and the
/// vertex farthest from it (both chosen from the ring's vertex set alone, so
/// every ring drawing this cycle cuts it the same way).
fn chain_ring(
    ring: &[u32],
    vertices: &[[f64; 2]],
    degree: &[u32],
    chains: &mut Chains,
    chain_ids: &mut HashMap<(u32, u32), u32>,
) -> Vec<ChainRef> {
    let n = ring.len();
    let mut nodes: Vec<usize> = (0..n).filter(|&i| degree[ring[i] as usize] != 2).collect();
    if nodes.is_empty() {
        let (first, _) = ring
            .iter()
            .enumerate()
            .min_by_key(|(_, v)| **v)
            .unwrap_or((0, &0));
        let [x0, y0] = vertices[ring[first] as usize];
        let distance = |v: u32| {
            let [x, y] = vertices[v as usize];
            (x - x0).hypot(y - y0)
        };
        let (farthest, _) = ring
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| {
                distance(**a)
                    .total_cmp(&distance(**b))
                    .then_with(|| b.cmp(a))
            })
            .unwrap_or((0, &0));
        nodes = vec![first.min(farthest), first.max(farthest)];
        nodes.dedup();
    }
    let mut refs = Vec::with_capacity(nodes.len());
    let mut sequence = Vec::new();
    for (k, &start) in nodes.iter().enumerate() {
        let end = nodes[(k + 1) % nodes.len()];
        let length = if end > start {
            end - start
        } else {
            end + n - start
        };
        sequence.clear();
        sequence.extend((0..=length).map(|i| ring[(start + i) % n]));
        let last = sequence.len() - 1;
        let forward = if sequence[0] == sequence[last] {
            sequence[1] <= sequence[last - 1]
        } else {
            sequence[0] < sequence[last]
        };
        if !forward {
            sequence.reverse();
        }
        let key = (sequence[0], sequence[1]);
        let next = as_u32(chains.len());
        let chain = *chain_ids.entry(key).or_insert(next);
        if chain == next {
            chains.push(&sequence);
        }
        refs.push(ChainRef {
            chain,
            reversed: !forward,
        });
    }
    refs
}

fn simplify_chains(source: &Chains, vertices: &[[f64; 2]], tolerance: f64) -> Chains {
    let mut out = Chains::default();
    for chain in 0..as_u32(source.len()) {
        let ids = source.get(chain);
        if ids.len() <= 2 {
            out.push(ids);
            continue;
        }
        let line: geo_types::LineString<f64> = ids
            .iter()
            .map(|&v| {
                let [x, y] = vertices[v as usize];
                geo_types::coord! { x: x, y: y }
            })
            .collect();
        let kept: Vec<u32> = line
            .simplify_idx(tolerance)
            .into_iter()
            .map(|i| ids[i])
            .collect();
        out.push(&kept);
    }
    out
}

/// The buffered tile in tile units.
pub(crate) const CLIP_MIN: f64 = -(BUFFER as f64);
pub(crate) const CLIP_MAX: f64 = (EXTENT + BUFFER) as f64;

/// Clips a ring (tile units, not closed) to the buffered tile with
/// Sutherland–Hodgman, snaps it to integers and drops repeated points, and
/// says whether it was cut; `None` when fewer than three points or no area
/// remain.
pub(crate) fn clip_and_snap(ring: &[[f64; 2]]) -> Option<(Vec<[i32; 2]>, bool)> {
    let inside_all = ring
        .iter()
        .all(|[x, y]| (CLIP_MIN..=CLIP_MAX).contains(x) && (CLIP_MIN..=CLIP_MAX).contains(y));
    let clipped;
    let ring = if inside_all {
        ring
    } else {
        let mut points = ring.to_vec();
        for (axis, bound, keep_below) in [
            (0, CLIP_MIN, false),
            (0, CLIP_MAX, true),
            (1, CLIP_MIN, false),
            (1, CLIP_MAX, true),
        ] {
            points = clip_half_plane(&points, axis, bound, keep_below);
            if points.is_empty() {
                return None;
            }
        }
        clipped = points;
        &clipped
    };
    let mut snapped: Vec<[i32; 2]> = Vec::with_capacity(ring.len());
    for [x, y] in ring {
        // Tile units of the buffered tile fit in i32 by far.
        #[expect(
            clippy::cast_possible_truncation,
            reason = "clipped to the buffered tile"
        )]
        let point = [x.round() as i32, y.round() as i32];
        if snapped.last() != Some(&point) {
            snapped.push(point);
        }
    }
    while snapped.len() > 1 && snapped.first() == snapped.last() {
        snapped.pop();
    }
    (snapped.len() >= 3 && twice_area(&snapped) != 0).then_some((snapped, !inside_all))
}

/// One polygon's rings in tile units on their way into a feature: clipped
/// to the buffered tile and snapped, then written valid.
///
/// Spec 2.1 asks for rings without self-intersection or self-tangency (what
/// `ST_AsMVTGeom` gets from GEOS MakeValid), and three steps can break that:
/// Sutherland–Hodgman keeps a concave ring in one piece, so where a ring
/// leaves the tile and comes back it runs along the tile edge and back;
/// Douglas–Peucker can fold a simplified ring over itself; snapping can make
/// a thin ring touch itself. Every polygon therefore goes through i_overlay
/// on the integer grid (even-odd fill, OGC-valid output, every input vertex
/// kept, so an edge shared with a neighbour stays shared). A single ring that
/// is already simple takes i_overlay's fast path and comes back unchanged.
#[derive(Debug, Default)]
pub(crate) struct TilePolygon {
    rings: Vec<Vec<[i32; 2]>>,
}

impl TilePolygon {
    /// Clips and snaps `ring` (tile units, not closed; the exterior first).
    /// Returns `false` when an exterior ring leaves nothing: the polygon
    /// then has no area in the tile and its holes are not needed.
    pub(crate) fn push_ring(&mut self, ring: &[[f64; 2]], exterior: bool) -> bool {
        match clip_and_snap(ring) {
            Some((snapped, _)) => {
                self.rings.push(snapped);
                true
            }
            None => !exterior,
        }
    }

    /// Writes the polygon's rings, valid and wound as spec 2.1 asks.
    pub(crate) fn write(self, geometry: &mut PolygonGeometry) {
        for ring in self.into_rings() {
            geometry.push_ring(&ring);
        }
    }

    /// The rings to write: per output polygon its exterior (positive area)
    /// then its holes (negative).
    fn into_rings(self) -> Vec<Vec<[i32; 2]>> {
        use i_overlay::core::fill_rule::FillRule;
        use i_overlay::core::overlay::IntOverlayOptions;
        use i_overlay::core::simplify::Simplify as _;
        use i_overlay::i_float::int::point::IntPoint;
        let contours: Vec<Vec<IntPoint>> = self
            .rings
            .iter()
            .map(|ring| ring.iter().map(|&[x, y]| IntPoint::new(x, y)).collect())
            .collect();
        let options = IntOverlayOptions {
            preserve_input_collinear: true,
            preserve_output_collinear: true,
            ogc: true,
            ..IntOverlayOptions::default()
        };
        let shapes = match contours.as_slice() {
            [] => return Vec::new(),
            [single] => single.simplify(FillRule::EvenOdd, options),
            several => several.simplify(FillRule::EvenOdd, options),
        };
        let mut rings = Vec::new();
        for shape in shapes {
            for (i, contour) in shape.into_iter().enumerate() {
                let ring: Vec<[i32; 2]> = contour.iter().map(|point| [point.x, point.y]).collect();
                if ring.len() >= 3 {
                    rings.push(orient(ring, i == 0));
                }
            }
        }
        rings
    }
}

/// Twice the signed area by the surveyor's formula, in tile coordinates (y
/// down: positive is clockwise on screen).
fn twice_area(ring: &[[i32; 2]]) -> i64 {
    let mut sum = 0_i64;
    for (i, a) in ring.iter().enumerate() {
        let b = ring[(i + 1) % ring.len()];
        sum += i64::from(a[0]) * i64::from(b[1]) - i64::from(b[0]) * i64::from(a[1]);
    }
    sum
}

/// MVT 2.1 winding: exterior rings positive area, holes negative.
pub(crate) fn orient(mut ring: Vec<[i32; 2]>, exterior: bool) -> Vec<[i32; 2]> {
    if (twice_area(&ring) > 0) != exterior {
        ring.reverse();
    }
    ring
}

/// One Sutherland–Hodgman pass: keeps the part of the closed ring `points`
/// on one side of the line `coordinate[axis] = bound`. A crossing is computed
/// from the segment's endpoints in lexicographic order, so the two polygons
/// sharing an edge get bit-identical crossings.
fn clip_half_plane(
    points: &[[f64; 2]],
    axis: usize,
    bound: f64,
    keep_below: bool,
) -> Vec<[f64; 2]> {
    let inside = |p: &[f64; 2]| {
        if keep_below {
            p[axis] <= bound
        } else {
            p[axis] >= bound
        }
    };
    let crossing = |p: [f64; 2], q: [f64; 2]| {
        let (a, b) = if (p[0], p[1]) <= (q[0], q[1]) {
            (p, q)
        } else {
            (q, p)
        };
        let t = (bound - a[axis]) / (b[axis] - a[axis]);
        let other = 1 - axis;
        let mut point = [0.0; 2];
        point[axis] = bound;
        point[other] = a[other] + t * (b[other] - a[other]);
        point
    };
    let mut out = Vec::with_capacity(points.len() + 4);
    for (i, &current) in points.iter().enumerate() {
        let previous = points[(i + points.len() - 1) % points.len()];
        match (inside(&previous), inside(&current)) {
            (true, true) => out.push(current),
            (true, false) => out.push(crossing(previous, current)),
            (false, true) => {
                out.push(crossing(previous, current));
                out.push(current);
            }
            (false, false) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic is the failure report")]

    use super::*;
    use geo_types::MultiPolygon;

    /// Two squares sharing a wiggly edge of many small steps.
    fn neighbours() -> Vec<(Vec<Option<String>>, MultiPolygon<f64>)> {
        let step = 10.0;
        let wiggle: Vec<(f64, f64)> = (0..=100)
            .map(|i| {
                (
                    1_000.0 + if i % 2 == 0 { 0.0 } else { 3.0 },
                    f64::from(i) * step,
                )
            })
            .collect();
        let mut left: Vec<(f64, f64)> = vec![(0.0, 1_000.0), (0.0, 0.0)];
        left.extend(wiggle.iter().copied());
        let mut right: Vec<(f64, f64)> = wiggle.iter().rev().copied().collect();
        right.extend([(2_000.0, 0.0), (2_000.0, 1_000.0)]);
        let polygon = |points: Vec<(f64, f64)>| {
            MultiPolygon(vec![geo_types::Polygon::new(points.into(), vec![])])
        };
        vec![
            (vec![Some("left".into())], polygon(left)),
            (vec![Some("right".into())], polygon(right)),
        ]
    }

    #[test]
    fn a_shared_edge_is_one_chain_and_both_sides_simplify_it_alike() {
        let snapshot =
            GeneralisedPolygons::build(vec![(find_layer("grids").unwrap(), neighbours())]);
        // Shared edge, left outline, right outline.
        assert_eq!(snapshot.chain_count(), 3);
        let layer = &snapshot.layers[0];
        let z = 8;
        let chains = &snapshot.simplified[z];
        let left = snapshot.assemble(chains, &layer.features[0].polygons[0][0]);
        let right = snapshot.assemble(chains, &layer.features[1].polygons[0][0]);
        assert!(left.len() < 20, "simplified to {} vertices", left.len());
        let shared: Vec<u32> = left.iter().copied().filter(|v| right.contains(v)).collect();
        assert!(shared.len() >= 2);
        let full_left = snapshot.assemble(&snapshot.full, &layer.features[0].polygons[0][0]);
        assert_eq!(full_left.len(), 103);
    }

    #[test]
    fn clipping_keeps_inside_parts_and_orients_rings() {
        let ring = [
            [-100.0, -100.0],
            [200.0, -100.0],
            [200.0, 200.0],
            [-100.0, 200.0],
        ];
        let (clipped, cut) = clip_and_snap(&ring).unwrap();
        assert!(cut);
        assert!(clipped.iter().all(|p| p[0] >= -64 && p[1] >= -64));
        assert!(twice_area(&orient(clipped.clone(), true)) > 0);
        assert!(twice_area(&orient(clipped, false)) < 0);
        assert!(clip_and_snap(&[[5000.0, 5000.0], [5100.0, 5000.0], [5100.0, 5100.0]]).is_none());
        // A sliver under half a unit wide snaps to nothing.
        assert!(clip_and_snap(&[[10.0, 10.0], [500.0, 10.2], [10.0, 10.3]]).is_none());
    }

    #[test]
    fn a_concave_ring_cut_by_the_tile_edge_becomes_separate_rings() {
        // A U opening upwards (y down) whose base lies below the buffered
        // tile: clipping alone joins the two arms by a zero-width bridge
        // along the tile edge.
        let u = [
            [0.0, 3000.0],
            [300.0, 3000.0],
            [300.0, 4500.0],
            [700.0, 4500.0],
            [700.0, 3000.0],
            [1000.0, 3000.0],
            [1000.0, 5000.0],
            [0.0, 5000.0],
        ];
        let (bridged, cut) = clip_and_snap(&u).unwrap();
        assert!(cut);
        assert_eq!(bridged.len(), 8, "{bridged:?}");
        let mut polygon = TilePolygon::default();
        assert!(polygon.push_ring(&u, true));
        let rings = polygon.into_rings();
        assert_eq!(rings.len(), 2, "{rings:?}");
        for ring in &rings {
            // Each arm: 300 wide, from y 3000 to the buffer edge at 4160.
            assert_eq!(twice_area(ring), 2 * 300 * 1160, "{ring:?}");
        }
        // A ring wholly inside the tile is written as it is, wound.
        let mut inside = TilePolygon::default();
        assert!(inside.push_ring(&[[0.0, 0.0], [0.0, 10.0], [10.0, 10.0], [10.0, 0.0]], true));
        assert_eq!(
            inside.into_rings(),
            vec![vec![[10, 0], [10, 10], [0, 10], [0, 0]]]
        );
    }

    #[test]
    fn affected_extent_grows_to_whole_chains() {
        let mut features = neighbours();
        for (_, multi) in &mut features {
            for polygon in &mut multi.0 {
                polygon.exterior_mut(|ring| {
                    for coord in &mut ring.0 {
                        let [lon, lat] = mercator_to_lonlat([coord.x, coord.y]);
                        let [x, y] = lonlat_to_mercator(lon + 120.0, lat + 37.0);
                        *coord = geo_types::coord! { x: x, y: y };
                    }
                });
            }
        }
        let snapshot = GeneralisedPolygons::build(vec![(find_layer("grids").unwrap(), features)]);
        let [x, y] = mercator_to_lonlat([1_000.0, 0.0]);
        let point = [x + 120.0, y + 37.0];
        let grown = snapshot.affected_extent([point[0], point[1], point[0], point[1]]);
        // The shared edge runs 1,000 m north.
        assert!(grown[3] - point[1] > 0.005, "{grown:?}");
    }
}
