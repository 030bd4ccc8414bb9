//! [`CellIndex`]: the point lookup over many polygons.
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
//! A listed polygon that does not cover the whole cell carries, right after
//! its entry, the few edges (per polygon part) the exact test of a point of
//! this cell can need: those spanning the cell's row that do not lie wholly
//! left of the cell. The crossing rule casts its ray from the point towards
//! +x, and every other edge of the part either misses the point's level or
//! lies left of the point, so it adds nothing to the parity. The test thus
//! reads the cell's entries and a few vertices, all by direct index, and
//! never the polygon's own structures.
//!
//! Compared with descending an R-tree of bounding boxes this is one array read
//! and no pointer chasing, and bounding boxes of neighbouring grids, which
//! overlap a lot, produce no candidates that are far from the point.

use crate::prepared::{ray_crosses, Axis1, Axis2};
use geo::{Coord, MultiPolygon, Rect};

/// Cells per polygon on average (fewer where the polygons are much smaller
/// than the extent would allow, e.g. buildings spread over a city).
const CELLS_PER_POLYGON: usize = 64;
/// Cells across the median polygon, per side.
const CELLS_PER_POLYGON_SIDE: f64 = 8.0;
/// The lowest bit of an entry flags a polygon that covers the whole cell.
const COVERS_CELL: u32 = 1;
/// In place of an edge count: test the item with the caller's exact test
/// (its vertices do not fit the `u32` numbering of `vertices`).
const TEST_BY_CALLER: u32 = u32::MAX;
/// Ends the words of a cell (no item word equals it: items stay below
/// `END_OF_CELL >> 1`).
const END_OF_CELL: u32 = u32::MAX - 1;
/// The lowest bit of a cell head flags a head that is the answer itself.
const HEAD_IS_ITEM: u32 = 1;
/// A cell head for a cell whose words lie beyond `u32` offsets: the caller
/// answers for it (odd, and no item word is `END_OF_CELL`, so no item has it).
const HEAD_ASK_CALLER: u32 = u32::MAX;

#[derive(Debug)]
pub(crate) struct CellIndex {
    cells: Axis2,
    min: Coord<f64>,
    max: Coord<f64>,
    /// Per cell: `item << 1 | HEAD_IS_ITEM` if the cell's first item covers
    /// all of it (the answer, with no further read), else `offset << 1`: the
    /// cell's words start at `words[offset]`.
    heads: Vec<u32>,
    /// Per cell, its entries in item (code) order, then `END_OF_CELL`. An
    /// entry is either one word `item << 1 | COVERS_CELL`, or `item << 1`, an
    /// edge count `n` and `n` edges of one part of the item (an edge is named
    /// by its first vertex in `vertices`, the second follows it), or
    /// `item << 1, TEST_BY_CALLER`.
    words: Vec<u32>,
    /// The rings of every item, each ring closed, one after another.
    vertices: Vec<Coord<f64>>,
}

/// One edge of a part, as kept while building: its first vertex and the
/// rows and last column its extent maps to.
struct BuildEdge {
    first_vertex: u32,
    row_lo: usize,
    row_hi: usize,
    col_hi: usize,
}

