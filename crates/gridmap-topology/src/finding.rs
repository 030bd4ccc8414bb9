//! [`Finding`]: one place where the grid layer breaks seamless cover.

use geo::{Geometry, Point};
use serde::Serialize;

/// The rule a finding breaks. The order is the order of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Community area covered by none of its grids.
    Gap,
    /// Area inside two grids at once.
    Overlap,
    /// Grid area outside the grid's own community.
    OutsideCommunity,
    BuildingInNoGrid,
    BuildingInSeveralGrids,
    GridWithoutWorker,
    GridOverHouseholdLimit,
    ServiceCentreBelowStandard,
}

impl FindingKind {
    /// The wire name, as serde writes it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Gap => "gap",
            FindingKind::Overlap => "overlap",
            FindingKind::OutsideCommunity => "outside_community",
            FindingKind::BuildingInNoGrid => "building_in_no_grid",
            FindingKind::BuildingInSeveralGrids => "building_in_several_grids",
            FindingKind::GridWithoutWorker => "grid_without_worker",
            FindingKind::GridOverHouseholdLimit => "grid_over_household_limit",
            FindingKind::ServiceCentreBelowStandard => "service_centre_below_standard",
        }
    }
}

/// One defect, with what a planner needs to find and fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: FindingKind,
    /// The codes involved; the first is the unit the finding is about (the
    /// community of a gap, the grid of a spill, the building, the centre).
    pub codes: Vec<String>,
    /// The area of `geometry` on the ellipsoid in m² for area findings; the floor area
    /// for a service centre; `None` where no area applies.
    pub area_m2: Option<f64>,
    /// The offending area or point in CGCS2000 degrees.
    pub geometry: Geometry<f64>,
    /// A point inside `geometry` to zoom the map to.
    pub point: Point<f64>,
}
