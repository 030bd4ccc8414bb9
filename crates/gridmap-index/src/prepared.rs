//! [`PreparedPolygon`]: a polygon indexed for fast, exact, boundary-inclusive
//! point-in-polygon tests.
//!
//! Two structures are built once per polygon:
//!
//! - **A uniform grid of cells** over the bounding box, each marked inside,
//!   outside or boundary. A cell that no edge comes near lies wholly inside or
//!   wholly outside, so a point falling in it is answered by one array read,
//!   with no edge test at all. Most points of a grid land in such cells.
//! - **Horizontal slabs**, each listing the edges whose vertical extent meets
//!   it. A point in a boundary cell is decided by the crossing rule over the
//!   edges of its slab only, with geo's robust `orient2d`, so the answer is
//!   exact: a point on an edge or vertex is inside (the closed area, as
//!   PostGIS's `ST_Intersects` sees it).
//!
//! Both map a coordinate to a cell or slab with the same monotone function
//! (subtract, scale, floor), so a point between two edge endpoints always maps
//! between their slabs; the cells are marked with a small margin on top, so
//! rounding can never put a point in a cell its edges were not marked in.

use geo::kernels::{Kernel, Orientation, RobustKernel};
use geo::{Coord, Polygon};

/// A cell state, two bits each.
const OUTSIDE: u8 = 0;
const INSIDE: u8 = 1;
const BOUNDARY: u8 = 2;

/// Cells per edge: more cells make boundary cells (which need edge tests) a
/// smaller share of the area, at two bits per cell.
const CELLS_PER_EDGE: usize = 8;
/// Upper bound of cells per side, which bounds memory for huge polygons.
const MAX_CELLS_PER_SIDE: usize = 256;
/// Edges per slab on average; a slab also holds the edges passing through.
const EDGES_PER_SLAB: usize = 4;
const MAX_SLABS: usize = 4096;

/// What a point test answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Outside,
    Inside,
    OnBoundary,
}

impl Position {
    /// In the closed area: inside or on the boundary.
    #[must_use]
    pub fn is_covered(self) -> bool {
        self != Self::Outside
    }
}

/// A polygon (exterior and holes) prepared for repeated point tests.
#[derive(Debug, Clone)]
pub struct PreparedPolygon {
    min: Coord<f64>,
    max: Coord<f64>,
    /// Ring vertices, each ring closed, one after another; edge `i` runs from
    /// `vertices[i]` to `vertices[i + 1]` and is named only by the slabs.
    vertices: Box<[Coord<f64>]>,
    cells: Axis2,
    cell_states: Box<[u8]>,
    slabs: Axis1,
    /// `slab_edges[slab_start[s]..slab_start[s + 1]]` are the edges of slab `s`.
    slab_start: Box<[u32]>,
    slab_edges: Box<[u32]>,
}

/// A uniform division of a box into `x.n` × `y.n` cells.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axis2 {
    pub(crate) x: Axis1,
    pub(crate) y: Axis1,
}

/// A uniform division of `[min, min + n / scale]` into `n` parts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axis1 {
    pub(crate) min: f64,
    scale: f64,
    pub(crate) n: usize,
}

impl Axis1 {
    pub(crate) fn new(min: f64, max: f64, n: usize) -> Self {
        let extent = max - min;
        let scale = if extent > 0.0 { n as f64 / extent } else { 0.0 };
        Self { min, scale, n }
    }

    /// The part holding `value`, clamped to the range. Monotone in `value`:
    /// subtraction, scaling by a positive factor and truncation all are.
    #[inline]
    pub(crate) fn part(self, value: f64) -> usize {
        // A truncating cast rather than `floor`, which is a library call on
        // baseline x86-64; both are monotone, and negatives clamp to 0.
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "saturating cast; clamped to [0, n - 1] after"
        )]
        let part = (((value - self.min) * self.scale).max(0.0) as usize).min(self.n - 1);
        part
    }

    /// Width of one part, in coordinate units.
    pub(crate) fn width(self) -> f64 {
        if self.scale > 0.0 {
            1.0 / self.scale
        } else {
            0.0
        }
    }

    /// The centre of part `i`.
    pub(crate) fn centre(self, i: usize) -> f64 {
        self.min + (i as f64 + 0.5) * self.width()
    }
}

