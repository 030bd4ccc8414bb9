//! The frontage strip of a walked network: the union of round-capped
//! buffers of its straight pieces.
//!
//! Buffering each piece with two round caps and merging the lot makes the
//! overlay resolve a pile of overlapping half-discs at every node: a node of
//! degree k carries k caps, and every road vertex is a node. A polyline
//! buffered with round joins and round caps is the same set as the union of
//! its segments' buffers (each interior vertex's disc is covered by the two
//! segment rectangles and the join's arc), so the pieces are first chained
//! into as few trails as the network allows, each piece used once, and the
//! trails are stroked in one overlay, with round caps only at the trail ends
//! no other trail runs through (the `stroke` module). Vertices that lie
//! within [`SIMPLIFY_M`] of a straight line through their neighbours (the
//! many collinear vertices of digitised roads) are dropped first
//! (Ramer–Douglas–Peucker), which moves the strip's outline by at most that.
//! Pieces deep inside the strip are left out of the stroke and replaced by
//! the cells that cover them (see the `interior` module); the cells only
//! ever fill whole holes of the stroke, so they are added by dropping those
//! holes, with no second overlay.

use crate::interior::Interior;
use crate::stroke::{stroke_trails, vertex_key};
use geo::coordinate_position::{CoordPos, CoordinatePosition};
use geo::{
    BooleanOps, BoundingRect, Coord, Intersects, Line, LineString, MultiLineString, MultiPolygon,
    Polygon, Rect, Simplify,
};
use std::collections::{HashMap, HashSet};

/// Length of the stand-in segment for a piece of zero length that touches no
/// other piece: the overlay strokes segments, not points, so a lone point is
/// drawn as a segment this long (its buffer is a disc stretched by 1 mm).
const POINT_AS_SEGMENT_M: f64 = 1e-3;

/// How far a trail may be straightened before it is stroked: 0.1 m, below
/// the 0.25 m by which arc chords ([`crate::stroke`]) already fall inside
/// the circle.
pub const SIMPLIFY_M: f64 = 0.1;

/// The union of `half_width_m` buffers, round caps and joins, of `pieces`
/// (straight pieces in a metre projection). Empty for no pieces or a
/// non-positive width.
#[must_use]
pub fn network_strip(pieces: &[Line], half_width_m: f64) -> MultiPolygon {
    if pieces.is_empty() || half_width_m <= 0.0 {
        return MultiPolygon::new(Vec::new());
    }
    let interior = Interior::new(pieces, half_width_m);
    let kept: Vec<Line> = match &interior {
        Some(interior) => pieces
            .iter()
            .filter(|piece| !interior.covers(piece))
            .copied()
            .collect(),
        None => pieces.to_vec(),
    };
    let walked = trails(&kept);
    // Taken before straightening: a vertex the straightening drops stays
    // within SIMPLIFY_M of its trail, and so within that of its disc.
    let through: HashSet<(u64, u64)> = walked
        .iter()
        .flat_map(|trail| {
            let inner = trail.0.len().saturating_sub(1);
            trail
                .0
                .iter()
                .take(inner)
                .skip(1)
                .map(|&coord| vertex_key(coord))
        })
        .collect();
    let straightened: MultiLineString = walked
        .into_iter()
        .map(|trail| trail.simplify(SIMPLIFY_M))
        .collect();
    let strip = stroke_trails(&straightened, &through, half_width_m);
    match interior {
        Some(interior) if kept.len() < pieces.len() => fill_deep_holes(strip, &interior),
        _ => strip,
    }
}

/// The strip of the kept pieces with the deep cells added, mostly without
/// a second overlay.
///
/// Every deep cell lies within `half_width_m` − 0.5 m of some piece, the
/// drawn strip of the kept pieces holds every point within `half_width_m` −
/// 0.35 m of them (0.25 m chords, 0.1 m straightening), and a left-out
/// piece's whole buffer lies in deep cells. So every point within 0.15 m of a
/// deep cell is in the drawn strip or in a deep cell: the deep cells never
/// reach past an outer ring, and each hole of the strip (a connected part of
/// its outside) lies wholly in deep cells or at least 0.15 m from all of
/// them. Adding the cells is therefore filling the holes whose ring lies on
/// deep cells. A ring with corners both on and off deep cells breaks that
/// rule (the overlay can join two holes by a slit of rounding width), and
/// then the cells are added by an overlay after all.
fn fill_deep_holes(strip: MultiPolygon, interior: &Interior) -> MultiPolygon {
    let mut mixed = false;
    let fills: Vec<Vec<bool>> = strip
        .iter()
        .map(|part| {
            part.interiors()
                .iter()
                .map(|hole| {
                    let on_deep = hole
                        .0
                        .iter()
                        .filter(|&&corner| interior.contains(corner))
                        .count();
                    mixed |= on_deep != 0 && on_deep != hole.0.len();
                    on_deep == hole.0.len()
                })
                .collect()
        })
        .collect();
    if mixed {
        return strip.union(&interior.polygon());
    }
    let mut parts: Vec<StripPart> = strip
        .into_iter()
        .zip(fills)
        .map(|(part, fills)| {
            let (exterior, holes) = part.into_inner();
            let mut open = Vec::new();
            let mut filled = Vec::new();
            for (hole, fill) in holes.into_iter().zip(fills) {
                if fill {
                    filled.push(hole);
                } else {
                    open.push(hole);
                }
            }
            StripPart {
                exterior,
                open,
                filled,
            }
        })
        .collect();
    if parts.len() > 1 && parts.iter().any(|part| !part.filled.is_empty()) {
        merge_islands(&mut parts);
    }
    parts
        .into_iter()
        .map(|part| Polygon::new(part.exterior, part.open))
        .collect()
}

