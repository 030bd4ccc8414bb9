//! [`Tessellation`]: the model data the checks read, with its spatial indexes.

use geo::orient::{Direction, Orient};
use geo::{BoundingRect, MultiPolygon, Point};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};
use std::collections::HashMap;
use std::sync::OnceLock;

use crate::grid_unions::GridUnions;

/// A community (社区) and its boundary.
#[derive(Debug, Clone)]
pub struct Community {
    pub code: String,
    pub polygon: MultiPolygon<f64>,
}

/// A basic or exclusive grid (网格).
#[derive(Debug, Clone)]
pub struct Grid {
    pub code: String,
    pub community_code: String,
    pub polygon: MultiPolygon<f64>,
    /// Whether a grid worker is assigned; the worker's name never gets here.
    pub has_worker: bool,
    /// The sum of the households of the grid's buildings.
    pub households: i64,
}

/// A building (楼栋) with the grid it is registered in.
#[derive(Debug, Clone)]
pub struct Building {
    pub code: String,
    pub grid_code: String,
    pub polygon: MultiPolygon<f64>,
}

/// A party-mass service centre (党群服务中心) with its community's households.
#[derive(Debug, Clone)]
pub struct ServiceCentre {
    pub code: String,
    pub community_code: String,
    /// Floor area in m²; `None` when the source data does not say.
    pub area_m2: Option<f64>,
    pub community_households: i64,
    pub location: Point<f64>,
}

/// How close (in degrees, about 1 mm) two shapes must come to count as
/// touching. The overlay engine snaps results to an integer grid scaled to the
/// inputs, so a gap's edge can sit a hair away from the grid edge it came from.
pub const TOUCH_TOLERANCE_DEG: f64 = 1e-8;

pub(crate) type BoxEntry = GeomWithData<Rectangle<[f64; 2]>, usize>;

/// The checked area: communities, their grids, buildings and service centres,
/// with an R-tree over the grids' bounding boxes.
#[derive(Debug)]
pub struct Tessellation {
    pub communities: Vec<Community>,
    pub grids: Vec<Grid>,
    pub buildings: Vec<Building>,
    pub service_centres: Vec<ServiceCentre>,
    grid_tree: RTree<BoxEntry>,
    community_by_code: HashMap<String, usize>,
    /// Built on first use and shared by the gap and overlap checks.
    grid_unions: OnceLock<GridUnions>,
}

impl Tessellation {
    /// Builds the indexes. Every polygon is re-oriented (exterior
    /// counter-clockwise, holes clockwise) because geo's `unary_union` takes its
    /// fill rule from the first ring's winding, and PostGIS returns rings in
    /// whatever orientation they were stored.
    #[must_use]
    pub fn new(
        mut communities: Vec<Community>,
        mut grids: Vec<Grid>,
        mut buildings: Vec<Building>,
        service_centres: Vec<ServiceCentre>,
    ) -> Self {
        for community in &mut communities {
            community.polygon = community.polygon.orient(Direction::Default);
        }
        for grid in &mut grids {
            grid.polygon = grid.polygon.orient(Direction::Default);
        }
        for building in &mut buildings {
            building.polygon = building.polygon.orient(Direction::Default);
        }
        let grid_tree = RTree::bulk_load(
            grids
                .iter()
                .enumerate()
                .filter_map(|(idx, grid)| box_entry(&grid.polygon, idx))
                .collect(),
        );
        let community_by_code = communities
            .iter()
            .enumerate()
            .map(|(idx, community)| (community.code.clone(), idx))
            .collect();
        Self {
            communities,
            grids,
            buildings,
            service_centres,
            grid_tree,
            community_by_code,
            grid_unions: OnceLock::new(),
        }
    }

    /// The unions of the grids by community and street (built on first use).
    pub(crate) fn grid_unions(&self) -> &GridUnions {
        self.grid_unions
            .get_or_init(|| GridUnions::new(&self.grids))
    }

    /// The community with this code, if it is part of the tessellation.
    #[must_use]
    pub fn community(&self, code: &str) -> Option<&Community> {
        self.community_by_code
            .get(code)
            .map(|&idx| &self.communities[idx])
    }

    /// Indexes of the grids whose bounding box comes within
    /// [`TOUCH_TOLERANCE_DEG`] of that of `polygon`.
    pub(crate) fn grid_candidates<'a>(
        &'a self,
        polygon: &MultiPolygon<f64>,
    ) -> impl Iterator<Item = usize> + 'a {
        let envelope = polygon.bounding_rect().map(|rect| {
            AABB::from_corners(
                [
                    rect.min().x - TOUCH_TOLERANCE_DEG,
                    rect.min().y - TOUCH_TOLERANCE_DEG,
                ],
                [
                    rect.max().x + TOUCH_TOLERANCE_DEG,
                    rect.max().y + TOUCH_TOLERANCE_DEG,
                ],
            )
        });
        envelope.into_iter().flat_map(|envelope| {
            self.grid_tree
                .locate_in_envelope_intersecting(&envelope)
                .map(|entry| entry.data)
                .collect::<Vec<_>>()
        })
    }

    /// Pairs `(i, j)`, `i < j`, of grids whose bounding boxes meet.
    pub(crate) fn grid_candidate_pairs(&self) -> Vec<(usize, usize)> {
        let mut pairs: Vec<(usize, usize)> = self
            .grid_tree
            .intersection_candidates_with_other_tree(&self.grid_tree)
            .map(|(a, b)| (a.data, b.data))
            .filter(|(a, b)| a < b)
            .collect();
        pairs.sort_unstable();
        pairs
    }
}

/// An R-tree entry for the bounding box of `polygon`; `None` when it is empty.
pub(crate) fn box_entry(polygon: &MultiPolygon<f64>, idx: usize) -> Option<BoxEntry> {
    let rect = polygon.bounding_rect()?;
    Some(GeomWithData::new(
        Rectangle::from_corners([rect.min().x, rect.min().y], [rect.max().x, rect.max().y]),
        idx,
    ))
}
