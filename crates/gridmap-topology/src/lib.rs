//! Seamless-cover checks (无缝覆盖) for the basic grid layer.
//!
//! 多网合一 asks that grids tile their community edge to edge: no gaps, no
//! overlaps, no grid spilling out of its community, every building in exactly
//! one grid, one staffed grid worker per grid, grids under a household limit and
//! a party-mass service centre of at least 30 m² per 100 households (Zibo).
//! This crate finds where a district breaks those rules. It does no IO: callers
//! load a [`Tessellation`] and ask for [`Finding`]s.
//!
//! Each family of findings is one trait in one file, implemented on
//! [`Tessellation`], in the style of geo's algorithms:
//!
//! - [`CoverGaps`]: community area left out by its grids (`gap`);
//! - [`GridOverlaps`]: grids whose interiors overlap (`overlap`);
//! - [`OutsideCommunity`]: grid area outside the grid's community;
//! - [`BuildingCover`]: buildings in no grid or in several grids;
//! - [`GridStaffing`]: grids without a worker or over the household limit;
//! - [`ServiceCentreStandard`]: service centres below the area standard.
//!
//! [`analyse`] runs them all.
//!
//! **Areas** are on the WGS84 ellipsoid, measured on its cylindrical
//! equal-area projection relative to each ring's first vertex
//! ([`measure::polygon_area_m2`]). They agree with PostGIS's
//! `ST_Area(geom::geography)` to 1e-4 of the area for edges of 10 km and
//! better below, and unlike geodesic polygon areas (an absolute error of
//! about half a square metre per edge) they tell a millimetre-wide overlay
//! sliver from a 1 m² gap. CGCS2000's ellipsoid differs from WGS84's by
//! 0.1 mm in the semi-minor axis.
//! Geometries stay in CGCS2000 degrees; the boolean operations are planar in
//! degrees, as PostGIS's are on `geometry`.

pub mod building_cover;
pub mod cover_gaps;
pub mod finding;
pub mod grid_overlaps;
pub mod grid_staffing;
mod grid_unions;
pub mod measure;
pub mod outside_community;
pub mod parameters;
pub mod service_centres;
pub mod tessellation;
#[cfg(test)]
mod test_support;

pub use building_cover::BuildingCover;
// The geometry types of the public API, so callers need no geo dependency of
// their own to read a finding.
pub use cover_gaps::CoverGaps;
pub use finding::{Finding, FindingKind};
pub use geo::{Geometry, MultiPolygon, Point, Polygon};
pub use grid_overlaps::GridOverlaps;
pub use grid_staffing::GridStaffing;
pub use outside_community::OutsideCommunity;
pub use parameters::{Parameters, TopologyError};
pub use service_centres::ServiceCentreStandard;
pub use tessellation::{Building, Community, Grid, ServiceCentre, Tessellation};

/// Every finding of every family, sorted by kind and then by codes so that the
/// same data always gives the same list.
#[must_use]
pub fn analyse(tessellation: &Tessellation, parameters: &Parameters) -> Vec<Finding> {
    let mut findings = tessellation.cover_gaps(parameters);
    findings.extend(tessellation.grid_overlaps(parameters));
    findings.extend(tessellation.outside_community(parameters));
    findings.extend(tessellation.building_cover(parameters));
    findings.extend(tessellation.grid_staffing(parameters));
    findings.extend(tessellation.service_centre_standard(parameters));
    findings.sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| a.codes.cmp(&b.codes)));
    findings
}