impl CellIndex {
    /// Indexes `polygons` (given in item order, with their bounding boxes).
    /// Whether an item covers a whole cell is decided at the cell's centre
    /// with the item's own edges; `covers(item, x, y)`, the caller's exact
    /// test, is asked only for items whose vertices do not fit the `u32`
    /// numbering of `vertices`.
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
        let mut cell_words = CellWords::new(n_cells);
        let mut chunk = Vec::new();
        let mut vertices: Vec<Coord<f64>> = Vec::new();
        let mut window_boundary = Vec::new();
        // Per part of the current item: its edges, or `None` if they cannot
        // be numbered in `u32`.
        let mut part_edges: Vec<Option<Vec<BuildEdge>>> = Vec::new();
        for (item, (polygon, rect)) in polygons.iter().enumerate() {
            let Some(rect) = rect else { continue };
            let Some(entry) = u32::try_from(item << 1)
                .ok()
                .filter(|&entry| entry < END_OF_CELL)
            else {
                continue;
            };
            let (col_lo, col_hi) = (cells.x.part(rect.min().x), cells.x.part(rect.max().x));
            let (row_lo, row_hi) = (cells.y.part(rect.min().y), cells.y.part(rect.max().y));
            let width = col_hi - col_lo + 1;
            window_boundary.clear();
            window_boundary.resize(width * (row_hi - row_lo + 1), false);
            part_edges.clear();
            for part in &polygon.0 {
                let mut edges = Some(Vec::new());
                for ring in std::iter::once(part.exterior()).chain(part.interiors()) {
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
                    for first_vertex in offset..vertices.len() - 1 {
                        let (a, b) = (vertices[first_vertex], vertices[first_vertex + 1]);
                        cells.mark_segment(a, b, |col, row| {
                            // Inside the bounding box by monotonicity of `part`.
                            window_boundary[(row - row_lo) * width + (col - col_lo)] = true;
                        });
                        let Some(list) = edges.as_mut() else { continue };
                        let Ok(first_vertex) = u32::try_from(first_vertex) else {
                            edges = None;
                            continue;
                        };
                        list.push(BuildEdge {
                            first_vertex,
                            row_lo: cells.y.part(a.y.min(b.y)),
                            row_hi: cells.y.part(a.y.max(b.y)),
                            col_hi: cells.x.part(a.x.max(b.x)),
                        });
                    }
                }
                part_edges.push(edges);
            }
            for row in row_lo..=row_hi {
                for col in col_lo..=col_hi {
                    let centre = (cells.x.centre(col), cells.y.centre(row));
                    let boundary = window_boundary[(row - row_lo) * width + (col - col_lo)]
                        || cells.x.part(centre.0) != col
                        || cells.y.part(centre.1) != row;
                    let cell = row * cells.x.n + col;
                    if cell_words.is_answered(cell) {
                        // An item before this one covers the whole cell.
                        continue;
                    }
                    chunk.clear();
                    if boundary {
                        for edges in &part_edges {
                            push_tested_part(&mut chunk, entry, edges.as_deref(), row, col);
                        }
                    } else if parts_cover(&part_edges, &vertices, centre, row, col)
                        .unwrap_or_else(|| covers(item, centre.0, centre.1))
                    {
                        chunk.push(entry | COVERS_CELL);
                    }
                    cell_words.add(cell, &chunk);
                }
            }
        }
        let (heads, words) = cell_words.finish();
        vertices.shrink_to_fit();
        Self {
            cells,
            min,
            max,
            heads,
            words,
            vertices,
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
            heads: vec![0],
            words: vec![END_OF_CELL],
            vertices: Vec::new(),
        }
    }

    /// The first item, in item order, whose closed area covers `(x, y)`;
    /// `covers(item, x, y)` is the exact test for items whose edges are not
    /// kept here, and `locate(x, y)` answers for cells whose words are not
    /// (both only past `u32` numbering, billions of vertices or words).
    #[inline]
    pub(crate) fn locate(
        &self,
        x: f64,
        y: f64,
        covers: impl Fn(usize, f64, f64) -> bool,
        locate: impl Fn(f64, f64) -> Option<usize>,
    ) -> Option<usize> {
        if !(x >= self.min.x && x <= self.max.x && y >= self.min.y && y <= self.max.y) {
            return None;
        }
        let head = self.heads[self.cells.y.part(y) * self.cells.x.n + self.cells.x.part(x)];
        if head & HEAD_IS_ITEM != 0 {
            if head == HEAD_ASK_CALLER {
                return locate(x, y);
            }
            return Some((head >> 1) as usize);
        }
        let words = &self.words[(head >> 1) as usize..];
        let point = Coord { x, y };
        let mut at = 0;
        loop {
            let word = words[at];
            if word == END_OF_CELL {
                return None;
            }
            let item = (word >> 1) as usize;
            if word & COVERS_CELL != 0 {
                return Some(item);
            }
            let count = words[at + 1];
            if count == TEST_BY_CALLER {
                if covers(item, x, y) {
                    return Some(item);
                }
                at += 2;
                continue;
            }
            let edges = &words[at + 2..at + 2 + count as usize];
            if self.covers_by_edges(edges, point) {
                return Some(item);
            }
            at += 2 + count as usize;
        }
    }

    /// The crossing rule over `edges` of one part: parity, or on an edge.
    #[inline]
    fn covers_by_edges(&self, edges: &[u32], point: Coord<f64>) -> bool {
        let mut inside = false;
        for &first_vertex in edges {
            let first_vertex = first_vertex as usize;
            match ray_crosses(
                self.vertices[first_vertex],
                self.vertices[first_vertex + 1],
                point,
            ) {
                None => return true,
                Some(crosses) => inside ^= crosses,
            }
        }
        inside
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        (self.heads.len() + self.words.len()) * 4 + std::mem::size_of_val(&*self.vertices)
    }
}

/// The words of all cells while building: one flat list of chunks in the
/// order they are added (item order), laid out cell by cell at the end. A
/// list per cell would cost a few times more memory at province scale.
struct CellWords {
    /// `item << 1 | HEAD_IS_ITEM` once a cell's first item covers all of it.
    heads: Vec<u32>,
    /// Words listed per cell so far.
    counts: Vec<u32>,
    /// Chunks: the cell (low and high 32 bits), the length, the words.
    chunks: Vec<u32>,
}

impl CellWords {
    fn new(n_cells: usize) -> Self {
        Self {
            heads: vec![0; n_cells],
            counts: vec![0; n_cells],
            chunks: Vec::new(),
        }
    }

    /// Whether the cell's first item covers all of it, so later items need
    /// no words there.
    fn is_answered(&self, cell: usize) -> bool {
        self.heads[cell] & HEAD_IS_ITEM != 0
    }

