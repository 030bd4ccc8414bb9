//! [`GridStaffing`]: one worker per grid (一网一员) and a household limit.

use crate::measure::zoom_point;
use crate::{Finding, FindingKind, Parameters, Tessellation};
use geo::Geometry;

/// Finds grids with no assigned worker (codes `[grid]`) and grids with more
/// households than `household_limit` (codes `[grid]`). Neither has an area;
/// the geometry is the grid's outline.
pub trait GridStaffing {
    fn grid_staffing(&self, parameters: &Parameters) -> Vec<Finding>;
}

impl GridStaffing for Tessellation {
    fn grid_staffing(&self, parameters: &Parameters) -> Vec<Finding> {
        let mut findings = Vec::new();
        for grid in &self.grids {
            let kinds = [
                (!grid.has_worker).then_some(FindingKind::GridWithoutWorker),
                (grid.households > parameters.household_limit)
                    .then_some(FindingKind::GridOverHouseholdLimit),
            ];
            for kind in kinds.into_iter().flatten() {
                findings.push(Finding {
                    kind,
                    codes: vec![grid.code.clone()],
                    area_m2: None,
                    point: zoom_point(&grid.polygon),
                    geometry: Geometry::MultiPolygon(grid.polygon.clone()),
                });
            }
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{grid, rectangle};

    #[test]
    fn flags_unstaffed_and_crowded_grids() {
        let mut unstaffed = grid("370681001001001", rectangle(120.40, 37.60, 120.41, 37.61));
        unstaffed.has_worker = false;
        let mut crowded = grid("370681001001002", rectangle(120.41, 37.60, 120.42, 37.61));
        crowded.households = 501;
        let mut at_limit = grid("370681001001003", rectangle(120.42, 37.60, 120.43, 37.61));
        at_limit.households = 500;
        let tessellation =
            Tessellation::new(vec![], vec![unstaffed, crowded, at_limit], vec![], vec![]);
        let kinds: Vec<(FindingKind, String)> = tessellation
            .grid_staffing(&Parameters::default())
            .into_iter()
            .map(|finding| (finding.kind, finding.codes[0].clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                (FindingKind::GridWithoutWorker, "370681001001001".to_owned()),
                (
                    FindingKind::GridOverHouseholdLimit,
                    "370681001001002".to_owned()
                ),
            ]
        );
    }
}
