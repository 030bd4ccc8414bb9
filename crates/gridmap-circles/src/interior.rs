//! The deep interior of a strip: square cells that lie wholly inside one
//! piece's buffer, and the pieces whose whole buffer lies in such cells.
//!
//! In a dense network most pieces sit deep inside the strip, where their
//! buffers overlap many others and contribute nothing to the outline, yet
//! the overlay still has to split every crossing of their edges. Such a
//! piece can be left out if something else covers its buffer: the cells
//! here do, drawn as plain rectangles. Every cell is inside the true buffer
//! of some piece by a margin, so adding the cells never grows the strip
//! beyond the buffer rule, and a piece is left out only when every cell its
//! buffer touches is such a cell, so nothing is lost.

use geo::{Coord, Line, MultiPolygon, Rect};

/// Cell side as a fraction of the half-width: 10 m cells for a 50 m strip.
const CELL_PER_HALF_WIDTH: f64 = 0.2;

/// How far inside a piece's true buffer a cell must lie: more than the
/// strip's own drawing error (0.25 m arc chords, 0.1 m straightening), so
/// the cells never reach past the drawn outline and fill whole holes of it
/// only (see `strip::fill_deep_holes`).
const MARGIN_M: f64 = 0.5;

/// How near a deep cell a point counts as in it ([`Interior::contains`]):
/// far above rounding in the overlay's output, far below the 0.15 m by
/// which the deep cells miss any hole of the strip they do not fill.
const BORDER_M: f64 = 1e-4;

/// A cell grid over the pieces, marking the deep cells.
pub(crate) struct Interior {
    west: f64,
    south: f64,
    cell_m: f64,
    columns: usize,
    rows: usize,
    /// Inside one piece's buffer by [`MARGIN_M`], whole cell.
    deep: Vec<bool>,
    /// The half-width of the buffers.
    half_width_m: f64,
}

impl Interior {
    /// The grid for the `half_width_m` buffers of `pieces`, or `None` when
    /// the strip is too small to have an interior worth the trouble.
    pub(crate) fn new(pieces: &[Line], half_width_m: f64) -> Option<Self> {
        let cell_m = half_width_m * CELL_PER_HALF_WIDTH;
        let half_diagonal = cell_m * std::f64::consts::FRAC_1_SQRT_2;
        let deep_reach = half_width_m - half_diagonal - MARGIN_M;
        if pieces.len() < 8 || deep_reach <= 0.0 {
            return None;
        }
        let (mut west, mut south, mut east, mut north) = (
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        );
        for piece in pieces {
            for end in [piece.start, piece.end] {
                west = west.min(end.x);
                south = south.min(end.y);
                east = east.max(end.x);
                north = north.max(end.y);
            }
        }
        west -= half_width_m;
        south -= half_width_m;
        let columns = cells(east + half_width_m - west, cell_m)?;
        let rows = cells(north + half_width_m - south, cell_m)?;
        let mut interior = Self {
            west,
            south,
            cell_m,
            columns,
            rows,
            deep: vec![false; columns * rows],
            half_width_m,
        };
        for piece in pieces {
            interior.mark_deep(piece, deep_reach);
        }
        Some(interior)
    }

    /// Whether the whole buffer of `piece` lies in deep cells: every cell
    /// whose square the buffer touches, which is every cell whose centre
    /// lies within the half-width plus a half diagonal of the piece, is deep.
    /// The cells under the piece's two ends are looked at first, as most
    /// pieces that fail, fail there.
    pub(crate) fn covers(&self, piece: &Line) -> bool {
        let under_ends = [piece.start, piece.end]
            .iter()
            .all(|&end| self.cell_of(end).is_some_and(|cell| self.deep[cell]));
        if !under_ends {
            return false;
        }
        let half_diagonal = self.cell_m * std::f64::consts::FRAC_1_SQRT_2;
        let reach = self.half_width_m + half_diagonal;
        let (low_column, high_column) = self.span(piece.start.x, piece.end.x, self.west, reach);
        let (low_row, high_row) = self.span(piece.start.y, piece.end.y, self.south, reach);
        let below_grid = piece.start.x.min(piece.end.x) - reach < self.west
            || piece.start.y.min(piece.end.y) - reach < self.south;
        if below_grid || high_column > self.columns || high_row > self.rows {
            // The buffer reaches the grid's edge, where no cell is deep.
            return false;
        }
        (low_row..high_row).all(|row| {
            (low_column..high_column).all(|column| {
                self.deep[row * self.columns + column]
                    || distance_squared(self.centre(column, row), piece) > reach * reach
            })
        })
    }

    /// Whether `point` lies in a deep cell, or within [`BORDER_M`] of one.
    pub(crate) fn contains(&self, point: Coord) -> bool {
        [-BORDER_M, BORDER_M].iter().any(|&dx| {
            [-BORDER_M, BORDER_M].iter().any(|&dy| {
                let near = Coord {
                    x: point.x + dx,
                    y: point.y + dy,
                };
                self.cell_of(near).is_some_and(|cell| self.deep[cell])
            })
        })
    }

    /// The deep cells as rectangles, one per run of deep cells in a row.
    pub(crate) fn polygon(&self) -> MultiPolygon {
        let mut rectangles = Vec::new();
        for row in 0..self.rows {
            let mut column = 0;
            while column < self.columns {
                if !self.deep[row * self.columns + column] {
                    column += 1;
                    continue;
                }
                let first = column;
                while column < self.columns && self.deep[row * self.columns + column] {
                    column += 1;
                }
                let min = Coord {
                    x: self.west + first as f64 * self.cell_m,
                    y: self.south + row as f64 * self.cell_m,
                };
                let max = Coord {
                    x: self.west + column as f64 * self.cell_m,
                    y: min.y + self.cell_m,
                };
                rectangles.push(Rect::new(min, max).to_polygon());
            }
        }
        MultiPolygon::new(rectangles)
    }

