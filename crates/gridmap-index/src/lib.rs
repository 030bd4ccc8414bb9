//! In-memory spatial indexes for exact point-in-grid lookups and nearest
//! neighbours (stations by geodesic distance, grids by distance to their edge).
//!
//! A uniform grid of cells over all polygons names, for most points, the
//! polygon covering the point's whole cell; elsewhere it lists the few
//! polygons to test, in code order, each with the few edges of the cell's row
//! that can decide an exact, boundary-inclusive crossing test (geo's robust
//! predicates). [`PreparedPolygon`] (its own grid of inside/outside/boundary
//! cells, then y-slabs of edges) answers single-polygon tests. An R-tree
//! (rstar) of bounding boxes serves the nearest-edge search and an
//! independent locate path for tests.
//!
//! **Boundary rule.** A point on a shared edge or vertex lies in the closed area
//! of several grids. The index answers with the one whose code sorts first,
//! which is what this PostGIS query returns on the same table:
//!
//! ```sql
//! SELECT code FROM grids
//!  WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(lon, lat), 4490))
//!  ORDER BY code LIMIT 1;
//! ```

mod candidate_cells;
mod cell_index;
pub mod geodesic;
pub mod local_metres;
mod nearest_first;
pub mod node_snap;
pub mod point_index;
pub mod polygon_index;
pub mod prepared;

pub use geodesic::GeodesicDistance;
pub use local_metres::LocalMetres;
pub use node_snap::{nearest_nodes, NearestNodes, NodeDistance, NodeSnap};
pub use point_index::{IndexedPoint, NearestPoint, PointIndex};
pub use polygon_index::{Located, PolygonIndex};
pub use prepared::{Position, PreparedPolygon};
