//! [`BuildingCover`]: every building in exactly one grid.

use crate::measure::{area_m2, zoom_point};
use crate::{Building, Finding, FindingKind, Parameters, Tessellation};
use geo::{BooleanOps, Contains, Geometry};

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
        let candidates: Vec<usize> = self.grid_candidates(&building.polygon).collect();
        // The common case, one grid whose bounding box meets the building's
        // and which contains it, needs no overlay: no other grid can share
        // any of the building's area.
        if let [only] = candidates[..] {
            if self.grids[only].polygon.contains(&building.polygon) {
                return vec![self.grids[only].code.clone()];
            }
        }
        let building_area = area_m2(&building.polygon);
        let needed = min_area_m2.min(building_area / 2.0);
        let mut codes: Vec<String> = candidates
            .into_iter()
            .filter(|&idx| {
                let shared = self.grids[idx].polygon.intersection(&building.polygon);
                let shared_area = area_m2(&shared);
                shared_area > 0.0 && shared_area >= needed
            })
            .map(|idx| self.grids[idx].code.clone())
            .collect();
        codes.sort_unstable();
        codes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{building, grid, rectangle};

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
}