/// One polygon of the strip, its holes split into those the deep cells
/// fill and those they leave open.
struct StripPart {
    exterior: LineString,
    open: Vec<LineString>,
    filled: Vec<LineString>,
}

/// Moves the open holes of every part lying in another part's filled hole
/// to the outermost such part, and drops the inner part (its area is now
/// covered).
fn merge_islands(parts: &mut Vec<StripPart>) {
    let filled_holes: Vec<(usize, Polygon)> = parts
        .iter()
        .enumerate()
        .flat_map(|(index, part)| {
            part.filled
                .iter()
                .map(move |hole| (index, Polygon::new(hole.clone(), Vec::new())))
        })
        .collect();
    let boxes: Vec<Option<Rect>> = filled_holes
        .iter()
        .map(|(_, hole)| hole.bounding_rect())
        .collect();
    // The part whose filled hole holds each part, if any. Parts of a valid
    // multipolygon do not cross, so one corner off the hole's ring decides.
    let owner: Vec<Option<usize>> = parts
        .iter()
        .enumerate()
        .map(|(index, part)| {
            filled_holes
                .iter()
                .zip(&boxes)
                .filter(|((holder, _), bounds)| {
                    *holder != index
                        && bounds.is_some_and(|bounds| bounds.intersects(&part.exterior.0[0]))
                })
                .find(|((_, hole), _)| inside(hole, &part.exterior))
                .map(|((holder, _), _)| *holder)
        })
        .collect();
    let outermost = |mut index: usize| {
        // Nesting is finite and acyclic: each step goes one ring outwards.
        for _ in 0..owner.len() {
            match owner[index] {
                Some(holder) => index = holder,
                None => break,
            }
        }
        index
    };
    let mut moved: Vec<(usize, Vec<LineString>)> = Vec::new();
    for (index, part) in parts.iter_mut().enumerate() {
        if owner[index].is_some() {
            moved.push((outermost(index), std::mem::take(&mut part.open)));
        }
    }
    for (holder, holes) in moved {
        parts[holder].open.extend(holes);
    }
    let mut index = 0;
    parts.retain(|_| {
        index += 1;
        owner[index - 1].is_none()
    });
}

/// Whether `ring` lies inside `hole`, decided by its first corner not on
/// the hole's ring.
fn inside(hole: &Polygon, ring: &LineString) -> bool {
    ring.0
        .iter()
        .map(|&corner| hole.coordinate_position(&corner))
        .find(|&position| position != CoordPos::OnBoundary)
        == Some(CoordPos::Inside)
}

/// `pieces` chained into trails: every piece of non-zero length appears in
/// exactly one trail, once; a piece and its reverse, or a repeated piece,
/// count as one. A zero-length piece is dropped where another piece touches
/// its point (that piece's buffer holds the point's disc) and otherwise kept
/// as a [`POINT_AS_SEGMENT_M`] segment.
///
/// Walks start at vertices of odd degree first, so each connected part of
/// the network needs at most max(1, odd vertices / 2) trails (the classic
/// bound of an Euler-trail decomposition).
#[must_use]
pub fn trails(pieces: &[Line]) -> MultiLineString {
    let mut vertex_ids: HashMap<(u64, u64), usize> = HashMap::new();
    let mut vertices: Vec<Coord> = Vec::new();
    let mut vertex = |coord: Coord| -> usize {
        // Ends of pieces that meet come from the same projected node, so
        // equal bits are the right test.
        let key = vertex_key(coord);
        *vertex_ids.entry(key).or_insert_with(|| {
            vertices.push(coord);
            vertices.len() - 1
        })
    };
    let mut edges: Vec<(usize, usize)> = Vec::with_capacity(pieces.len());
    let mut points: Vec<usize> = Vec::new();
    for piece in pieces {
        let (a, b) = (vertex(piece.start), vertex(piece.end));
        if a == b {
            points.push(a);
        } else {
            edges.push((a.min(b), a.max(b)));
        }
    }
    edges.sort_unstable();
    edges.dedup();

    let mut incident: Vec<Vec<usize>> = vec![Vec::new(); vertices.len()];
    for (index, &(a, b)) in edges.iter().enumerate() {
        incident[a].push(index);
        incident[b].push(index);
    }
    let mut lines: Vec<LineString> = Vec::new();
    let mut used = vec![false; edges.len()];
    // Per vertex, how many of its incident edges have been looked at: each
    // edge is skipped at most once per end, so all walks take O(edges).
    let mut cursor = vec![0_usize; vertices.len()];
    let odd = (0..vertices.len()).filter(|&v| incident[v].len() % 2 == 1);
    let starts: Vec<usize> = odd.chain(0..vertices.len()).collect();
    for start in starts {
        while let Some(first) = next_unused(&incident[start], &used, &mut cursor[start]) {
            let mut trail: Vec<Coord> = vec![vertices[start]];
            let mut edge = first;
            let mut here = start;
            loop {
                used[edge] = true;
                let (a, b) = edges[edge];
                let from = here;
                here = if a == here { b } else { a };
                trail.push(vertices[here]);
                let heading = vertices[here] - vertices[from];
                match straightest_unused(here, heading, &incident[here], &edges, &vertices, &used) {
                    Some(next) => edge = next,
                    None => break,
                }
            }
            lines.push(LineString::new(trail));
        }
    }
    points.sort_unstable();
    points.dedup();
    for point in points {
        if incident[point].is_empty() {
            let at = vertices[point];
            let end = Coord {
                x: at.x + POINT_AS_SEGMENT_M,
                y: at.y,
            };
            lines.push(LineString::new(vec![at, end]));
        }
    }
    MultiLineString::new(lines)
}

