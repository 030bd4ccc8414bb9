//! Walking service circles: the 10-minute party-life circle (10分钟党建生活圈)
//! and the 15-minute efficient service circle (15分钟高效服务圈).
//!
//! A circle is the area a resident reaches on foot in N minutes. A
//! straight-line disc overstates it wherever roads detour, so this crate walks
//! the real road network. It does no IO: callers load road lines, station
//! points and buildings and ask for circles, coverage and new sites.
//!
//! - [`WalkGraph`]: nodes are road vertices (coordinates equal to 1e-7° are one
//!   node, so roads sharing a vertex connect), edges are road segments with
//!   geodesic lengths in metres; [`WalkGraph::snap`] attaches a point to its
//!   nearest node through an R-tree.
//! - [`ShortestPaths`]: many-source Dijkstra (binary heap) up to a distance
//!   limit, each source starting at its snap distance.
//! - [`service_circles`]: one polygon per station.
//! - [`coverage()`]: the households within any circle, per community;
//!   [`demand_coverage`]: the same for other weighted points, such as rider
//!   activity reports (weight 1 each), which weigh rest-stop gaps.
//! - [`best_new_sites`]: greedy new sites covering the most uncovered weight
//!   (households, or reports).
//!
//! The limit is [`Parameters::limit_m`], speed × minutes (defaults 1.2 m/s and
//! 15 minutes: 1,080 m; see [`Parameters`] for GB 50180-2018's figures).
//!
//! **Polygon rule.** A station farther than `max_snap_m` (200 m) from every
//! node gets a disc of the full walking distance, labelled
//! [`CircleMethod::StraightLineFallback`]. Any other station enters the network
//! at its nearest node after walking the snap distance in a straight line; a
//! station equally near (within [`TIE_SLACK_M`], 1 mm) to several nodes enters
//! at all of them ([`station_entries`]), so its circle does not depend on which
//! of them an R-tree built from one set of roads returns first. The circle is
//! the union of buffers, `frontage_m` (50 m) wide on each side, of the reached
//! network ([`walked_network`]): the walk to the network, every edge reached in
//! full, and every partly reached edge cut at the fraction still within the
//! limit from each reached end. Buffering runs in a local metre projection
//! centred on the station ([`LocalMetres`]) and the result is returned in
//! CGCS2000 lon/lat degrees. Every point of a circle therefore lies within
//! limit + frontage of its station in a straight line.
//!
//! **Drawing the union** ([`network_strip`]). Round caps and joins are
//! inscribed chords that lie at most 0.25 m inside the true circle (a chord
//! spans at most 2 acos(1 − 0.25 m / frontage): 0.2 rad, 16 chords a half
//! circle, at 50 m). The pieces are chained into trails that run straight
//! through crossings ([`trails`]) and straightened by at most
//! [`strip::SIMPLIFY_M`] (0.1 m), so collinear road vertices cost nothing;
//! a trail end gets a round cap only where no other trail runs through it
//! (that trail's buffer already holds the disc there), and all trails are
//! drawn in one overlay. Pieces whose whole buffer lies in 10 m cells each
//! wholly inside some piece's buffer (by a 0.5 m margin) are left out; the
//! cells then fill whole holes of the drawing, which are dropped instead of
//! overlaying the cells. The outline stays within 0.4 m of the exact union
//! and of the older drawing (geo's buffer of every piece as one
//! `MultiLineString`); `tests/strip_tolerance.rs` checks both on dense
//! street grids, with and without parks.
//!
//! **Coverage rule.** A building is covered when the network distance from the
//! nearest station to the building's nearest node plus the straight distance
//! from that node to its centroid is within the limit (or its centroid is
//! within the limit of a fallback station). This is exact on the graph and
//! needs no polygon test; the frontage strip is for drawing only. A rider
//! report is snapped and covered by the same rule, as if it were a home.

pub mod circle;
pub mod coverage;
pub mod dijkstra;
pub mod error;
pub mod graph;
mod interior;
pub mod parameters;
pub mod projection;
pub mod sites;
pub mod strip;
mod stroke;

pub use circle::{
    service_circles, station_entries, walked_network, CircleMethod, ServiceCircle, WalkedNetwork,
    TIE_SLACK_M,
};
pub use coverage::{
    coverage, covered_points, demand_coverage, snap_homes, snap_points, CommunityCoverage,
    CommunityDemand, Coverage, Demand, DemandCoverage, Home,
};
pub use dijkstra::ShortestPaths;
pub use error::CircleError;
// The geometry types of the public API, so callers need no geo dependency of
// their own.
pub use geo::{Coord, LineString, MultiPolygon, Polygon};
pub use graph::{Edge, Snap, WalkGraph};
pub use parameters::Parameters;
pub use projection::LocalMetres;
pub use sites::{best_new_sites, NewSite};
pub use strip::{network_strip, trails};