    fn centre(&self, column: usize, row: usize) -> Coord {
        Coord {
            x: self.west + (column as f64 + 0.5) * self.cell_m,
            y: self.south + (row as f64 + 0.5) * self.cell_m,
        }
    }

    fn cell_of(&self, point: Coord) -> Option<usize> {
        let column = index((point.x - self.west) / self.cell_m, self.columns)?;
        let row = index((point.y - self.south) / self.cell_m, self.rows)?;
        Some(row * self.columns + column)
    }

    /// Marks the cells whose centre lies within `reach` of `piece`, so that
    /// the whole cell lies within `reach` + half a diagonal.
    fn mark_deep(&mut self, piece: &Line, reach: f64) {
        let (low_column, high_column) = self.span(piece.start.x, piece.end.x, self.west, reach);
        let (low_row, high_row) = self.span(piece.start.y, piece.end.y, self.south, reach);
        for row in low_row..high_row.min(self.rows) {
            for column in low_column..high_column.min(self.columns) {
                let cell = row * self.columns + column;
                if !self.deep[cell]
                    && distance_squared(self.centre(column, row), piece) <= reach * reach
                {
                    self.deep[cell] = true;
                }
            }
        }
    }

    /// The cell range, clamped at 0, of a coordinate range widened by `by`.
    fn span(&self, a: f64, b: f64, origin: f64, by: f64) -> (usize, usize) {
        let low = ((a.min(b) - by - origin) / self.cell_m).floor().max(0.0);
        let high = ((a.max(b) + by - origin) / self.cell_m).ceil().max(0.0) + 1.0;
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "non-negative cell indices of a grid that fits in memory"
        )]
        let span = (low as usize, high as usize);
        span
    }
}

/// The number of cells across `extent`, if the grid stays small.
fn cells(extent: f64, cell_m: f64) -> Option<usize> {
    let count = (extent / cell_m).ceil() + 1.0;
    // 4,000 cells a side (40 km at 10 m) is far beyond any walking circle.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked to be a positive count below 4,000"
    )]
    let count = (1.0..=4000.0).contains(&count).then_some(count as usize);
    count
}

fn index(cells: f64, count: usize) -> Option<usize> {
    // NaN fails this test too.
    if cells.is_nan() || cells < 0.0 {
        return None;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "non-negative, and compared with the grid size next"
    )]
    let index = cells.floor() as usize;
    (index < count).then_some(index)
}

fn distance_squared(point: Coord, piece: &Line) -> f64 {
    let along = piece.end - piece.start;
    let length_squared = along.x * along.x + along.y * along.y;
    let t = if length_squared > 0.0 {
        (((point - piece.start).x * along.x + (point - piece.start).y * along.y) / length_squared)
            .clamp(0.0, 1.0)
    } else {
        0.0
    };
    let nearest = piece.start + along * t;
    let apart = point - nearest;
    apart.x * apart.x + apart.y * apart.y
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Streets 30 m apart both ways over 600 m, in 30 m pieces.
    fn dense_grid() -> Vec<Line> {
        let mut pieces = Vec::new();
        for street in 0..=20 {
            for step in 0..20 {
                let (a, b, c) = (
                    f64::from(street) * 30.0,
                    f64::from(step) * 30.0,
                    f64::from(step + 1) * 30.0,
                );
                pieces.push(Line::new(Coord { x: b, y: a }, Coord { x: c, y: a }));
                pieces.push(Line::new(Coord { x: a, y: b }, Coord { x: a, y: c }));
            }
        }
        pieces
    }

    #[test]
    fn inner_pieces_are_covered_and_outer_ones_kept() {
        let pieces = dense_grid();
        let interior = Interior::new(&pieces, 50.0).unwrap();
        let centre = Line::new(Coord { x: 300.0, y: 300.0 }, Coord { x: 330.0, y: 300.0 });
        assert!(interior.covers(&centre));
        let edge = Line::new(Coord { x: 0.0, y: 300.0 }, Coord { x: 0.0, y: 330.0 });
        assert!(!interior.covers(&edge));
        // Soundness, by brute force: a piece counts as covered only if every
        // cell its buffer can touch (centre within 50 m plus a half
        // diagonal) is deep.
        let half_diagonal = interior.cell_m * std::f64::consts::FRAC_1_SQRT_2;
        for piece in pieces.iter().filter(|piece| interior.covers(piece)) {
            for row in 0..interior.rows {
                for column in 0..interior.columns {
                    let centre = interior.centre(column, row);
                    if distance_squared(centre, piece).sqrt() <= 50.0 + half_diagonal {
                        assert!(interior.deep[row * interior.columns + column], "{piece:?}");
                    }
                }
            }
        }
        let covered = pieces.iter().filter(|piece| interior.covers(piece)).count();
        assert!(covered > pieces.len() / 4, "{covered} of {}", pieces.len());
    }

    #[test]
    fn every_deep_cell_lies_inside_a_buffer_by_the_margin() {
        let pieces = dense_grid();
        let interior = Interior::new(&pieces, 50.0).unwrap();
        let polygon = interior.polygon();
        assert!(!polygon.0.is_empty());
        for rectangle in &polygon {
            // Each rectangle is a run of cells; every point of it is within
            // 50 m − margin of some piece if each cell's corners are.
            for corner in rectangle.exterior().coords() {
                let nearest = pieces
                    .iter()
                    .map(|piece| distance_squared(*corner, piece).sqrt())
                    .fold(f64::INFINITY, f64::min);
                assert!(nearest <= 50.0 - MARGIN_M, "{corner:?} is {nearest} m away");
            }
        }
    }
}
