//! Stroking trails into one polygon with round caps only where they count.
//!
//! geo's `Buffer` of a `MultiLineString` gives every line two round caps. A
//! trail that ends at a vertex another trail runs through (a T-junction, a
//! crossing where trails split) needs no cap there: that trail's buffer
//! already holds the whole disc around the vertex (a polyline's round-joined
//! buffer holds the disc around each of its vertices). Such caps, 16 chords
//! each, only add crossings for the overlay to split. So the stroke is drawn
//! here from its parts, all in one overlay: a rectangle per segment, a fan
//! on the outer side of every turn, and a half disc at the trail ends no
//! other trail runs through (dead ends and the cut ends at the walking
//! limit, which draw the circle's rim), joined to its segment's rectangle.
//!
//! Arcs are inscribed chords reaching at most [`ARC_SAG_M`] inside their
//! circle, so the drawing lies inside the exact buffer and holds every point
//! within the half-width minus 0.25 m of the trails.

use geo::{unary_union, Coord, LineString, MultiLineString, MultiPolygon, Polygon};
use std::collections::HashSet;

/// How far an arc chord may reach inside its circle: at a 50 m half-width a
/// chord then spans 0.2 rad (50 m × (1 − cos 0.1) = 0.25 m) and a half
/// circle takes 16 chords, as many as geo's round caps.
pub(crate) const ARC_SAG_M: f64 = 0.25;

/// Consecutive vertices closer than this are one: a shorter segment has no
/// direction worth the name.
const SAME_POINT_M: f64 = 1e-6;

/// The union of the `half_width_m` buffers (round caps and joins) of
/// `trails`, capped only where no trail runs through a trail's end.
///
/// `through` holds the vertices some trail runs through (an inner vertex of
/// it, before any straightening), keyed by [`vertex_key`]. A trail straightened
/// by `d` metres keeps its buffer within `d` of these discs, which the
/// caller's tolerance counts.
pub(crate) fn stroke_trails(
    trails: &MultiLineString,
    through: &HashSet<(u64, u64)>,
    half_width_m: f64,
) -> MultiPolygon {
    let pen = Pen::new(half_width_m);
    let mut parts: Vec<Polygon> = Vec::new();
    for trail in trails {
        let points = distinct_points(trail);
        match points.as_slice() {
            [] => {}
            [single] => parts.push(disc(*single, &pen)),
            _ => stroke_one(&points, through, &pen, &mut parts),
        }
    }
    if parts.is_empty() {
        return MultiPolygon::new(Vec::new());
    }
    unary_union(&parts)
}

/// The key under which trails and pieces name a vertex: its bits, with
/// -0.0 and 0.0 made one.
pub(crate) fn vertex_key(coord: Coord) -> (u64, u64) {
    ((coord.x + 0.0).to_bits(), (coord.y + 0.0).to_bits())
}

/// One straight segment of a trail and its offset to the left, computed
/// once so that every polygon meeting at a corner names it with the same
/// bits (a corner the overlay sees twice, a hair apart, leaves a slit).
struct Segment {
    from: Coord,
    to: Coord,
    direction: f64,
    left: Coord,
}

impl Segment {
    fn new(from: Coord, to: Coord, radius: f64) -> Self {
        let step = to - from;
        let direction = step.y.atan2(step.x);
        let (sin, cos) = direction.sin_cos();
        Self {
            from,
            to,
            direction,
            left: Coord {
                x: -sin * radius,
                y: cos * radius,
            },
        }
    }
}

