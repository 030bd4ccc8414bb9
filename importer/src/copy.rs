//! Bulk writing with `COPY … FROM STDIN (FORMAT binary)`.
//!
//! Binary COPY sends each value in PostgreSQL's own wire form: integers and
//! doubles as big-endian bytes, text as UTF-8, `text[]` as an array header
//! and its elements, and geometries as EWKB, which is PostGIS's binary input
//! format. Nothing is parsed from text on the server, which is what makes it
//! several times faster than `INSERT … SELECT … FROM UNNEST(…)`.
//!
//! Inserts go straight into the target table. Upserts go into a temporary
//! staging table (dropped at commit) and from there into the target with
//! `INSERT … SELECT … ON CONFLICT`. Both run inside the import's
//! transaction: a failure, Ctrl-C or a killed process leaves nothing behind.
//! The encoded rows are sent in chunks of [`CHUNK_BYTES`], so the buffer
//! stays small whatever the layer size.

use gridmap_model::STORAGE_SRID;
use sqlx::PgConnection;

use crate::check::{Row, Value};
use crate::fields::{GeometryKind, LayerSpec, ValueKind};
use crate::problem::ImportError;
use crate::ImportOptions;

/// Bytes encoded before they are sent to the server.
const CHUNK_BYTES: usize = 4 << 20;

/// `PGCOPY\n\377\r\n\0`, then the flags field and the header extension length.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// The type OID of `text`, the element type of the list columns.
const TEXT_OID: i32 = 25;

/// The name of the staging table of an upsert.
const STAGE: &str = "gridmap_import_stage";

/// Writes `rows` into `spec`'s table with binary COPY and returns the rows
/// changed: all of them for an insert, for an upsert those inserted or
/// updated because a value differed.
pub(crate) async fn write_layer(
    connection: &mut PgConnection,
    spec: &LayerSpec,
    rows: Vec<Row>,
    upsert: bool,
    progress: &ImportOptions,
) -> Result<u64, ImportError> {
    let table = spec.entity.table();
    let columns: Vec<&str> = spec.fields.iter().map(|field| field.column).collect();
    let column_list = columns.join(", ");
    let target = if upsert {
        // Same column types as the target, without its constraints, indexes
        // and generated columns: only the upsert below checks them.
        sqlx::query(&format!("DROP TABLE IF EXISTS pg_temp.{STAGE}"))
            .execute(&mut *connection)
            .await
            .map_err(ImportError::database("dropping the staging table"))?;
        sqlx::query(&format!(
            "CREATE TEMP TABLE {STAGE} ON COMMIT DROP AS \
             SELECT {column_list}, geom FROM {table} WITH NO DATA"
        ))
        .execute(&mut *connection)
        .await
        .map_err(ImportError::database(format!(
            "creating the staging table of {table}"
        )))?;
        STAGE
    } else {
        table
    };
    let statement = format!("COPY {target} ({column_list}, geom) FROM STDIN (FORMAT binary)");
    let mut copy = connection
        .copy_in_raw(&statement)
        .await
        .map_err(ImportError::database(format!(
            "starting COPY into {target}"
        )))?;
    let mut buffer = Vec::with_capacity(CHUNK_BYTES + (64 << 10));
    buffer.extend_from_slice(SIGNATURE);
    buffer.extend_from_slice(&0i32.to_be_bytes());
    buffer.extend_from_slice(&0i32.to_be_bytes());
    let mut pending = 0u64;
    let copy_error = || ImportError::database(format!("copying rows into {table}"));
    for row in rows {
        if let Err(reason) = encode_row(&mut buffer, spec, &row) {
            let _ = copy.abort(reason.clone()).await;
            return Err(ImportError::Encode {
                table,
                feature: row.feature,
                reason,
            });
        }
        pending += 1;
        if buffer.len() >= CHUNK_BYTES {
            copy.send(std::mem::take(&mut buffer))
                .await
                .map_err(copy_error())?;
            buffer.reserve(CHUNK_BYTES + (64 << 10));
            progress.advance(pending);
            pending = 0;
        }
    }
    buffer.extend_from_slice(&(-1i16).to_be_bytes());
    copy.send(buffer).await.map_err(copy_error())?;
    let copied = copy.finish().await.map_err(copy_error())?;
    progress.advance(pending);
    if !upsert {
        return Ok(copied);
    }
    let result = sqlx::query(&upsert_from_stage_sql(spec))
        .execute(&mut *connection)
        .await
        .map_err(ImportError::database(format!("upserting into {table}")))?;
    Ok(result.rows_affected())
}

