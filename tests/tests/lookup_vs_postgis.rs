//! The in-memory lookup agrees with PostGIS on 10,000 points over the demo
//! city, including points exactly on shared edges and vertices.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use gridmap_server::load_grid_index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The documented boundary rule, as PostGIS states it.
const POSTGIS_ORACLE: &str = "
    SELECT p.i, (SELECT g.code FROM grids g
                  WHERE ST_Intersects(g.geom, ST_SetSRID(ST_MakePoint(p.x, p.y), 4490))
                  ORDER BY g.code LIMIT 1)
      FROM unnest($1::float8[], $2::float8[]) WITH ORDINALITY AS p(x, y, i)
     ORDER BY p.i";

#[tokio::test]
async fn lookup_matches_postgis_on_10000_points() {
    let pool = gridmap_e2e::demo_pool().await;
    let index = load_grid_index(&pool).await.unwrap();
    assert!(index.len() >= 450, "demo city has {} grids", index.len());
    let mut rng = ChaCha8Rng::seed_from_u64(20_261_123);

    let (west, south, east, north): (f64, f64, f64, f64) = sqlx::query_as(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
           FROM (SELECT ST_Extent(geom)::geometry e FROM grids) x",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    let mut points: Vec<(f64, f64)> = Vec::with_capacity(10_000);
    // Vertices of grids: most are shared by two to four grids.
    let grids: Vec<_> = index.iter().collect();
    while points.len() < 2_000 {
        let grid = grids[rng.gen_range(0..grids.len())];
        let ring = grid.polygon.0[0].exterior();
        let vertex = ring.0[rng.gen_range(0..ring.0.len())];
        points.push((vertex.x, vertex.y));
    }
    // Midpoints of axis-parallel edges lie exactly on the edge in floating
    // point, so they sit on the shared boundary of two grids.
    while points.len() < 4_000 {
        let grid = grids[rng.gen_range(0..grids.len())];
        let ring = grid.polygon.0[0].exterior();
        let k = rng.gen_range(0..ring.0.len() - 1);
        let (a, b) = (ring.0[k], ring.0[k + 1]);
        if a.x == b.x {
            points.push((a.x, f64::midpoint(a.y, b.y)));
        } else if a.y == b.y {
            points.push((f64::midpoint(a.x, b.x), a.y));
        }
    }
    // Uniform points over the extent, some of them outside every grid.
    while points.len() < 10_000 {
        points.push((rng.gen_range(west..east), rng.gen_range(south..north)));
    }

    let xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.1).collect();
    let oracle: Vec<(i64, Option<String>)> = sqlx::query_as(POSTGIS_ORACLE)
        .bind(&xs)
        .bind(&ys)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(oracle.len(), points.len());

    let mut on_shared_boundary = 0;
    let mut outside = 0;
    let mut mismatches = Vec::new();
    for ((x, y), (_, expected)) in points.iter().zip(&oracle) {
        let got = index.locate(*x, *y).map(|hit| hit.code.to_string());
        // The cell grid and the R-tree of boxes are independent first steps.
        let by_boxes = index
            .locate_by_boxes(*x, *y)
            .map(|hit| hit.code.to_string());
        assert_eq!(got, by_boxes, "({x}, {y}): cells and boxes disagree");
        if index.locate_all(*x, *y).len() > 1 {
            on_shared_boundary += 1;
        }
        if expected.is_none() {
            outside += 1;
        }
        if &got != expected {
            mismatches.push(format!("({x}, {y}): index {got:?}, PostGIS {expected:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} points disagree, e.g. {:?}",
        mismatches.len(),
        points.len(),
        &mismatches[..mismatches.len().min(5)]
    );
    // The boundary rule must actually have been exercised.
    assert!(
        on_shared_boundary > 2_000,
        "only {on_shared_boundary} boundary points"
    );
    assert!(outside > 100, "only {outside} points outside every grid");
}
