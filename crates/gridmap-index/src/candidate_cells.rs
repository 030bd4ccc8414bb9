//! [`CandidateCells`]: for each cell of a grid, the few points that can
//! answer a nearest-point question anywhere in the cell, listed once when an
//! index is built, so a query reads one short list instead of walking a tree.
//!
//! The lists come from the triangle inequality. If `c` is a cell's centre,
//! `r` bounds the distance from `c` to every point of the cell, and the
//! answer at `c` lies within `d` of it, then the answer at any point `p` of
//! the cell lies within `d + r` of `p` and so within `d + 2r` of `c`. A list
//! holding every point within `d + 2r` of the centre (or more) therefore holds
//! every answer the cell can give: searching it with the same comparisons
//! and tie rules as the tree search gives the same answer, whatever order the
//! list is in.
//!
//! Points are rarely spread evenly (a town's streets, then open country), so
//! a cell whose list would be long is cut in four, and so on for a few
//! levels; a cell still too crowded at the last level keeps no list, and its
//! queries walk the tree as before, as do queries outside the grid and cells
//! listed after the lists' memory budget is spent.

/// Cells of a grid over a rectangle of some plane (degrees, or
/// longitude-scaled degrees), each with its candidates or cut in four.
#[derive(Debug, Clone)]
pub(crate) struct CandidateCells {
    west: f64,
    south: f64,
    cell_width: f64,
    cell_height: f64,
    columns: usize,
    rows: usize,
    /// The top cells row by row, then the quarters of cut cells in blocks
    /// of four (south-west, south-east, north-west, north-east).
    spans: Vec<Span>,
    ids: Vec<u32>,
}

/// What a cell holds: its list's start and end in `ids`, [`TREE`], or
/// ([`CUT`], the position of its four quarters in `spans`).
type Span = (u32, u32);
const TREE: Span = (u32::MAX, u32::MAX);
const CUT: u32 = u32::MAX - 1;
/// At most this many top cells, whatever the callers ask for.
const MAX_TOP_CELLS: usize = 1 << 20;
/// Cells are cut at most this many times (a quarter of a quarter …).
const MAX_DEPTH: u32 = 7;
/// At most this many listed points in all (64 MB); a Zibo-sized city's road
/// nodes take about 6 million.
pub(crate) const MAX_IDS: usize = 1 << 24;

/// The bounding box (west, south, east, north) of `points`, widened on each
/// side by `fraction` of its width and height, so queries a little beyond
/// the outermost points still find a cell.
pub(crate) fn widened_bounds(points: impl Iterator<Item = [f64; 2]>, fraction: f64) -> [f64; 4] {
    let [west, south, east, north] = points.fold(
        [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ],
        |[west, south, east, north], [x, y]| [west.min(x), south.min(y), east.max(x), north.max(y)],
    );
    let (x_margin, y_margin) = (fraction * (east - west), fraction * (north - south));
    [
        west - x_margin,
        south - y_margin,
        east + x_margin,
        north + y_margin,
    ]
}

/// What the function that lists a cell's candidates answers.
#[derive(Debug)]
pub(crate) enum Listing {
    /// The candidates, with the distances their bound was made of: `d`, the
    /// answer's distance at the centre, and `r`, the reach from the centre
    /// to the cell's points (in the index's own metric).
    Listed { ids: Vec<u32>, d: f64, r: f64 },
    /// The cell is too large to bound: cut it in four.
    Cut,
    /// Never listed: its queries walk the tree.
    Tree,
}

/// Where the answers lie farther than twice the cell's side (`d > 4r`: a
/// field beside a town), cutting the cell shrinks the bound `d + 2r` by less
/// than a fifth: the list is the ring between `d` and `d + 2r` and shortens
/// only in proportion to the side, while the cells grow fourfold. Such a
/// cell keeps a long list up to `keep_up_to` and is cut only beyond it.
fn is_far(d: f64, r: f64) -> bool {
    d > 4.0 * r
}

/// How long a cell's list may grow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// A longer list is cut in four …
    pub cut_above: usize,
    /// … unless it is far (see `is_far`) or at the last level: then it is
    /// kept up to this long (and a far one longer than this is cut).
    pub keep_up_to: usize,
    /// The lists' budget in all ([`MAX_IDS`] for the indexes): the cells
    /// listed after it is spent walk the tree.
    pub max_ids: usize,
}