/// Moves the staged rows into the target: new codes are inserted, stored
/// codes updated where a value differs. The `WHERE … IS DISTINCT FROM` leaves
/// identical rows untouched, so a re-run writes nothing, fires no change
/// notification for them, and reports 0 rows.
pub(crate) fn upsert_from_stage_sql(spec: &LayerSpec) -> String {
    let table = spec.entity.table();
    let key = spec.key.unwrap_or("code");
    let all: Vec<&str> = spec.fields.iter().map(|field| field.column).collect();
    let updated: Vec<&str> = all
        .iter()
        .copied()
        .filter(|column| *column != key)
        .chain(std::iter::once("geom"))
        .collect();
    let set: Vec<String> = updated
        .iter()
        .map(|column| format!("{column} = EXCLUDED.{column}"))
        .collect();
    let stored: Vec<String> = updated
        .iter()
        .map(|column| format!("{table}.{column}"))
        .collect();
    let excluded: Vec<String> = updated
        .iter()
        .map(|column| format!("EXCLUDED.{column}"))
        .collect();
    format!(
        "INSERT INTO {table} ({columns}, geom) SELECT {columns}, geom FROM {STAGE} \
         ON CONFLICT ({key}) DO UPDATE SET {set} WHERE ({stored}) IS DISTINCT FROM ({excluded})",
        columns = all.join(", "),
        set = set.join(", "),
        stored = stored.join(", "),
        excluded = excluded.join(", "),
    )
}