    /// Appends `words` (whole entries of one item) to the words of `cell`.
    fn add(&mut self, cell: usize, words: &[u32]) {
        let Some(&first) = words.first() else { return };
        if self.is_answered(cell) {
            return;
        }
        if self.counts[cell] == 0 && first & COVERS_CELL != 0 {
            self.heads[cell] = first | HEAD_IS_ITEM;
            return;
        }
        let len = u32::try_from(words.len()).unwrap_or(u32::MAX);
        self.counts[cell] = self.counts[cell].saturating_add(len);
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the cell split into its low and high 32 bits"
        )]
        self.chunks
            .extend([cell as u32, (cell as u64 >> 32) as u32, len]);
        self.chunks.extend_from_slice(words);
    }

    /// The cell heads and words of [`CellIndex`].
    fn finish(self) -> (Vec<u32>, Vec<u32>) {
        let Self {
            mut heads,
            counts: mut cursors,
            chunks,
        } = self;
        // Word 0 ends every empty cell.
        let mut words = vec![END_OF_CELL];
        for (head, cursor) in heads.iter_mut().zip(&mut cursors) {
            if *head & HEAD_IS_ITEM != 0 {
                continue;
            }
            let count = *cursor;
            if count == 0 {
                continue;
            }
            let offset = words.len();
            let fits = u32::try_from((offset + count as usize + 1) << 1)
                .is_ok_and(|end| end < HEAD_ASK_CALLER)
                && count < u32::MAX;
            if fits {
                *head = u32::try_from(offset << 1).unwrap_or(HEAD_ASK_CALLER);
                *cursor = u32::try_from(offset).unwrap_or(u32::MAX);
                words.resize(offset + count as usize + 1, END_OF_CELL);
            } else {
                *head = HEAD_ASK_CALLER;
                *cursor = u32::MAX;
            }
        }
        let mut at = 0;
        while at < chunks.len() {
            let cell = usize::try_from(u64::from(chunks[at]) | (u64::from(chunks[at + 1]) << 32))
                .unwrap_or(usize::MAX);
            let len = chunks[at + 2] as usize;
            let chunk = &chunks[at + 3..at + 3 + len];
            at += 3 + len;
            let cursor = &mut cursors[cell];
            if *cursor == u32::MAX {
                continue;
            }
            let from = *cursor as usize;
            words[from..from + len].copy_from_slice(chunk);
            *cursor += u32::try_from(len).unwrap_or(0);
        }
        (heads, words)
    }
}

/// Appends the entry of one part of item `entry >> 1` to the words of cell
/// (`row`, `col`): the edges that span the row and reach the cell's column or
/// beyond. A part with no such edge cannot cover any point of the cell (a
/// point inside it or on its boundary has an edge at its level to its right)
/// and is left out.
fn push_tested_part(
    cell: &mut Vec<u32>,
    entry: u32,
    edges: Option<&[BuildEdge]>,
    row: usize,
    col: usize,
) {
    let Some(edges) = edges else {
        cell.extend([entry, TEST_BY_CALLER]);
        return;
    };
    let count_at = cell.len();
    cell.extend([entry, 0]);
    for edge in edges {
        // By monotonicity of `part`: an edge whose y extent holds the point's
        // y spans the point's row, and one whose x extent reaches the point's
        // x ends in the point's column or beyond.
        if edge.row_lo <= row && row <= edge.row_hi && edge.col_hi >= col {
            cell.push(edge.first_vertex);
        }
    }
    let count = cell.len() - count_at - 2;
    if count == 0 {
        cell.truncate(count_at);
    } else {
        // Fewer than `TEST_BY_CALLER` edges: a part's edges are numbered in `u32`.
        cell[count_at + 1] = u32::try_from(count).unwrap_or(TEST_BY_CALLER - 1);
    }
}

/// Whether the item whose parts have `part_edges` covers `point`, a point
/// of cell (`row`, `col`) that no edge of the item comes near: the crossing
/// rule over the edges [`push_tested_part`] keeps for the cell, part by part.
/// `None` when some part's edges are not numbered.
fn parts_cover(
    part_edges: &[Option<Vec<BuildEdge>>],
    vertices: &[Coord<f64>],
    point: (f64, f64),
    row: usize,
    col: usize,
) -> Option<bool> {
    let point = Coord {
        x: point.0,
        y: point.1,
    };
    let mut covered = false;
    for edges in part_edges {
        let edges = edges.as_deref()?;
        if covered {
            continue;
        }
        let mut inside = false;
        for edge in edges
            .iter()
            .filter(|edge| edge.row_lo <= row && row <= edge.row_hi && edge.col_hi >= col)
        {
            let first_vertex = edge.first_vertex as usize;
            match ray_crosses(vertices[first_vertex], vertices[first_vertex + 1], point) {
                None => {
                    inside = true;
                    break;
                }
                Some(crosses) => inside ^= crosses,
            }
        }
        covered = inside;
    }
    Some(covered)
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