/// One cell handed to the function that lists its candidates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell {
    pub west: f64,
    pub south: f64,
    pub east: f64,
    pub north: f64,
}

impl Cell {
    pub fn centre(&self) -> [f64; 2] {
        [self.mid_x(), self.mid_y()]
    }

    pub fn corners(&self) -> [[f64; 2]; 4] {
        [
            [self.west, self.south],
            [self.east, self.south],
            [self.east, self.north],
            [self.west, self.north],
        ]
    }

    // Building and querying cut a cell at these same values.
    fn mid_x(&self) -> f64 {
        0.5 * (self.west + self.east)
    }

    fn mid_y(&self) -> f64 {
        0.5 * (self.south + self.north)
    }

    /// The quarter holding `(x, y)` (0 to 3, as in `spans`) and its bounds.
    fn quarter_at(&self, x: f64, y: f64) -> (usize, Cell) {
        let (east, north) = (x >= self.mid_x(), y >= self.mid_y());
        let position = usize::from(east) + 2 * usize::from(north);
        (position, self.quarter(position))
    }

    fn quarter(&self, position: usize) -> Cell {
        let (mid_x, mid_y) = (self.mid_x(), self.mid_y());
        let (west, east) = if position.is_multiple_of(2) {
            (self.west, mid_x)
        } else {
            (mid_x, self.east)
        };
        let (south, north) = if position < 2 {
            (self.south, mid_y)
        } else {
            (mid_y, self.north)
        };
        Cell {
            west,
            south,
            east,
            north,
        }
    }
}

impl CandidateCells {
    /// Cuts `bounds` (west, south, east, north) into about `target_cells`
    /// square-ish cells (at least one) and lists each cell's candidates with
    /// `list`; a cell whose list is longer than `limits.cut_above` (or
    /// `limits.keep_up_to` for a far cell, see `is_far`), or for which
    /// `list` answers [`Listing::Cut`], is cut in four; at the last level
    /// it keeps a list up to `limits.keep_up_to` long, else walks the tree.
    /// At most [`MAX_TOP_CELLS`] top cells. `None` when the bounds are
    /// empty or not finite, or when the lists would not fit `u32` positions.
    pub fn build(
        bounds: [f64; 4],
        target_cells: usize,
        limits: Limits,
        mut list: impl FnMut(Cell) -> Listing,
    ) -> Option<Self> {
        let [west, south, east, north] = bounds;
        if !bounds.iter().all(|value| value.is_finite()) || east < west || north < south {
            return None;
        }
        // A point or a line of points still gets cells of some size.
        let width = (east - west).max(f64::EPSILON * west.abs().max(1.0) * 1e3);
        let height = (north - south).max(f64::EPSILON * south.abs().max(1.0) * 1e3);
        let side = (width * height / target_cells.clamp(1, MAX_TOP_CELLS) as f64).sqrt();
        let columns = ((width / side).ceil() as usize).clamp(1, 4096);
        let rows = ((height / side).ceil() as usize).clamp(1, 4096);
        let mut cells = Self {
            west,
            south,
            cell_width: width / columns as f64,
            cell_height: height / rows as f64,
            columns,
            rows,
            spans: vec![TREE; columns * rows],
            ids: Vec::new(),
        };
        for row in 0..rows {
            for column in 0..columns {
                let cell = cells.top_cell(column, row);
                let span = cells.fill(cell, 0, limits, &mut list)?;
                cells.spans[row * columns + column] = span;
            }
        }
        cells.ids.shrink_to_fit();
        cells.spans.shrink_to_fit();
        Some(cells)
    }

    fn top_cell(&self, column: usize, row: usize) -> Cell {
        Cell {
            west: self.west + column as f64 * self.cell_width,
            south: self.south + row as f64 * self.cell_height,
            east: self.west + (column + 1) as f64 * self.cell_width,
            north: self.south + (row + 1) as f64 * self.cell_height,
        }
    }