fn stroke_one(
    points: &[Coord],
    through: &HashSet<(u64, u64)>,
    pen: &Pen,
    parts: &mut Vec<Polygon>,
) {
    use std::f64::consts::{FRAC_PI_2, PI};
    let segments: Vec<Segment> = points
        .windows(2)
        .map(|pair| Segment::new(pair[0], pair[1], pen.radius))
        .collect();
    let last_segment = segments.len() - 1;
    let capped_start = !through.contains(&vertex_key(points[0]));
    let capped_end = !through.contains(&vertex_key(points[points.len() - 1]));
    for (index, segment) in segments.iter().enumerate() {
        // Counter-clockwise: the right side forwards, the far end, the left
        // side back, the near end. A cap is part of its segment's polygon
        // (fewer edges for the overlay); a butt end passes through the
        // trail's vertex, where the turn's fan starts.
        let mut ring: Vec<Coord> = Vec::with_capacity(40);
        ring.push(segment.from - segment.left);
        ring.push(segment.to - segment.left);
        if index == last_segment && capped_end {
            arc_inside(
                segment.to,
                segment.direction - FRAC_PI_2,
                PI,
                pen,
                &mut ring,
            );
        } else {
            ring.push(segment.to);
        }
        ring.push(segment.to + segment.left);
        ring.push(segment.from + segment.left);
        if index == 0 && capped_start {
            arc_inside(
                segment.from,
                segment.direction + FRAC_PI_2,
                PI,
                pen,
                &mut ring,
            );
        } else {
            ring.push(segment.from);
        }
        parts.push(Polygon::new(LineString::new(ring), Vec::new()));
    }
    for pair in segments.windows(2) {
        let (incoming, outgoing) = (&pair[0], &pair[1]);
        let angle = wrapped(outgoing.direction - incoming.direction);
        if angle == 0.0 {
            continue;
        }
        // The gap between the two rectangles opens on the outer side: right
        // of a left turn, left of a right turn.
        let vertex = incoming.to;
        let mut ring: Vec<Coord> = Vec::with_capacity(36);
        ring.push(vertex);
        if angle > 0.0 {
            ring.push(incoming.to - incoming.left);
            arc_inside(
                vertex,
                incoming.direction - FRAC_PI_2,
                angle,
                pen,
                &mut ring,
            );
            ring.push(outgoing.from - outgoing.left);
        } else {
            ring.push(outgoing.from + outgoing.left);
            arc_inside(
                vertex,
                outgoing.direction + FRAC_PI_2,
                -angle,
                pen,
                &mut ring,
            );
            ring.push(incoming.to + incoming.left);
        }
        parts.push(Polygon::new(LineString::new(ring), Vec::new()));
    }
}

/// The trail's vertices without repeats closer than [`SAME_POINT_M`]; the
/// ends stay exact, as the `through` keys name them.
fn distinct_points(trail: &LineString) -> Vec<Coord> {
    let mut points: Vec<Coord> = Vec::with_capacity(trail.0.len());
    for &coord in &trail.0 {
        match points.last() {
            Some(&previous) if (coord - previous).x.hypot((coord - previous).y) < SAME_POINT_M => {}
            _ => points.push(coord),
        }
    }
    let kept = points.len();
    if let (Some(&end), Some(last)) = (trail.0.last(), points.last_mut()) {
        if kept > 1 {
            *last = end;
        }
    }
    points
}

/// The radius of the stroke and the angle one arc chord spans.
struct Pen {
    radius: f64,
    step_rad: f64,
}

impl Pen {
    fn new(radius: f64) -> Self {
        // A chord spanning angle a lies radius × (1 − cos(a/2)) inside its
        // circle at its middle. At least four chords a half circle, however
        // small the radius.
        let step_rad = 2.0 * (1.0 - ARC_SAG_M / radius).max(0.0).acos();
        Self {
            radius,
            step_rad: step_rad.min(std::f64::consts::FRAC_PI_4),
        }
    }
}

/// The disc around `centre` as a polygon of inscribed chords.
fn disc(centre: Coord, pen: &Pen) -> Polygon {
    let first = Coord {
        x: centre.x + pen.radius,
        y: centre.y,
    };
    let mut ring = vec![first];
    arc_inside(centre, 0.0, std::f64::consts::TAU, pen, &mut ring);
    Polygon::new(LineString::new(ring), Vec::new())
}

/// Appends the corners strictly between the two ends of the arc around
/// `centre` from angle `start` sweeping `sweep` radians counter-clockwise,
/// drawn as inscribed chords of at most the pen's step. The ends themselves
/// are the caller's, computed once for every polygon that shares them.
fn arc_inside(centre: Coord, start: f64, sweep: f64, pen: &Pen, ring: &mut Vec<Coord>) {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a sweep of at most a full turn over a step of at least \
                  2 acos(1 − sag/radius): a few hundred chords even at a kilometre"
    )]
    let chords = (sweep / pen.step_rad).ceil() as usize;
    #[expect(
        clippy::cast_precision_loss,
        reason = "a few hundred chords at most, exact"
    )]
    let step = sweep / chords.max(1) as f64;
    for chord in 1..chords {
        #[expect(
            clippy::cast_precision_loss,
            reason = "a few hundred chords at most, exact"
        )]
        let (sin, cos) = (start + step * chord as f64).sin_cos();
        ring.push(Coord {
            x: centre.x + pen.radius * cos,
            y: centre.y + pen.radius * sin,
        });
    }
}

/// `angle` wrapped into (−π, π].
fn wrapped(angle: f64) -> f64 {
    let mut angle = angle % std::f64::consts::TAU;
    if angle > std::f64::consts::PI {
        angle -= std::f64::consts::TAU;
    } else if angle <= -std::f64::consts::PI {
        angle += std::f64::consts::TAU;
    }
    angle
}
