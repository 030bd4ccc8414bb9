//! [`GridOverlaps`]: area claimed by two grids at once.

use crate::grid_unions::SCREEN_MIN_AREA_M2;
use crate::measure::{pieces_at_least, zoom_point};
use crate::{Finding, FindingKind, Parameters, Tessellation};
use geo::{BooleanOps, Geometry, MultiPolygon};

/// Finds pairs of grids, of any community, whose interiors overlap by at least
/// `min_area_m2`. Candidate pairs come from the R-tree, so only grids whose
/// bounding boxes meet are intersected, and only where the union of their
/// community's (or street's) grids hides some area (see `grid_unions.rs`). A shared edge has no area and is not an
/// overlap. One finding per pair: codes are the two grids in code order, the
/// geometry is their intersection without slivers under the tolerance.
pub trait GridOverlaps {
    fn grid_overlaps(&self, parameters: &Parameters) -> Vec<Finding>;
}

impl GridOverlaps for Tessellation {
    fn grid_overlaps(&self, parameters: &Parameters) -> Vec<Finding> {
        let mut findings = Vec::new();
        let unions = (parameters.min_area_m2 >= SCREEN_MIN_AREA_M2).then(|| self.grid_unions());
        for (first, second) in self.grid_candidate_pairs() {
            let (first, second) = (&self.grids[first], &self.grids[second]);
            // Neighbours whose community or street hides less area than any
            // reportable overlap share at most an edge: no overlay needed.
            let bound = unions.and_then(|unions| unions.shared_area_bound_m2(first, second));
            if bound.is_some_and(|bound| bound < parameters.min_area_m2 / 2.0) {
                continue;
            }
            let shared = first.polygon.intersection(&second.polygon);
            let pieces = pieces_at_least(shared, parameters.min_area_m2);
            if pieces.is_empty() {
                continue;
            }
            let area: f64 = pieces.iter().map(|(_, area)| area).sum();
            let shared = MultiPolygon(pieces.into_iter().map(|(piece, _)| piece).collect());
            let mut codes = vec![first.code.clone(), second.code.clone()];
            codes.sort_unstable();
            findings.push(Finding {
                kind: FindingKind::Overlap,
                codes,
                area_m2: Some(area),
                point: zoom_point(&shared),
                geometry: Geometry::MultiPolygon(shared),
            });
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{grid, rectangle};

    #[test]
    fn neighbours_sharing_an_edge_do_not_overlap_but_crossing_ones_do() {
        let tessellation = Tessellation::new(
            vec![],
            vec![
                grid("370681001001001", rectangle(120.40, 37.60, 120.41, 37.61)),
                grid("370681001001002", rectangle(120.41, 37.60, 120.42, 37.61)),
                // Reaches 0.001° (≈ 88 m) into the second grid.
                grid("370681001001003", rectangle(120.419, 37.60, 120.43, 37.61)),
            ],
            vec![],
            vec![],
        );
        let findings = tessellation.grid_overlaps(&Parameters::default());
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].codes, ["370681001001002", "370681001001003"]);
        let area = findings[0].area_m2.unwrap_or_default();
        assert!((area - 98_100.0).abs() < 500.0, "{area}");
    }
}
