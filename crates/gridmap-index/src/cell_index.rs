//! [`CellIndex`]: the first step of a point lookup over many polygons.
//!
//! A uniform grid over the extent of all polygons; each cell lists, in code
//! order, the polygons that may cover some point of it, and marks those that
//! cover all of it. A cell that a polygon's edges never come near is either
//! wholly inside or wholly outside that polygon (decided at its centre), so:
//!
//! - a polygon wholly outside a cell is not listed there at all;
//! - if the first listed polygon covers the whole cell, it is the answer for
//!   every point of the cell (no polygon with a smaller code covers any of
//!   it), with no geometry touched: the common case inside a tessellation;
//! - otherwise the listed polygons are tested in code order and the first
//!   that covers the point wins (a polygon covering the whole cell wins
//!   without a test).
//!
//! Compared with descending an R-tree of bounding boxes this is one array read
//! and no pointer chasing, and bounding boxes of neighbouring grids, which
//! overlap a lot, produce no candidates that are far from the point.

use crate::prepared::{Axis1, Axis2};
use geo::{Coord, MultiPolygon, Rect};

/// Cells per polygon on average (fewer where the polygons are much smaller
/// than the extent would allow, e.g. buildings spread over a city).
const CELLS_PER_POLYGON: usize = 64;
/// Cells across the median polygon, per side.
const CELLS_PER_POLYGON_SIDE: f64 = 8.0;
/// The lowest bit of an entry flags a polygon that covers the whole cell.
const COVERS_CELL: u32 = 1;

#[derive(Debug)]
pub(crate) struct CellIndex {
    cells: Axis2,
    min: Coord<f64>,
    max: Coord<f64>,
    /// Entries of cell `c` are `entries[start[c]..start[c + 1]]`.
    start: Vec<u32>,
    /// `item << 1 | COVERS_CELL` or `item << 1`, in item (code) order.
    entries: Vec<u32>,
}

/// What the cell of a point says.
pub(crate) enum Candidates<'a> {
    /// The point's cell lies wholly in this item, which wins.
    Item(usize),
    /// Test these in order; an entry with `COVERS_CELL` wins untested.
    Test(&'a [u32]),
    None,
}

impl CellIndex {
    /// Indexes `polygons` (given in item order, with their bounding boxes);
    /// `covers(item, x, y)` is the exact test of one item.
    pub(crate) fn new(
        polygons: &[(&MultiPolygon<f64>, Option<Rect<f64>>)],
        covers: impl Fn(usize, f64, f64) -> bool,
    ) -> Self {
        let boxes: Vec<Rect<f64>> = polygons.iter().filter_map(|(_, rect)| *rect).collect();
        let Some(first) = boxes.first() else {
            return Self::empty();
        };
        let (min, max) = boxes
            .iter()
            .fold((first.min(), first.max()), |(lo, hi), rect| {
                (
                    Coord {
                        x: lo.x.min(rect.min().x),
                        y: lo.y.min(rect.min().y),
                    },
                    Coord {
                        x: hi.x.max(rect.max().x),
                        y: hi.y.max(rect.max().y),
                    },
                )
            });
        let cells = grid_for(&boxes, min, max);
        let n_cells = cells.x.n * cells.y.n;
        let mut per_cell: Vec<Vec<u32>> = vec![Vec::new(); n_cells];
        let mut window_boundary = Vec::new();
        for (item, (polygon, rect)) in polygons.iter().enumerate() {
            let Some(rect) = rect else { continue };
            let Ok(entry) = u32::try_from(item << 1) else {
                continue;
            };
            let (col_lo, col_hi) = (cells.x.part(rect.min().x), cells.x.part(rect.max().x));
            let (row_lo, row_hi) = (cells.y.part(rect.min().y), cells.y.part(rect.max().y));
            let width = col_hi - col_lo + 1;
            window_boundary.clear();
            window_boundary.resize(width * (row_hi - row_lo + 1), false);
            for ring in polygon
                .0
                .iter()
                .flat_map(|part| std::iter::once(part.exterior()).chain(part.interiors()))
            {
                for line in ring.lines() {
                    cells.mark_segment(line.start, line.end, |col, row| {
                        // Inside the bounding box by monotonicity of `part`.
                        window_boundary[(row - row_lo) * width + (col - col_lo)] = true;
                    });
                }
            }
            for row in row_lo..=row_hi {
                for col in col_lo..=col_hi {
                    let centre = (cells.x.centre(col), cells.y.centre(row));
                    let boundary = window_boundary[(row - row_lo) * width + (col - col_lo)]
                        || cells.x.part(centre.0) != col
                        || cells.y.part(centre.1) != row;
                    let cell = &mut per_cell[row * cells.x.n + col];
                    if boundary {
                        cell.push(entry);
                    } else if covers(item, centre.0, centre.1) {
                        cell.push(entry | COVERS_CELL);
                    }
                }
            }
        }
        let mut start = Vec::with_capacity(n_cells + 1);
        let mut entries = Vec::new();
        for list in per_cell {
            start.push(u32::try_from(entries.len()).unwrap_or(u32::MAX));
            entries.extend(list);
        }
        start.push(u32::try_from(entries.len()).unwrap_or(u32::MAX));
        Self {
            cells,
            min,
            max,
            start,
            entries,
        }
    }

