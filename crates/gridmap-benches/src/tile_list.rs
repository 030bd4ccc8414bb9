//! `gridmap-bench tile-list`: the unique tiles of zooms `min..=max` that meet
//! the city (its districts), one `z/x/y` per line, for the HTTP tile benchmark
//! (`http/tiles.sh`) to request from gridmap-server and martin alike.

use anyhow::Context as _;
use std::io::Write as _;

/// Tiles meeting a district, by zoom then row then column. PostGIS decides
/// (`ST_Intersects` on the Web Mercator copy), over the tiles of the
/// districts' bounding box.
const TILES_MEETING_THE_CITY: &str = "
    WITH extent AS (SELECT ST_Extent(geom_3857)::geometry AS e FROM districts),
         zooms AS (SELECT z FROM generate_series($1::int, $2::int) AS z),
         ranges AS (
            SELECT z,
                   floor((ST_XMin(e) + 20037508.342789244) / (40075016.68557849 / (1 << z)))::int AS x0,
                   floor((ST_XMax(e) + 20037508.342789244) / (40075016.68557849 / (1 << z)))::int AS x1,
                   floor((20037508.342789244 - ST_YMax(e)) / (40075016.68557849 / (1 << z)))::int AS y0,
                   floor((20037508.342789244 - ST_YMin(e)) / (40075016.68557849 / (1 << z)))::int AS y1
              FROM zooms, extent)
    SELECT z, x, y
      FROM ranges, generate_series(x0, x1) AS x, generate_series(y0, y1) AS y
     WHERE EXISTS (SELECT 1 FROM districts d
                    WHERE ST_Intersects(d.geom_3857, ST_TileEnvelope(z, x, y)))
     ORDER BY z, y, x";

/// Prints the list to standard output.
pub async fn run(min_zoom: u8, max_zoom: u8) -> anyhow::Result<()> {
    let pool = gridmap_store::connect(1).await.context("connecting")?;
    let tiles: Vec<(i32, i32, i32)> = sqlx::query_as(TILES_MEETING_THE_CITY)
        .bind(i32::from(min_zoom))
        .bind(i32::from(max_zoom))
        .fetch_all(&pool)
        .await
        .context("listing the tiles that meet the districts")?;
    anyhow::ensure!(!tiles.is_empty(), "no district: import a city first");
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (z, x, y) in tiles {
        writeln!(out, "{z}/{x}/{y}")?;
    }
    out.flush()?;
    Ok(())
}