    /// The span of `cell`: its list, or its quarters filled in turn.
    fn fill(
        &mut self,
        cell: Cell,
        depth: u32,
        limits: Limits,
        list: &mut impl FnMut(Cell) -> Listing,
    ) -> Option<Span> {
        if self.ids.len() >= limits.max_ids {
            return Some(TREE);
        }
        let listed = match list(cell) {
            Listing::Tree => return Some(TREE),
            Listing::Cut if depth == MAX_DEPTH => return Some(TREE),
            Listing::Cut => None,
            Listing::Listed { ids, d, r } => Some((ids, is_far(d, r))),
        };
        if let Some((ids, far)) = &listed {
            let limit = if *far {
                limits.cut_above.max(limits.keep_up_to)
            } else {
                limits.cut_above
            };
            if ids.len() <= limit {
                return self.push_list(ids, limits);
            }
            if depth == MAX_DEPTH {
                return self.keep_or_tree(ids, limits);
            }
        }
        let base = u32::try_from(self.spans.len())
            .ok()
            .filter(|&base| base < CUT)?;
        self.spans.extend([TREE; 4]);
        for position in 0..4 {
            let span = self.fill(cell.quarter(position), depth + 1, limits, list)?;
            self.spans[base as usize + position] = span;
        }
        Some((CUT, base))
    }

    fn keep_or_tree(&mut self, listed: &[u32], limits: Limits) -> Option<Span> {
        if listed.len() <= limits.keep_up_to {
            self.push_list(listed, limits)
        } else {
            Some(TREE)
        }
    }

    fn push_list(&mut self, listed: &[u32], limits: Limits) -> Option<Span> {
        // Past the budget, cells walk the tree rather than grow the lists.
        if self.ids.len() + listed.len() > limits.max_ids {
            return Some(TREE);
        }
        let start = u32::try_from(self.ids.len()).ok()?;
        self.ids.extend_from_slice(listed);
        let end = u32::try_from(self.ids.len()).ok()?;
        (end < CUT).then_some((start, end))
    }

