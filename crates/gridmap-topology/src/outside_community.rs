//! [`OutsideCommunity`]: grid area that spills out of the grid's community.

use crate::measure::{pieces_at_least, zoom_point};
use crate::{Finding, FindingKind, Parameters, Tessellation};
use geo::{BooleanOps, Geometry, MultiPolygon};

/// Finds grids that do not nest in their community (纵向到底): the grid minus
/// its community, without slivers under `min_area_m2`. One finding per grid,
/// codes `[grid, community]`. A grid whose community is not in the
/// tessellation is skipped: the loader always brings the community along, so
/// it can only be missing when a caller chose to leave it out.
pub trait OutsideCommunity {
    fn outside_community(&self, parameters: &Parameters) -> Vec<Finding>;
}

impl OutsideCommunity for Tessellation {
    fn outside_community(&self, parameters: &Parameters) -> Vec<Finding> {
        let mut findings = Vec::new();
        for grid in &self.grids {
            let Some(community) = self.community(&grid.community_code) else {
                continue;
            };
            let outside = grid.polygon.difference(&community.polygon);
            let pieces = pieces_at_least(outside, parameters.min_area_m2);
            if pieces.is_empty() {
                continue;
            }
            let area: f64 = pieces.iter().map(|(_, area)| area).sum();
            let outside = MultiPolygon(pieces.into_iter().map(|(piece, _)| piece).collect());
            findings.push(Finding {
                kind: FindingKind::OutsideCommunity,
                codes: vec![grid.code.clone(), community.code.clone()],
                area_m2: Some(area),
                point: zoom_point(&outside),
                geometry: Geometry::MultiPolygon(outside),
            });
        }
        findings
    }
}