impl Axis2 {
    /// Calls `mark(col, row)` for every cell the segment `a`–`b` comes near:
    /// a superset of the cells `part` can map a point of the segment to.
    /// Rounding in `part` is a few ulps of the coordinates; the margin is far
    /// above that and far below a cell.
    pub(crate) fn mark_segment(
        self,
        a: Coord<f64>,
        b: Coord<f64>,
        mut mark: impl FnMut(usize, usize),
    ) {
        let Self { x: cols, y: rows } = self;
        let margin_x = cols.width() * 1e-6 + 1e-11;
        let margin_y = rows.width() * 1e-6 + 1e-11;
        let (y_lo, y_hi) = (a.y.min(b.y), a.y.max(b.y));
        // By monotonicity every point of the segment maps into this range.
        let (col_lo, col_hi) = (cols.part(a.x.min(b.x)), cols.part(a.x.max(b.x)));
        for row in rows.part(y_lo)..=rows.part(y_hi) {
            // The stretch of the segment within this row (plus margins).
            let band_lo = (rows.min + row as f64 * rows.width() - margin_y).max(y_lo);
            let band_hi = (rows.min + (row + 1) as f64 * rows.width() + margin_y).min(y_hi);
            let (x_at_lo, x_at_hi) = if b.y == a.y {
                (a.x, b.x)
            } else {
                let slope = (b.x - a.x) / (b.y - a.y);
                (a.x + (band_lo - a.y) * slope, a.x + (band_hi - a.y) * slope)
            };
            let from = cols.part(x_at_lo.min(x_at_hi) - margin_x).max(col_lo);
            let to = cols.part(x_at_lo.max(x_at_hi) + margin_x).min(col_hi);
            for col in from..=to.max(from) {
                mark(col, row);
            }
        }
    }
}

impl PreparedPolygon {
    /// Prepares `polygon`; returns `None` for a polygon without vertices.
    #[must_use]
    pub fn new(polygon: &Polygon<f64>) -> Option<Self> {
        let mut vertices = Vec::new();
        let mut edge_starts = Vec::new();
        for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
            let coords = &ring.0;
            if coords.is_empty() {
                continue;
            }
            let offset = vertices.len();
            vertices.extend_from_slice(coords);
            // geo closes the rings of a Polygon; close an open one all the same.
            if coords.first() != coords.last() {
                vertices.push(coords[0]);
            }
            edge_starts.extend(offset..vertices.len() - 1);
        }
        let first = *vertices.first()?;
        let (min, max) = vertices.iter().fold((first, first), |(lo, hi), c| {
            (
                Coord {
                    x: lo.x.min(c.x),
                    y: lo.y.min(c.y),
                },
                Coord {
                    x: hi.x.max(c.x),
                    y: hi.y.max(c.y),
                },
            )
        });
        let n_edges = edge_starts.len().max(1);

        let n_slabs = (n_edges / EDGES_PER_SLAB).clamp(1, MAX_SLABS);
        let slabs = Axis1::new(min.y, max.y, n_slabs);
        let mut slab_lists: Vec<Vec<u32>> = vec![Vec::new(); n_slabs];
        for &start in &edge_starts {
            let (a, b) = (vertices[start], vertices[start + 1]);
            let (lo, hi) = (slabs.part(a.y.min(b.y)), slabs.part(a.y.max(b.y)));
            let edge = u32::try_from(start).unwrap_or(u32::MAX);
            for list in &mut slab_lists[lo..=hi] {
                list.push(edge);
            }
        }
        let mut slab_start = Vec::with_capacity(n_slabs + 1);
        let mut slab_edges = Vec::new();
        for list in slab_lists {
            slab_start.push(u32::try_from(slab_edges.len()).unwrap_or(u32::MAX));
            slab_edges.extend(list);
        }
        slab_start.push(u32::try_from(slab_edges.len()).unwrap_or(u32::MAX));

