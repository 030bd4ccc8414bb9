//! Tiles encoded by PostGIS: one `ST_AsMVT` per layer, all layers of a tile in
//! one statement; with a [`GeneralisedPolygons`] snapshot, the polygon layers
//! it holds are encoded in process instead, and computed layers
//! ([`LayerDef::computed_from`]) are drawn from their [`ComputedLayer`]
//! snapshot only (without one they are left out: they have no table).

use crate::{
    ComputedLayer, GeneralisedPolygons, LayerDef, StoredLayers, TileCoord, BUFFER, EXTENT,
};
use sqlx::{PgPool, Row as _};

#[derive(Debug, thiserror::Error)]
#[error("encoding tile {z}/{x}/{y} of layers {layers}")]
pub struct EncodeError {
    /// The layer names, joined by commas.
    pub layers: String,
    pub z: u8,
    pub x: u32,
    pub y: u32,
    #[source]
    pub source: sqlx::Error,
}

impl EncodeError {
    /// The error of the statement that encoded `layers` for `tile`.
    fn new(layers: &[&LayerDef], tile: TileCoord, source: sqlx::Error) -> Self {
        Self {
            layers: layers
                .iter()
                .map(|layer| layer.name)
                .collect::<Vec<_>>()
                .join(","),
            z: tile.z,
            x: tile.x,
            y: tile.y,
            source,
        }
    }
}

/// The SQL expression (a `bytea`) that encodes `layer` for tile
/// `($1, $2, $3)` = `(z, x, y)`.
///
/// Features are selected with the tile envelope grown by the clip buffer, the
/// same envelope `ST_AsMVTGeom` clips to, so a feature drawn in the buffer of
/// one tile is also drawn in its neighbour.
#[must_use]
pub fn layer_sql(layer: &LayerDef) -> String {
    let attributes: Vec<String> = layer
        .columns
        .iter()
        .map(|(expr, attr, _)| format!("{expr} AS \"{attr}\""))
        .collect();
    let margin = f64::from(BUFFER) / f64::from(EXTENT);
    let filter = layer
        .filter
        .map(|predicate| format!(" AND ({predicate})"))
        .unwrap_or_default();
    format!(
        "(SELECT COALESCE(ST_AsMVT(t, '{name}', {EXTENT}, 'geom'), ''::bytea) FROM (
           SELECT {attributes},
                  ST_AsMVTGeom({geometry}, ST_TileEnvelope($1::int, $2::int, $3::int), {EXTENT}, {BUFFER}, true) AS geom
             FROM {table}
            WHERE {geometry} && ST_TileEnvelope($1::int, $2::int, $3::int, margin => {margin}){filter}
         ) t
         WHERE geom IS NOT NULL)",
        name = layer.name,
        attributes = attributes.join(", "),
        geometry = layer.geometry,
        table = layer.table,
    )
}

/// The SQL that encodes `layers` for one tile as one `bytea`: the layers'
/// messages concatenated, which is itself a valid MVT message. One statement
/// instead of one per layer saves a round trip per layer on a cold tile.
#[must_use]
pub fn tile_sql(layers: &[&LayerDef]) -> String {
    if layers.is_empty() {
        return "SELECT ''::bytea".to_owned();
    }
    let parts: Vec<String> = layers.iter().map(|layer| layer_sql(layer)).collect();
    format!("SELECT {}", parts.join("\n || "))
}

/// Encodes the layers of `layers` whose zoom range holds `tile.z`, in order;
/// an empty vector when no feature meets the tile.
///
/// # Errors
/// [`EncodeError`] naming the layers and tile when the query fails.
pub async fn encode_tile(
    pool: &PgPool,
    layers: &[&'static LayerDef],
    tile: TileCoord,
) -> Result<Vec<u8>, EncodeError> {
    let shown: Vec<&LayerDef> = layers
        .iter()
        .copied()
        .filter(|layer| (layer.minzoom..=layer.maxzoom).contains(&tile.z))
        .filter(|layer| layer.computed_from.is_empty())
        .collect();
    if shown.is_empty() {
        return Ok(Vec::new());
    }
    let sql = tile_sql(&shown);
    sqlx::query_scalar::<_, Vec<u8>>(&sql)
        .bind(i32::from(tile.z))
        .bind(i64::from(tile.x))
        .bind(i64::from(tile.y))
        .fetch_one(pool)
        .await
        .map_err(|source| EncodeError::new(&shown, tile, source))
}

/// Encodes the layers of `layers` whose zoom range holds `tile.z`, in order,
/// drawing those `polygons` holds from it and the others with one PostGIS
/// statement; an empty vector when no feature meets the tile.
///
/// # Errors
/// [`EncodeError`] naming the PostGIS layers and tile when the query fails.
pub async fn encode_tile_with(
    pool: &PgPool,
    polygons: Option<&GeneralisedPolygons>,
    layers: &[&'static LayerDef],
    tile: TileCoord,
) -> Result<Vec<u8>, EncodeError> {
    let sources = TileSources {
        polygons,
        ..TileSources::default()
    };
    encode_tile_from(pool, &sources, layers, tile).await
}

/// The in-process snapshots a tile may be drawn from.
#[derive(Debug, Clone, Copy, Default)]
pub struct TileSources<'a> {
    /// The generalised polygon layers; `None`: PostGIS draws them.
    pub polygons: Option<&'a GeneralisedPolygons>,
    /// The point, line and building layers; `None`: PostGIS draws them.
    pub stored: Option<&'a StoredLayers>,
    /// Computed layers ([`crate::CircleSnapshot::layer`],
    /// [`crate::GapSnapshot::layer`]); a computed layer missing here is
    /// left out of the tile.
    pub computed: &'a [&'a ComputedLayer],
}