/// Of the unused edges at `here`, the one that turns least from `heading`:
/// trails then run straight through crossings, as the roads do, and the
/// straightening before stroking merges their collinear pieces.
fn straightest_unused(
    here: usize,
    heading: Coord,
    incident: &[usize],
    edges: &[(usize, usize)],
    vertices: &[Coord],
    used: &[bool],
) -> Option<usize> {
    let heading_length = heading.x.hypot(heading.y);
    incident
        .iter()
        .filter(|&&edge| !used[edge])
        .map(|&edge| {
            let (a, b) = edges[edge];
            let there = if a == here { b } else { a };
            let step = vertices[there] - vertices[here];
            // The cosine of the turn; a longer edge breaks no tie unfairly.
            let cosine =
                (heading.x * step.x + heading.y * step.y) / (heading_length * step.x.hypot(step.y));
            (edge, cosine)
        })
        .max_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(edge, _)| edge)
}

fn next_unused(incident: &[usize], used: &[bool], cursor: &mut usize) -> Option<usize> {
    while let Some(&edge) = incident.get(*cursor) {
        if !used[edge] {
            return Some(edge);
        }
        *cursor += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Area, BooleanOps, Buffer, Euclidean, Length};

    fn line(a: (f64, f64), b: (f64, f64)) -> Line {
        Line::new(Coord { x: a.0, y: a.1 }, Coord { x: b.0, y: b.1 })
    }

    #[test]
    fn trails_use_every_piece_once() {
        // A plus sign (4 odd ends, one even centre), a repeated and a
        // reversed piece, and a lone zero-length piece.
        let pieces = [
            line((0.0, 0.0), (10.0, 0.0)),
            line((0.0, 0.0), (-10.0, 0.0)),
            line((0.0, 0.0), (0.0, 10.0)),
            line((0.0, 10.0), (0.0, 0.0)),
            line((0.0, 0.0), (0.0, -10.0)),
            line((0.0, 0.0), (0.0, -10.0)),
            line((0.0, 0.0), (0.0, 0.0)),
            line((500.0, 0.0), (500.0, 0.0)),
        ];
        let trails = trails(&pieces);
        // Four odd ends: two trails, plus the lone point's stand-in.
        assert_eq!(trails.0.len(), 3);
        let length: f64 = trails.0.iter().map(|trail| Euclidean.length(trail)).sum();
        assert!(
            (length - 40.0 - POINT_AS_SEGMENT_M).abs() < 1e-9,
            "{length}"
        );
    }

    #[test]
    fn strip_equals_the_union_of_piece_buffers() {
        let pieces = [
            line((0.0, 0.0), (100.0, 0.0)),
            line((100.0, 0.0), (130.0, 80.0)),
            line((100.0, 0.0), (200.0, -5.0)),
            line((130.0, 80.0), (0.0, 0.0)),
            line((300.0, 300.0), (300.0, 300.0)),
        ];
        let strip = network_strip(&pieces, 50.0);
        let separately = pieces
            .iter()
            .map(|piece| MultiLineString::new(vec![vec![piece.start, piece.end].into()]))
            .map(|line| line.buffer(50.0))
            .reduce(|a, b| a.union(&b))
            .unwrap();
        let apart = strip.xor(&separately).unsigned_area();
        // Round arcs sit within 0.27 m of the true circle, so the two
        // drawings differ by a band narrower than that along the outline.
        let outline: f64 = separately
            .iter()
            .flat_map(|part| std::iter::once(part.exterior()).chain(part.interiors()))
            .map(|ring| Euclidean.length(ring))
            .sum();
        assert!(apart / outline < 0.27, "{apart} m² apart along {outline} m");
        assert!(
            (strip.unsigned_area() - separately.unsigned_area()).abs() < 20.0,
            "{} vs {}",
            strip.unsigned_area(),
            separately.unsigned_area()
        );
    }
}