        let (cols, rows) = grid_shape(max.x - min.x, max.y - min.y, n_edges * CELLS_PER_EDGE);
        let cells = Axis2 {
            x: Axis1::new(min.x, max.x, cols),
            y: Axis1::new(min.y, max.y, rows),
        };
        let mut prepared = Self {
            min,
            max,
            vertices: vertices.into_boxed_slice(),
            cells,
            cell_states: vec![0; (cols * rows).div_ceil(4)].into_boxed_slice(),
            slabs,
            slab_start: slab_start.into_boxed_slice(),
            slab_edges: slab_edges.into_boxed_slice(),
        };
        prepared.mark_cells(&edge_starts);
        Some(prepared)
    }

    /// Where `(x, y)` lies relative to the polygon's closed area.
    #[must_use]
    #[inline]
    pub fn position(&self, x: f64, y: f64) -> Position {
        if x < self.min.x || x > self.max.x || y < self.min.y || y > self.max.y {
            return Position::Outside;
        }
        match self.cell_state(self.cells.x.part(x), self.cells.y.part(y)) {
            INSIDE => Position::Inside,
            OUTSIDE => Position::Outside,
            _ => self.position_by_edges(Coord { x, y }),
        }
    }

    /// Whether `(x, y)` lies in the closed area (inside or on the boundary).
    #[must_use]
    #[inline]
    pub fn covers(&self, x: f64, y: f64) -> bool {
        self.position(x, y).is_covered()
    }

    /// Bytes held besides the struct itself, for capacity planning.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.vertices)
            + self.cell_states.len()
            + std::mem::size_of_val(&*self.slab_start)
            + std::mem::size_of_val(&*self.slab_edges)
    }

    /// The exact test: crossing parity of a ray towards +x over the edges of
    /// the point's slab, and on-edge detection with the robust predicate.
    fn position_by_edges(&self, point: Coord<f64>) -> Position {
        let slab = self.slabs.part(point.y);
        let edges =
            &self.slab_edges[self.slab_start[slab] as usize..self.slab_start[slab + 1] as usize];
        let mut inside = false;
        for &start in edges {
            let start = start as usize;
            match ray_crosses(self.vertices[start], self.vertices[start + 1], point) {
                None => return Position::OnBoundary,
                Some(crosses) => inside ^= crosses,
            }
        }
        if inside {
            Position::Inside
        } else {
            Position::Outside
        }
    }

    #[inline]
    fn cell_state(&self, col: usize, row: usize) -> u8 {
        let cell = row * self.cells.x.n + col;
        (self.cell_states[cell / 4] >> ((cell % 4) * 2)) & 0b11
    }

    fn set_cell_state(&mut self, col: usize, row: usize, state: u8) {
        let cell = row * self.cells.x.n + col;
        let shift = (cell % 4) * 2;
        let byte = &mut self.cell_states[cell / 4];
        *byte = (*byte & !(0b11 << shift)) | (state << shift);
    }

    /// Marks every cell an edge comes near as a boundary cell, then classifies
    /// each other cell by the exact test at its centre.
    fn mark_cells(&mut self, edge_starts: &[usize]) {
        let Axis2 { x: cols, y: rows } = self.cells;
        let mut boundary = vec![false; cols.n * rows.n];
        for &start in edge_starts {
            let (a, b) = (self.vertices[start], self.vertices[start + 1]);
            self.cells.mark_segment(a, b, |col, row| {
                boundary[row * cols.n + col] = true;
            });
        }
        for row in 0..rows.n {
            for col in 0..cols.n {
                let centre = Coord {
                    x: cols.centre(col),
                    y: rows.centre(row),
                };
                // A degenerate cell whose centre maps elsewhere stays boundary.
                let state = if boundary[row * cols.n + col]
                    || cols.part(centre.x) != col
                    || rows.part(centre.y) != row
                {
                    BOUNDARY
                } else {
                    match self.position_by_edges(centre) {
                        Position::Inside => INSIDE,
                        Position::Outside => OUTSIDE,
                        Position::OnBoundary => BOUNDARY,
                    }
                };
                self.set_cell_state(col, row, state);
            }
        }
    }
}

/// One edge's share of the crossing rule for the ray from `point` towards
/// +x: `None` if the point lies on the edge (exactly, by geo's robust
/// `orient2d`), otherwise whether the ray crosses the edge. The half-open rule
/// counts an edge once at a shared vertex and never counts a horizontal edge.
/// An edge that does not span `point.y`, or lies wholly left of `point.x`,
/// gives `Some(false)`, so leaving such edges out changes no answer.
#[inline]
pub(crate) fn ray_crosses(a: Coord<f64>, b: Coord<f64>, point: Coord<f64>) -> Option<bool> {
    let (y_lo, y_hi) = if a.y < b.y { (a.y, b.y) } else { (b.y, a.y) };
    if point.y < y_lo || point.y > y_hi {
        return Some(false);
    }
    let crosses_level = (a.y > point.y) != (b.y > point.y);
    let (x_lo, x_hi) = if a.x < b.x { (a.x, b.x) } else { (b.x, a.x) };
    if point.x > x_hi {
        return Some(false);
    }
    if point.x < x_lo {
        return Some(crosses_level);
    }
    match RobustKernel::orient2d(a, b, point) {
        Orientation::Collinear => None,
        Orientation::CounterClockwise => Some(crosses_level && a.y < b.y),
        Orientation::Clockwise => Some(crosses_level && a.y > b.y),
    }
}