/// Encodes the layers of `layers` whose zoom range holds `tile.z`, in order:
/// computed layers from `sources.computed`, the layers `sources.polygons`
/// or `sources.stored` hold from them, the others with one PostGIS statement; an empty vector
/// when no feature meets the tile. With only `polygons` this is
/// [`encode_tile_with`], byte for byte.
///
/// # Errors
/// [`EncodeError`] naming the PostGIS layers and tile when the query fails.
pub async fn encode_tile_from(
    pool: &PgPool,
    sources: &TileSources<'_>,
    layers: &[&'static LayerDef],
    tile: TileCoord,
) -> Result<Vec<u8>, EncodeError> {
    if sources.polygons.is_none()
        && sources.stored.is_none()
        && layers.iter().all(|layer| layer.computed_from.is_empty())
    {
        return encode_tile(pool, layers, tile).await;
    }
    // Per shown layer: its in-process message, or `None` for PostGIS.
    let mut parts: Vec<Option<Vec<u8>>> = Vec::new();
    let mut postgis: Vec<&LayerDef> = Vec::new();
    for layer in layers
        .iter()
        .filter(|layer| (layer.minzoom..=layer.maxzoom).contains(&tile.z))
    {
        let part = if layer.computed_from.is_empty() {
            sources
                .polygons
                .and_then(|polygons| polygons.encode_layer(layer.name, tile))
                .or_else(|| {
                    sources
                        .stored
                        .and_then(|stored| stored.encode_layer(layer.name, tile))
                })
        } else {
            Some(
                sources
                    .computed
                    .iter()
                    .find(|computed| computed.def().name == layer.name)
                    .map(|computed| computed.encode(tile))
                    .unwrap_or_default(),
            )
        };
        if part.is_none() {
            postgis.push(layer);
        }
        parts.push(part);
    }
    let mut from_postgis = Vec::new();
    if !postgis.is_empty() {
        let columns: Vec<String> = postgis.iter().map(|layer| layer_sql(layer)).collect();
        let row = sqlx::query(&format!("SELECT {}", columns.join(",\n")))
            .bind(i32::from(tile.z))
            .bind(i64::from(tile.x))
            .bind(i64::from(tile.y))
            .fetch_one(pool)
            .await
            .and_then(|row| {
                (0..postgis.len())
                    .map(|i| row.try_get::<Vec<u8>, _>(i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|source| EncodeError::new(&postgis, tile, source))?;
        from_postgis = row;
    }
    let mut from_postgis = from_postgis.into_iter();
    let mut body = Vec::new();
    for part in parts {
        match part {
            Some(bytes) => body.extend_from_slice(&bytes),
            None => body.extend_from_slice(&from_postgis.next().unwrap_or_default()),
        }
    }
    Ok(body)
}

/// Encodes one layer for `tile`, whatever its zoom range.
///
/// # Errors
/// [`EncodeError`] naming the layer and tile when the query fails.
pub async fn encode_layer(
    pool: &PgPool,
    layer: &'static LayerDef,
    tile: TileCoord,
) -> Result<Vec<u8>, EncodeError> {
    if !layer.computed_from.is_empty() {
        // No table to read: computed layers come from their snapshot.
        return Ok(Vec::new());
    }
    let sql = tile_sql(&[layer]);
    sqlx::query_scalar::<_, Vec<u8>>(&sql)
        .bind(i32::from(tile.z))
        .bind(i64::from(tile.x))
        .bind(i64::from(tile.y))
        .fetch_one(pool)
        .await
        .map_err(|source| EncodeError {
            layers: layer.name.to_owned(),
            z: tile.z,
            x: tile.x,
            y: tile.y,
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::find_layer;

    #[test]
    fn sql_selects_only_catalogued_columns() {
        let sql = layer_sql(find_layer("grids").unwrap());
        assert!(sql.contains("status AS \"status\""));
        assert!(!sql.contains("worker"));
        assert!(sql.contains("FROM grids"));
        assert!(sql.contains("margin => 0.015625"));
    }

    #[test]
    fn filtered_and_label_layers_use_their_geometry_and_predicate() {
        let sql = layer_sql(find_layer("rider_rest_stops").unwrap());
        assert!(sql.contains("FROM stations"));
        assert!(sql.contains("AND (kind = 'rider_rest_stop')"));
        let sql = layer_sql(find_layer("roads").unwrap());
        assert!(sql.contains("AND (class <> 'footway' OR $1::int >= 13)"));
        let sql = layer_sql(find_layer("grid_labels").unwrap());
        assert!(sql.contains("ST_AsMVTGeom(label_3857,"));
        assert!(sql.contains("WHERE label_3857 &&"));
    }

    #[test]
    fn a_composite_tile_is_one_statement() {
        let layers = [find_layer("grids").unwrap(), find_layer("roads").unwrap()];
        let sql = tile_sql(&layers);
        assert!(sql.starts_with("SELECT (SELECT"));
        assert_eq!(sql.matches("ST_AsMVT(t,").count(), 2);
        assert_eq!(tile_sql(&[]), "SELECT ''::bytea");
    }
}
