//! Vector tiles of gridmap.
//!
//! - [`layers`]: the catalogue of public and internal layers (table, zoom
//!   range, the columns that may appear in a tile). Personal data never has a
//!   column here.
//! - [`coord`]: tile coordinates and their validation.
//! - [`tilejson`]: TileJSON 3.0 documents for a layer.
//! - [`encode`]: the PostGIS `ST_AsMVT` query that encodes one layer of a
//!   tile, and the composite encoder mixing it with [`generalise`].
//! - [`generalise`]: the polygon layers from an in-memory snapshot, simplified
//!   per zoom along shared edges (no gaps or overlaps between neighbours),
//!   clipped and written with [`mvt`].
//! - [`computed`]: layers computed in process, not stored in a table:
//!   [`circle_layer`] (`service_circles`, public) and [`gap_layer`]
//!   (`gap_findings`, internal), each a snapshot rebuilt on a change of the
//!   tables it is computed from.
//!
//! - [`stored`]: the point, line and building layers from an in-memory copy
//!   of their rows, drawn as `ST_AsMVTGeom` draws them.
//!
//! Only the label layers are encoded by PostGIS per tile (`ST_AsMVTGeom`
//! clips, snaps to the tile grid and fixes winding; `ST_AsMVT` writes spec 2.1
//! protobuf). Every replica builds the same snapshots from the source of
//! truth, so replicas still serve identical bytes.

pub mod circle_layer;
pub mod computed;
pub mod coord;
pub mod encode;
pub mod gap_layer;
pub mod generalise;
pub mod layers;
pub mod mvt;
pub mod stored;
pub mod tilejson;

pub use circle_layer::{fetch_circle_inputs, CircleInputs, CircleSnapshot};
pub use computed::ComputedLayer;
pub use coord::{TileCoord, TileCoordError};
pub use encode::{
    encode_layer, encode_tile, encode_tile_from, encode_tile_with, EncodeError, TileSources,
};
pub use gap_layer::{fetch_gap_inputs, GapInputs, GapSnapshot};
pub use generalise::{GeneralisedPolygons, SnapshotError, GENERALISED_LAYERS};
pub use layers::{find_any_layer, find_layer, Drawing, LayerDef, INTERNAL_LAYERS, LAYERS};
pub use stored::{StoredLayers, STORED_LAYERS};
pub use tilejson::tilejson_for;

/// Tile extent in integer units, as the MVT spec recommends.
pub const EXTENT: u32 = 4096;
/// Clip buffer around each tile, in tile units, so strokes do not break at edges.
pub const BUFFER: u32 = 64;