    /// The candidates of the cell holding `(x, y)`, or `None` outside the
    /// grid or where the cell's queries walk the tree.
    ///
    /// A point on a line between two cells may be placed in either: both
    /// lists hold its answer, since each cell's bound covers its closed
    /// rectangle and a rounding step's width beyond it (the callers widen
    /// `r`).
    #[inline]
    pub fn candidates(&self, x: f64, y: f64) -> Option<&[u32]> {
        let column = (x - self.west) / self.cell_width;
        let row = (y - self.south) / self.cell_height;
        // Also false for NaN.
        if !(column >= 0.0 && row >= 0.0) {
            return None;
        }
        let (column, row) = (column as usize, row as usize);
        if column >= self.columns || row >= self.rows {
            return None;
        }
        let mut span = self.spans[row * self.columns + column];
        let mut cell = self.top_cell(column, row);
        while span.0 == CUT {
            let (position, quarter) = cell.quarter_at(x, y);
            span = self.spans[span.1 as usize + position];
            cell = quarter;
        }
        if span == TREE {
            return None;
        }
        Some(&self.ids[span.0 as usize..span.1 as usize])
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.spans.capacity() * std::mem::size_of::<Span>()
            + self.ids.capacity() * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list whose answers lie within the cell (never far).
    fn near(ids: Vec<u32>) -> Listing {
        Listing::Listed {
            ids,
            d: 0.0,
            r: 1.0,
        }
    }

    /// A list whose answers lie far beyond the cell.
    fn far(ids: Vec<u32>) -> Listing {
        Listing::Listed {
            ids,
            d: 5.0,
            r: 1.0,
        }
    }

    const ONE: Limits = Limits {
        cut_above: 1,
        keep_up_to: 1,
        max_ids: MAX_IDS,
    };
    const TWO: Limits = Limits {
        cut_above: 2,
        keep_up_to: 2,
        max_ids: MAX_IDS,
    };

    #[test]
    fn a_point_finds_the_list_of_its_cell_and_none_outside() {
        // One candidate per unit square of the cell; the top-right cell
        // (3..4, 1..2) cannot be bounded at all.
        let cells = CandidateCells::build([0.0, 0.0, 4.0, 2.0], 8, ONE, |cell| {
            let [x, y] = cell.centre();
            if x > 3.0 && y > 1.0 {
                return Listing::Cut;
            }
            let area = (cell.east - cell.west) * (cell.north - cell.south);
            near(vec![(100.0 * x) as u32; area.ceil() as usize])
        })
        .unwrap();
        assert_eq!((cells.columns, cells.rows), (4, 2));
        assert_eq!(cells.candidates(0.2, 0.2), Some(&[50][..]));
        assert_eq!(cells.candidates(2.5, 1.5), Some(&[250][..]));
        assert_eq!(cells.candidates(3.5, 0.5), Some(&[350][..]));
        // Cut down to the last level, then walked as a tree.
        assert_eq!(cells.candidates(3.5, 1.5), None);
        assert_eq!(cells.candidates(-0.1, 0.5), None);
        assert_eq!(cells.candidates(4.1, 0.5), None);
        assert_eq!(cells.candidates(f64::NAN, 0.5), None);
        assert!(CandidateCells::build([1.0, 0.0, 0.0, 1.0], 8, ONE, |_| Listing::Tree).is_none());
        // A single point still gets a cell.
        let point = CandidateCells::build([5.0, 5.0, 5.0, 5.0], 8, ONE, |_| near(vec![7])).unwrap();
        assert_eq!(point.candidates(5.0, 5.0), Some(&[7][..]));
    }

    #[test]
    fn a_far_cell_keeps_a_longer_list_and_is_cut_only_beyond_it() {
        // Far cells list 3 candidates per unit square: a 1 x 1 cell keeps its
        // 3 (more than `cut_above`, within `keep_up_to`); a 2 x 2 cell lists
        // 12 and is cut into four 1 x 1 cells that keep 3 each.
        let limits = Limits {
            cut_above: 1,
            keep_up_to: 4,
            max_ids: MAX_IDS,
        };
        let listing = |cell: Cell| {
            let side = (cell.east - cell.west).round() as usize;
            far(vec![cell.centre()[0] as u32; 3 * side * side])
        };
        let small = CandidateCells::build([0.0, 0.0, 1.0, 1.0], 1, limits, listing).unwrap();
        assert_eq!(small.candidates(0.5, 0.5), Some(&[0, 0, 0][..]));
        assert_eq!(small.spans.len(), 1);
        let large = CandidateCells::build([0.0, 0.0, 2.0, 2.0], 1, limits, listing).unwrap();
        assert_eq!(large.candidates(1.5, 0.5), Some(&[1, 1, 1][..]));
        assert_eq!(large.spans.len(), 1 + 4);
    }

    #[test]
    fn cells_listed_after_the_budget_is_spent_walk_the_tree() {
        // Eight cells of one candidate each, row by row; a budget of five.
        let limits = Limits { max_ids: 5, ..ONE };
        let cells = CandidateCells::build([0.0, 0.0, 4.0, 2.0], 8, limits, |cell| {
            near(vec![cell.centre()[0] as u32])
        })
        .unwrap();
        assert_eq!(cells.ids.len(), 5);
        assert_eq!(cells.candidates(0.5, 0.5), Some(&[0][..]));
        assert_eq!(cells.candidates(0.5, 1.5), Some(&[0][..]));
        assert_eq!(cells.candidates(1.5, 1.5), None);
        assert_eq!(cells.candidates(3.5, 1.5), None);
    }

    #[test]
    fn a_crowded_cell_is_cut_into_quarters_that_list_fewer() {
        // Two candidates per 0.25 x 0.25 of a cell's extent: top cells of 1 x 1
        // list 32 and are cut twice; each quarter of a quarter lists 2.
        let cells = CandidateCells::build([0.0, 0.0, 2.0, 1.0], 2, TWO, |cell| {
            let [x, y] = cell.centre();
            let quarters = ((cell.east - cell.west) / 0.25).round() as usize;
            near(vec![(100.0 * x + y) as u32; 2 * quarters * quarters])
        })
        .unwrap();
        assert_eq!((cells.columns, cells.rows), (2, 1));
        assert_eq!(cells.candidates(0.1, 0.1), Some(&[12, 12][..]));
        assert_eq!(cells.candidates(1.9, 0.9), Some(&[188, 188][..]));
        // On a cut: the north-east quarter's side.
        assert_eq!(cells.candidates(0.5, 0.5), Some(&[63, 63][..]));
        assert_eq!(cells.spans.len(), 2 + 2 * (4 + 16));
    }
}
