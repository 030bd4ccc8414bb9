//! A province-scale tessellation built in memory for `lookup --synthetic-grids N`:
//! N grids over an extent the size of Shandong, each a jittered lattice cell
//! whose four sides are wiggly polylines shared bit for bit with its
//! neighbours, 32–100 vertices per grid as in real grid data. Vertices sit on
//! the 1e-7° lattice of the demo city.

use geo::{Coord, LineString, Polygon};

/// Roughly Shandong: 7° by 3.5° (about 600 km by 390 km).
const WEST: f64 = 115.0;
const SOUTH: f64 = 34.5;
const WIDTH_DEG: f64 = 7.0;
const HEIGHT_DEG: f64 = 3.5;
/// Corner jitter and side wiggle, in cell sizes; small enough to keep every
/// cell a simple polygon.
const CORNER_JITTER: f64 = 0.15;
const SIDE_WIGGLE: f64 = 0.1;

/// One grid: its code (codes sort in generation order) and polygon.
pub struct SyntheticGrid {
    pub code: String,
    pub polygon: Polygon<f64>,
}

/// The tessellation of about `n_grids` grids and its extent
/// `[west, south, east, north]`.
pub fn tessellation(n_grids: usize, seed: u64) -> (Vec<SyntheticGrid>, [f64; 4]) {
    let lattice = Lattice::new(n_grids, seed);
    let mut grids = Vec::with_capacity(lattice.cols * lattice.rows);
    for row in 0..lattice.rows {
        for col in 0..lattice.cols {
            let mut ring = lattice.side(Side::Horizontal, col, row);
            ring.extend(
                lattice
                    .side(Side::Vertical, col + 1, row)
                    .into_iter()
                    .skip(1),
            );
            let mut top = lattice.side(Side::Horizontal, col, row + 1);
            top.reverse();
            ring.extend(top.into_iter().skip(1));
            let mut left = lattice.side(Side::Vertical, col, row);
            left.reverse();
            ring.extend(left.into_iter().skip(1));
            grids.push(SyntheticGrid {
                code: format!("37{:013}", grids.len()),
                polygon: Polygon::new(LineString(ring), Vec::new()),
            });
        }
    }
    let extent = [
        WEST - lattice.cell_w,
        SOUTH - lattice.cell_h,
        WEST + WIDTH_DEG + lattice.cell_w,
        SOUTH + HEIGHT_DEG + lattice.cell_h,
    ];
    (grids, extent)
}

/// The polygon as OGC WKB (little endian), for loading into PostGIS.
pub fn wkb(polygon: &Polygon<f64>) -> Vec<u8> {
    let rings: Vec<&LineString<f64>> = std::iter::once(polygon.exterior())
        .chain(polygon.interiors())
        .collect();
    let mut out = Vec::with_capacity(9 + rings.iter().map(|r| 4 + 16 * r.0.len()).sum::<usize>());
    out.push(1);
    out.extend_from_slice(&3_u32.to_le_bytes());
    out.extend_from_slice(&u32::try_from(rings.len()).unwrap_or(u32::MAX).to_le_bytes());
    for ring in rings {
        out.extend_from_slice(
            &u32::try_from(ring.0.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        for coord in &ring.0 {
            out.extend_from_slice(&coord.x.to_le_bytes());
            out.extend_from_slice(&coord.y.to_le_bytes());
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Side {
    /// From corner (col, row) to (col + 1, row).
    Horizontal,
    /// From corner (col, row) to (col, row + 1).
    Vertical,
}

struct Lattice {
    cols: usize,
    rows: usize,
    cell_w: f64,
    cell_h: f64,
    seed: u64,
}

impl Lattice {
    fn new(n_grids: usize, seed: u64) -> Self {
        let n = n_grids.max(1) as f64;
        let aspect = WIDTH_DEG / HEIGHT_DEG;
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a positive count of cells"
        )]
        let cols = (n * aspect).sqrt().round().max(1.0) as usize;
        let rows = n_grids.div_ceil(cols).max(1);
        Self {
            cols,
            rows,
            cell_w: WIDTH_DEG / cols as f64,
            cell_h: HEIGHT_DEG / rows as f64,
            seed,
        }
    }

    fn corner(&self, col: usize, row: usize) -> Coord<f64> {
        let (jx, jy) = (self.unit(0, col, row, 0), self.unit(1, col, row, 0));
        // Corners on the outer edge stay put so the cover is a rectangle.
        let inner_x = col > 0 && col < self.cols;
        let inner_y = row > 0 && row < self.rows;
        Coord {
            x: WEST + (col as f64 + if inner_x { CORNER_JITTER * jx } else { 0.0 }) * self.cell_w,
            y: SOUTH + (row as f64 + if inner_y { CORNER_JITTER * jy } else { 0.0 }) * self.cell_h,
        }
    }

    /// The vertices of one side, corner to corner, on the 1e-7° lattice.
    fn side(&self, side: Side, col: usize, row: usize) -> Vec<Coord<f64>> {
        let (kind, end) = match side {
            Side::Horizontal => (2, self.corner(col + 1, row)),
            Side::Vertical => (3, self.corner(col, row + 1)),
        };
        let start = self.corner(col, row);
        // 7–24 inner vertices per side: 32–100 per grid with the corners.
        let inner = 7 + (self.hash(kind, col, row, 0) % 18) as usize;
        let boundary_side = match side {
            Side::Horizontal => row == 0 || row == self.rows,
            Side::Vertical => col == 0 || col == self.cols,
        };
        let (dx, dy) = (end.x - start.x, end.y - start.y);
        let mut coords = Vec::with_capacity(inner + 2);
        coords.push(snap(start));
        for k in 1..=inner {
            let t = k as f64 / (inner + 1) as f64;
            let wiggle = if boundary_side {
                0.0
            } else {
                SIDE_WIGGLE * (std::f64::consts::PI * t).sin() * self.unit(kind, col, row, k as u64)
            };
            // Perpendicular to the side, scaled to the cell.
            let (nx, ny) = match side {
                Side::Horizontal => (0.0, wiggle * self.cell_h),
                Side::Vertical => (wiggle * self.cell_w, 0.0),
            };
            coords.push(snap(Coord {
                x: start.x + dx * t + nx,
                y: start.y + dy * t + ny,
            }));
        }
        coords.push(snap(end));
        coords.dedup();
        coords
    }

    /// A deterministic value in [-1, 1].
    fn unit(&self, kind: u64, col: usize, row: usize, k: u64) -> f64 {
        (self.hash(kind, col, row, k) >> 11) as f64 / (1_u64 << 53) as f64 * 2.0 - 1.0
    }

    fn hash(&self, kind: u64, col: usize, row: usize, k: u64) -> u64 {
        let mut h = self.seed ^ kind.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for value in [col as u64, row as u64, k] {
            h = splitmix64(h ^ value);
        }
        h
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn snap(coord: Coord<f64>) -> Coord<f64> {
    Coord {
        x: (coord.x * 1e7).round() / 1e7,
        y: (coord.y * 1e7).round() / 1e7,
    }
}