    fn empty() -> Self {
        Self {
            cells: Axis2 {
                x: Axis1::new(0.0, 0.0, 1),
                y: Axis1::new(0.0, 0.0, 1),
            },
            min: Coord { x: 1.0, y: 1.0 },
            max: Coord { x: 0.0, y: 0.0 },
            start: vec![0, 0],
            entries: Vec::new(),
        }
    }

    #[inline]
    pub(crate) fn candidates(&self, x: f64, y: f64) -> Candidates<'_> {
        if !(x >= self.min.x && x <= self.max.x && y >= self.min.y && y <= self.max.y) {
            return Candidates::None;
        }
        let cell = self.cells.y.part(y) * self.cells.x.n + self.cells.x.part(x);
        let entries = &self.entries[self.start[cell] as usize..self.start[cell + 1] as usize];
        match entries.first() {
            None => Candidates::None,
            Some(&first) if first & COVERS_CELL != 0 => Candidates::Item((first >> 1) as usize),
            Some(_) => Candidates::Test(entries),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        (self.start.len() + self.entries.len()) * 4
    }
}

/// Entry of a `Candidates::Test` slice: the item and whether it covers the cell.
#[inline]
pub(crate) fn entry_item(entry: u32) -> (usize, bool) {
    ((entry >> 1) as usize, entry & COVERS_CELL != 0)
}

/// A grid of cells a quarter of the median polygon across, at most
/// `CELLS_PER_POLYGON` per polygon in all.
fn grid_for(boxes: &[Rect<f64>], min: Coord<f64>, max: Coord<f64>) -> Axis2 {
    let mut sides: Vec<f64> = boxes
        .iter()
        .map(|rect| rect.width().max(rect.height()))
        .collect();
    let median_side = if sides.is_empty() {
        0.0
    } else {
        let middle = sides.len() / 2;
        *sides.select_nth_unstable_by(middle, f64::total_cmp).1
    };
    let (width, height) = (max.x - min.x, max.y - min.y);
    let max_cells = (boxes.len() * CELLS_PER_POLYGON).max(1) as f64;
    let mut cell_side = median_side / CELLS_PER_POLYGON_SIDE;
    if cell_side <= 0.0 || width * height / (cell_side * cell_side) > max_cells {
        cell_side = (width * height / max_cells).sqrt();
    }
    let count = |extent: f64| -> usize {
        if cell_side > 0.0 && extent > 0.0 {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a positive count, clamped"
            )]
            let n = (extent / cell_side).ceil().clamp(1.0, 65_536.0) as usize;
            n
        } else {
            1
        }
    };
    Axis2 {
        x: Axis1::new(min.x, max.x, count(width)),
        y: Axis1::new(min.y, max.y, count(height)),
    }
}
