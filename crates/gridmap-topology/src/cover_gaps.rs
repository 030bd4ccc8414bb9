//! [`CoverGaps`]: community area that none of its grids covers.

use crate::measure::{pieces_at_least, zoom_point};
use crate::tessellation::TOUCH_TOLERANCE_DEG;
use crate::{Finding, FindingKind, Parameters, Tessellation};
use geo::{BooleanOps, Distance, Euclidean, Geometry, MultiPolygon, Polygon};

/// Finds the gaps of 横向到边 (edge to edge): the community minus the union of
/// its grids. Each connected piece of at least `min_area_m2` is one finding
/// whose codes are the community and then every grid touching the piece, in
/// code order, so the planner sees which grids to stretch.
///
/// # Examples
///
/// ```
/// use geo::{polygon, MultiPolygon};
/// use gridmap_topology::{Community, CoverGaps, Grid, Parameters, Tessellation};
///
/// let community = Community {
///     code: "370681001001".into(),
///     polygon: MultiPolygon(vec![polygon![
///         (x: 120.40, y: 37.60), (x: 120.42, y: 37.60),
///         (x: 120.42, y: 37.61), (x: 120.40, y: 37.61), (x: 120.40, y: 37.60),
///     ]]),
/// };
/// // One grid covers the western half only.
/// let grid = Grid {
///     code: "370681001001001".into(),
///     community_code: "370681001001".into(),
///     polygon: MultiPolygon(vec![polygon![
///         (x: 120.40, y: 37.60), (x: 120.41, y: 37.60),
///         (x: 120.41, y: 37.61), (x: 120.40, y: 37.61), (x: 120.40, y: 37.60),
///     ]]),
///     has_worker: true,
///     households: 120,
/// };
/// let tessellation = Tessellation::new(vec![community], vec![grid], vec![], vec![]);
/// let gaps = tessellation.cover_gaps(&Parameters::default());
/// assert_eq!(gaps.len(), 1);
/// assert_eq!(gaps[0].codes, ["370681001001", "370681001001001"]);
/// assert!((gaps[0].area_m2.unwrap() - 981_000.0).abs() < 3_000.0);
/// ```
pub trait CoverGaps {
    fn cover_gaps(&self, parameters: &Parameters) -> Vec<Finding>;
}

impl CoverGaps for Tessellation {
    fn cover_gaps(&self, parameters: &Parameters) -> Vec<Finding> {
        let unions = self.grid_unions();
        let mut findings = Vec::new();
        for community in &self.communities {
            let uncovered = match unions.community_union(&community.code) {
                Some(union) => community.polygon.difference(union),
                None => community.polygon.clone(),
            };
            for (piece, area) in pieces_at_least(uncovered, parameters.min_area_m2) {
                let mut codes = vec![community.code.clone()];
                codes.extend(self.grids_touching(&piece));
                let piece = MultiPolygon(vec![piece]);
                findings.push(Finding {
                    kind: FindingKind::Gap,
                    codes,
                    area_m2: Some(area),
                    point: zoom_point(&piece),
                    geometry: Geometry::MultiPolygon(piece),
                });
            }
        }
        findings
    }
}

impl Tessellation {
    /// Codes of the grids, of any community, that come within
    /// [`TOUCH_TOLERANCE_DEG`] of `piece`: an exact intersection test would
    /// miss neighbours whose shared edge the overlay moved by a rounding step.
    fn grids_touching(&self, piece: &Polygon<f64>) -> Vec<String> {
        let envelope = MultiPolygon(vec![piece.clone()]);
        let mut codes: Vec<String> = self
            .grid_candidates(&envelope)
            .filter(|&idx| {
                Euclidean.distance(&self.grids[idx].polygon, piece) <= TOUCH_TOLERANCE_DEG
            })
            .map(|idx| self.grids[idx].code.clone())
            .collect();
        codes.sort_unstable();
        codes
    }
}