/// Appends one tuple: the field count, then each field as length and bytes
/// (length -1 for NULL).
fn encode_row(buffer: &mut Vec<u8>, spec: &LayerSpec, row: &Row) -> Result<(), String> {
    let count = i16::try_from(spec.fields.len() + 1).map_err(|_| "too many columns")?;
    buffer.extend_from_slice(&count.to_be_bytes());
    for (field, value) in spec.fields.iter().zip(&row.values) {
        match (field.value, value) {
            (ValueKind::Integer { .. }, Value::Integer(number)) => {
                put_field(buffer, &number.to_be_bytes());
            }
            (ValueKind::PositiveReal, Value::Real(number)) => {
                put_field(buffer, &number.to_be_bytes());
            }
            (ValueKind::List, Value::List(items)) => encode_text_array(buffer, items)?,
            // An absent list is an empty one, as the column's default.
            (ValueKind::List, _) => encode_text_array(buffer, &[])?,
            (_, Value::Text(text)) => put_field(buffer, text.as_bytes()),
            _ => buffer.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    let wkb = row.wkb.as_deref().ok_or("the feature has no geometry")?;
    let start = buffer.len();
    buffer.extend_from_slice(&0i32.to_be_bytes());
    ewkb(buffer, wkb, spec.geometry == GeometryKind::Area)?;
    let length = i32::try_from(buffer.len() - start - 4).map_err(|_| "geometry too large")?;
    buffer[start..start + 4].copy_from_slice(&length.to_be_bytes());
    Ok(())
}

fn put_field(buffer: &mut Vec<u8>, bytes: &[u8]) {
    // Field values are far below 2 GiB: a feature's text or WKB.
    let length = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
    buffer.extend_from_slice(&length.to_be_bytes());
    buffer.extend_from_slice(bytes);
}

/// A one-dimensional `text[]` in the array binary format: dimensions, a
/// has-nulls flag, the element type, then size and lower bound per
/// dimension, then the elements.
fn encode_text_array(buffer: &mut Vec<u8>, items: &[String]) -> Result<(), String> {
    let start = buffer.len();
    buffer.extend_from_slice(&0i32.to_be_bytes());
    let dimensions: i32 = if items.is_empty() { 0 } else { 1 };
    buffer.extend_from_slice(&dimensions.to_be_bytes());
    buffer.extend_from_slice(&0i32.to_be_bytes());
    buffer.extend_from_slice(&TEXT_OID.to_be_bytes());
    if !items.is_empty() {
        let count = i32::try_from(items.len()).map_err(|_| "list too long")?;
        buffer.extend_from_slice(&count.to_be_bytes());
        buffer.extend_from_slice(&1i32.to_be_bytes());
        for item in items {
            put_field(buffer, item.as_bytes());
        }
    }
    let length = i32::try_from(buffer.len() - start - 4).map_err(|_| "list too long")?;
    buffer[start..start + 4].copy_from_slice(&length.to_be_bytes());
    Ok(())
}

/// Appends `wkb` as EWKB with the storage SRID; with `multi`, a Polygon is
/// wrapped into a one-part MultiPolygon, as the area columns require.
fn ewkb(buffer: &mut Vec<u8>, wkb: &[u8], multi: bool) -> Result<(), String> {
    const SRID_FLAG: u32 = 0x2000_0000;
    let (&order, rest) = wkb.split_first().ok_or("empty WKB")?;
    let little = match order {
        1 => true,
        0 => false,
        _ => return Err("the WKB has no byte order mark".to_owned()),
    };
    let type_bytes: [u8; 4] = rest
        .get(..4)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("truncated WKB")?;
    let kind = if little {
        u32::from_le_bytes(type_bytes)
    } else {
        u32::from_be_bytes(type_bytes)
    };
    let body = &rest[4..];
    let u32_bytes = |value: u32| {
        if little {
            value.to_le_bytes()
        } else {
            value.to_be_bytes()
        }
    };
    let srid = STORAGE_SRID.unsigned_abs();
    buffer.push(order);
    if multi && kind == 3 {
        // MultiPolygon with SRID, one part: the original Polygon, whose own
        // header carries no SRID.
        buffer.extend_from_slice(&u32_bytes(6 | SRID_FLAG));
        buffer.extend_from_slice(&u32_bytes(srid));
        buffer.extend_from_slice(&u32_bytes(1));
        buffer.extend_from_slice(wkb);
    } else {
        buffer.extend_from_slice(&u32_bytes(kind | SRID_FLAG));
        buffer.extend_from_slice(&u32_bytes(srid));
        buffer.extend_from_slice(body);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Entity;

    #[test]
    fn polygons_become_multipolygons_with_the_storage_srid() {
        // POINT (1 2), little-endian.
        let mut point = vec![1, 1, 0, 0, 0];
        point.extend_from_slice(&1f64.to_le_bytes());
        point.extend_from_slice(&2f64.to_le_bytes());
        let mut out = Vec::new();
        ewkb(&mut out, &point, false).unwrap();
        assert_eq!(&out[..9], &[1, 1, 0, 0, 0x20, 0x8A, 0x11, 0, 0]);
        assert_eq!(&out[9..], &point[5..]);

        let polygon = [1, 3, 0, 0, 0, 0, 0, 0, 0];
        let mut out = Vec::new();
        ewkb(&mut out, &polygon, true).unwrap();
        assert_eq!(
            &out[..13],
            &[1, 6, 0, 0, 0x20, 0x8A, 0x11, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(&out[13..], &polygon);
    }

    #[test]
    fn text_arrays_carry_their_header() {
        let mut out = Vec::new();
        encode_text_array(&mut out, &["饮水".to_owned()]).unwrap();
        let expected_length = 20 + 4 + "饮水".len();
        assert_eq!(&out[..4], &(expected_length as i32).to_be_bytes());
        assert_eq!(&out[4..8], &1i32.to_be_bytes());
        assert_eq!(&out[12..16], &25i32.to_be_bytes());
        let mut empty = Vec::new();
        encode_text_array(&mut empty, &[]).unwrap();
        assert_eq!(empty.len(), 16);
    }

    #[test]
    fn upsert_updates_only_rows_that_differ() {
        let sql = upsert_from_stage_sql(LayerSpec::of(Entity::Grids));
        assert!(
            sql.starts_with("INSERT INTO grids (code, name, community_code, kind, status, worker_name, worker_phone, geom) SELECT "),
            "{sql}"
        );
        assert!(
            sql.contains(" ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, "),
            "{sql}"
        );
        assert!(!sql.contains("code = EXCLUDED.code"), "{sql}");
        assert!(
            sql.ends_with("IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.community_code, EXCLUDED.kind, EXCLUDED.status, EXCLUDED.worker_name, EXCLUDED.worker_phone, EXCLUDED.geom)"),
            "{sql}"
        );
    }
}
