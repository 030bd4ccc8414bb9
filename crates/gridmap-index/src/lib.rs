//! In-memory spatial indexes for exact point-in-grid lookups and nearest
//! neighbours (stations by geodesic distance, grids by distance to their edge).
//!
//! An R-tree (rstar) over each polygon's bounding box narrows a query to a few
//! candidates; an exact, boundary-inclusive point-in-polygon test (geo's
//! robust predicates) then decides.
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

pub mod local_metres;
pub mod point_index;
pub mod polygon_index;

pub use local_metres::LocalMetres;
pub use point_index::{IndexedPoint, NearestPoint, PointIndex};
pub use polygon_index::{Located, PolygonIndex};
