//! [`BuildingCover`]: every building in exactly one grid.

use crate::measure::{area_m2, zoom_point};
use crate::{Building, Finding, FindingKind, Parameters, Tessellation};
use geo::coordinate_position::{CoordPos, CoordinatePosition};
use geo::{BooleanOps, BoundingRect, Geometry, Intersects, LineString, MultiPolygon, Rect};

/// Finds buildings that no grid covers and buildings split between grids.
///
/// A grid holds a building when their interiors share at least `min_area_m2`,
/// or, for a building smaller than that, at least half of the building, so that
/// a kiosk is not in "no grid" for being small. A building held by no grid is
/// `building_in_no_grid` with codes `[building]`; one held by several grids is
/// `building_in_several_grids` with codes `[building, grids…]` in code order.
/// Both carry the building's outline and its whole area.
pub trait BuildingCover {
    fn building_cover(&self, parameters: &Parameters) -> Vec<Finding>;
}

impl BuildingCover for Tessellation {
    fn building_cover(&self, parameters: &Parameters) -> Vec<Finding> {
        let mut findings = Vec::new();
        for building in &self.buildings {
            let holders = self.grids_holding(building, parameters.min_area_m2);
            let kind = match holders.len() {
                0 => FindingKind::BuildingInNoGrid,
                1 => continue,
                _ => FindingKind::BuildingInSeveralGrids,
            };
            let mut codes = vec![building.code.clone()];
            codes.extend(holders);
            findings.push(Finding {
                kind,
                codes,
                area_m2: Some(area_m2(&building.polygon)),
                point: zoom_point(&building.polygon),
                geometry: Geometry::MultiPolygon(building.polygon.clone()),
            });
        }
        findings
    }
}

impl Tessellation {
    /// Codes of the grids holding `building`, in code order.
    fn grids_holding(&self, building: &Building, min_area_m2: f64) -> Vec<String> {
        let Some(building_box) = building.polygon.bounding_rect() else {
            return Vec::new();
        };
        let mut building_area = None;
        let mut codes: Vec<String> = self
            .grid_candidates(&building.polygon)
            .filter(|&idx| {
                let grid = &self.grids[idx].polygon;
                match placement(&building.polygon, building_box, grid) {
                    Placement::Outside => false,
                    // The grid holds the whole building, which is at least
                    // half of itself and, if positive, shares area.
                    Placement::Inside => {
                        *building_area.get_or_insert_with(|| area_m2(&building.polygon)) > 0.0
                    }
                    Placement::Crossing => {
                        let building_area =
                            *building_area.get_or_insert_with(|| area_m2(&building.polygon));
                        let needed = min_area_m2.min(building_area / 2.0);
                        let shared_area = area_m2(&grid.intersection(&building.polygon));
                        shared_area > 0.0 && shared_area >= needed
                    }
                }
            })
            .map(|idx| self.grids[idx].code.clone())
            .collect();
        codes.sort_unstable();
        codes
    }
}

/// Where a building lies relative to a grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Inside the grid, boundaries apart.
    Inside,
    /// Outside the grid, boundaries apart (at most an empty intersection).
    Outside,
    /// The boundaries meet or the grid has a part or hole inside the
    /// building: only the overlay can tell how much they share.
    Crossing,
}

/// Decides cheaply where the building lies when the boundaries do not meet.
///
/// If no grid edge meets a building edge (robust segment tests) and no grid
/// vertex lies in the building, each building part lies wholly inside or
/// wholly outside the grid, and one vertex per part tells which. Only grid
/// edges whose box meets the building's box are tested, a handful for a
/// building well inside its grid, so this costs a scan of the grid's
/// vertices instead of an overlay.
fn placement(
    building: &MultiPolygon<f64>,
    building_box: Rect<f64>,
    grid: &MultiPolygon<f64>,
) -> Placement {
    for grid_edge in grid
        .iter()
        .flat_map(|part| part.rings())
        .flat_map(LineString::lines)
    {
        if !grid_edge.bounding_rect().intersects(&building_box) {
            continue;
        }
        let meets_building = building
            .iter()
            .flat_map(|part| part.rings())
            .flat_map(LineString::lines)
            .any(|building_edge| building_edge.intersects(&grid_edge));
        if meets_building || building.intersects(&grid_edge.start) {
            return Placement::Crossing;
        }
    }
    let mut sides = building
        .iter()
        .filter_map(|part| part.exterior().0.first())
        .map(|vertex| grid.coordinate_position(vertex));
    match sides.next() {
        Some(CoordPos::Inside) if sides.all(|side| side == CoordPos::Inside) => Placement::Inside,
        Some(CoordPos::Outside) if sides.all(|side| side == CoordPos::Outside) => {
            Placement::Outside
        }
        _ => Placement::Crossing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{building, grid, rectangle};
    use geo::polygon;

    #[test]
    fn finds_buildings_outside_every_grid_and_astride_two() {
        let tessellation = Tessellation::new(
            vec![],
            vec![
                grid("370681001001001", rectangle(120.40, 37.60, 120.41, 37.61)),
                grid("370681001001002", rectangle(120.41, 37.60, 120.42, 37.61)),
            ],
            vec![
                building("inside", rectangle(120.401, 37.601, 120.402, 37.602)),
                building("astride", rectangle(120.4095, 37.601, 120.4105, 37.602)),
                building("nowhere", rectangle(120.45, 37.601, 120.451, 37.602)),
            ],
            vec![],
        );
        let findings = tessellation.building_cover(&Parameters::default());
        let summary: Vec<(FindingKind, Vec<String>)> = findings
            .into_iter()
            .map(|finding| (finding.kind, finding.codes))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    FindingKind::BuildingInSeveralGrids,
                    vec![
                        "astride".to_owned(),
                        "370681001001001".to_owned(),
                        "370681001001002".to_owned()
                    ]
                ),
                (FindingKind::BuildingInNoGrid, vec!["nowhere".to_owned()]),
            ]
        );
    }

    #[test]
    fn placement_is_cheap_only_where_boundaries_stay_apart() {
        let grid_with_hole = MultiPolygon(vec![polygon!(
            exterior: [
                (x: 120.40, y: 37.60), (x: 120.41, y: 37.60),
                (x: 120.41, y: 37.61), (x: 120.40, y: 37.61), (x: 120.40, y: 37.60),
            ],
            interiors: [[
                (x: 120.404, y: 37.604), (x: 120.404, y: 37.606),
                (x: 120.406, y: 37.606), (x: 120.406, y: 37.604), (x: 120.404, y: 37.604),
            ]],
        )]);
        let case = |west, south, east, north| {
            let building = rectangle(west, south, east, north);
            let building_box = building.bounding_rect().unwrap();
            placement(&building, building_box, &grid_with_hole)
        };
        assert_eq!(case(120.401, 37.601, 120.402, 37.602), Placement::Inside);
        // In the hole, and beyond the grid.
        assert_eq!(
            case(120.4045, 37.6045, 120.4055, 37.6055),
            Placement::Outside
        );
        assert_eq!(case(120.42, 37.601, 120.421, 37.602), Placement::Outside);
        // Astride the outer edge, on it, and around the hole.
        assert_eq!(
            case(120.4095, 37.601, 120.4105, 37.602),
            Placement::Crossing
        );
        assert_eq!(case(120.409, 37.601, 120.41, 37.602), Placement::Crossing);
        assert_eq!(case(120.403, 37.603, 120.407, 37.607), Placement::Crossing);
    }
}