/// Columns and rows for about `target` cells of roughly square shape.
fn grid_shape(width: f64, height: f64, target: usize) -> (usize, usize) {
    if width <= 0.0 || height <= 0.0 {
        return (1, 1);
    }
    let target = target as f64;
    let cols = (target * width / height).sqrt().ceil();
    let rows = (target * height / width).sqrt().ceil();
    let side = MAX_CELLS_PER_SIDE as f64;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "clamped to [1, MAX_CELLS_PER_SIDE] first"
    )]
    let shape = (
        cols.clamp(1.0, side) as usize,
        rows.clamp(1.0, side) as usize,
    );
    shape
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Intersects, LineString, Point};
    use rand::{Rng, SeedableRng};

    /// A star-shaped ring of `n` vertices around `(cx, cy)` with radii in
    /// `[r / 2, r]`, on a lattice of `step` so edges share exact coordinates.
    fn star(rng: &mut impl Rng, cx: f64, cy: f64, r: f64, n: usize, step: f64) -> LineString<f64> {
        let mut coords: Vec<Coord<f64>> = (0..n)
            .map(|k| {
                let angle = std::f64::consts::TAU * k as f64 / n as f64;
                let radius = r * rng.gen_range(0.5..1.0);
                Coord {
                    x: ((cx + radius * angle.cos()) / step).round() * step,
                    y: ((cy + radius * angle.sin()) / step).round() * step,
                }
            })
            .collect();
        coords.dedup();
        coords.push(coords[0]);
        LineString(coords)
    }

    fn check_against_geo(polygon: &Polygon<f64>, points: &[Coord<f64>]) {
        let prepared = PreparedPolygon::new(polygon).unwrap();
        for &point in points {
            let expected = polygon.intersects(&Point(point));
            assert_eq!(
                prepared.covers(point.x, point.y),
                expected,
                "{point:?} in {polygon:?}"
            );
        }
    }

    /// Random points over the box, every vertex, and points on every edge.
    fn probe_points(rng: &mut impl Rng, polygon: &Polygon<f64>) -> Vec<Coord<f64>> {
        let prepared = PreparedPolygon::new(polygon).unwrap();
        let (min, max) = (prepared.min, prepared.max);
        let mut points: Vec<Coord<f64>> = (0..2_000)
            .map(|_| Coord {
                x: rng.gen_range(min.x - 1e-3..max.x + 1e-3),
                y: rng.gen_range(min.y - 1e-3..max.y + 1e-3),
            })
            .collect();
        for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
            for line in ring.lines() {
                points.push(line.start);
                points.push(Coord {
                    x: f64::midpoint(line.start.x, line.end.x),
                    y: f64::midpoint(line.start.y, line.end.y),
                });
                // Just off the edge on both sides, and an exact row or column.
                points.push(Coord {
                    x: line.start.x + 1e-12,
                    y: line.start.y,
                });
                points.push(Coord {
                    x: line.start.x,
                    y: line.start.y - 1e-12,
                });
                points.push(Coord {
                    x: rng.gen_range(min.x..=max.x),
                    y: line.start.y,
                });
            }
        }
        points
    }

    #[test]
    fn agrees_with_geo_on_random_stars_with_holes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for case in 0..200 {
            let n = rng.gen_range(3..120);
            let exterior = star(&mut rng, 120.5, 37.6, 0.01, n, 1e-7);
            let holes = if case % 3 == 0 {
                vec![star(&mut rng, 120.5, 37.6, 0.002, 7, 1e-7)]
            } else {
                Vec::new()
            };
            let polygon = Polygon::new(exterior, holes);
            let points = probe_points(&mut rng, &polygon);
            check_against_geo(&polygon, &points);
        }
    }

    #[test]
    fn axis_parallel_edges_and_their_rows_and_columns() {
        // An L shape on integer coordinates: many points sit exactly on the
        // cell lines and slab lines of the structures.
        let polygon = Polygon::new(
            LineString::from(vec![
                (0.0, 0.0),
                (4.0, 0.0),
                (4.0, 1.0),
                (1.0, 1.0),
                (1.0, 4.0),
                (0.0, 4.0),
                (0.0, 0.0),
            ]),
            Vec::new(),
        );
        let points: Vec<Coord<f64>> = (-2..=18)
            .flat_map(|i| {
                (-2..=18).map(move |j| Coord {
                    x: f64::from(i) * 0.25,
                    y: f64::from(j) * 0.25,
                })
            })
            .collect();
        check_against_geo(&polygon, &points);
        let prepared = PreparedPolygon::new(&polygon).unwrap();
        assert_eq!(prepared.position(0.5, 0.5), Position::Inside);
        assert_eq!(prepared.position(1.0, 2.0), Position::OnBoundary);
        assert_eq!(prepared.position(4.0, 0.0), Position::OnBoundary);
        assert_eq!(prepared.position(2.0, 2.0), Position::Outside);
    }

    #[test]
    fn degenerate_polygons_do_not_panic() {
        let flat = Polygon::new(
            LineString::from(vec![(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (0.0, 0.0)]),
            Vec::new(),
        );
        let prepared = PreparedPolygon::new(&flat).unwrap();
        assert!(prepared.covers(1.5, 0.0));
        assert!(!prepared.covers(1.5, 1e-9));
        let empty = Polygon::new(LineString::new(Vec::new()), Vec::new());
        assert!(PreparedPolygon::new(&empty).is_none());
    }
}
