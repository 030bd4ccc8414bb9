//! Bulk writing with `COPY … FROM STDIN (FORMAT binary)`.
//!
//! Binary COPY sends each value in PostgreSQL's own wire form: integers and
//! doubles as big-endian bytes, `timestamptz` as big-endian microseconds
//! since 2000-01-01 UTC, text as UTF-8, `text[]` as an array header
//! and its elements, and geometries as EWKB, which is PostGIS's binary input
//! format. Nothing is parsed from text on the server, which is what makes it
//! several times faster than `INSERT … SELECT … FROM UNNEST(…)`.
//!
//! Every source is streamed into a temporary staging table of its own
//! (dropped at commit) as it is read; the checks that need the whole import
//! (duplicates, parents, validity) then run there as set-based queries
//! (`db.rs`), and the rows that pass move into the target with one
//! `INSERT … SELECT` (`ON CONFLICT … DO UPDATE` for upserts). All of it runs
//! inside the import's transaction: a failure, Ctrl-C or a killed process
//! leaves nothing behind. The encoded rows are sent in chunks of
//! [`CHUNK_BYTES`], so the buffer stays small whatever the layer size.
//!
//! When the table's own constraints make every set-based check
//! (`db::constraints_cover`) of a plain insert, [`copy_into_table`] sends
//! the rows straight into the table instead: the server then checks,
//! transforms and stores each row while the next ones are read, rather
//! than after the whole file, and no row is written twice.

use gridmap_model::STORAGE_SRID;
use sqlx::PgConnection;
use tokio::sync::mpsc;

use crate::check::{check_feature, Row, StagedLayer, Value};
use crate::fields::{GeometryKind, LayerSpec, ValueKind};
use crate::problem::{ImportError, Problems};
use crate::read::ReadMessage;

/// Bytes encoded before they are sent to the server.
const CHUNK_BYTES: usize = 4 << 20;

/// `PGCOPY\n\377\r\n\0`, then the flags field and the header extension length.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// The type OID of `text`, the element type of the list columns.
const TEXT_OID: i32 = 25;

/// The name of the staging table of the source at position `order`.
pub(crate) fn stage_name(order: usize) -> String {
    format!("gridmap_import_stage_{order}")
}

/// Creates `layer`'s staging table: the feature number, the columns of the
/// target with their types but without constraints, defaults, indexes or
/// generated columns (a value that failed a check is staged as NULL), and a
/// `rejected` flag for `--skip-invalid`. Temporary and dropped at commit, so a
/// failure or a killed process leaves nothing behind.
pub(crate) async fn create_stage(
    connection: &mut PgConnection,
    layer: &StagedLayer,
) -> Result<(), ImportError> {
    let table = layer.spec.entity.table();
    let stage = &layer.stage;
    let columns = stored_columns(layer.spec).join(", ");
    let statements = [
        format!("DROP TABLE IF EXISTS pg_temp.{stage}"),
        format!(
            "CREATE TEMP TABLE {stage} ON COMMIT DROP AS \
             SELECT 0::bigint AS feature, {columns}, false AS rejected \
             FROM {table} WITH NO DATA"
        ),
        format!("ALTER TABLE {stage} ALTER COLUMN rejected SET DEFAULT false"),
    ];
    for statement in statements {
        sqlx::query(&statement)
            .execute(&mut *connection)
            .await
            .map_err(ImportError::database(format!(
                "creating the staging table of {}",
                layer.file_name
            )))?;
    }
    Ok(())
}

/// The columns a layer writes: the spec's, then `geom` unless the layer has
/// no geometry.
pub(crate) fn stored_columns(spec: &LayerSpec) -> Vec<&'static str> {
    let geometry = (spec.geometry != GeometryKind::None).then_some("geom");
    spec.fields
        .iter()
        .map(|field| field.column)
        .chain(geometry)
        .collect()
}

/// Converts and checks the features arriving from the reader and streams
/// them with binary COPY into `layer`'s staging table; returns the features
/// staged. Only one chunk of encoded rows and the reader's few batches in
/// flight are in memory at any time.
pub(crate) async fn stage_rows(
    connection: &mut PgConnection,
    layer: &StagedLayer,
    receiver: &mut mpsc::Receiver<ReadMessage>,
    problems: &mut Problems,
) -> Result<u64, ImportError> {
    let staged = copy_rows(connection, layer, Destination::Stage, receiver, problems).await?;
    Ok(staged.unwrap_or_default())
}

/// Converts and checks the features arriving from the reader and streams
/// them with binary COPY into `layer`'s own table; returns the rows written,
/// or `None` at the first feature with a problem (recorded in `problems`),
/// when the COPY ends early with the rows before it. A row a constraint
/// refuses fails the COPY with that integrity error. Either way the caller
/// rolls back to a savepoint it set before.
pub(crate) async fn copy_into_table(
    connection: &mut PgConnection,
    layer: &StagedLayer,
    receiver: &mut mpsc::Receiver<ReadMessage>,
    problems: &mut Problems,
) -> Result<Option<u64>, ImportError> {
    copy_rows(connection, layer, Destination::Table, receiver, problems).await
}

/// Where [`copy_rows`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    /// The staging table: every feature, with its number; a value that
    /// failed a check is staged as NULL.
    Stage,
    /// The layer's table, until the first feature with a problem.
    Table,
}

async fn copy_rows(
    connection: &mut PgConnection,
    layer: &StagedLayer,
    destination: Destination,
    receiver: &mut mpsc::Receiver<ReadMessage>,
    problems: &mut Problems,
) -> Result<Option<u64>, ImportError> {
    let columns = stored_columns(layer.spec).join(", ");
    let statement = match destination {
        Destination::Stage => format!(
            "COPY {} (feature, {columns}) FROM STDIN (FORMAT binary)",
            layer.stage
        ),
        Destination::Table => format!(
            "COPY {} ({columns}) FROM STDIN (FORMAT binary)",
            layer.spec.entity.table()
        ),
    };
    let with_feature = destination == Destination::Stage;
    let mut copy = connection
        .copy_in_raw(&statement)
        .await
        .map_err(ImportError::database(format!(
            "starting COPY of the features of {}",
            layer.file_name
        )))?;
    let mut buffer = Vec::with_capacity(CHUNK_BYTES + (64 << 10));
    buffer.extend_from_slice(SIGNATURE);
    buffer.extend_from_slice(&0i32.to_be_bytes());
    buffer.extend_from_slice(&0i32.to_be_bytes());
    let copy_error =
        || ImportError::database(format!("copying the features of {}", layer.file_name));
    let mut staged = 0u64;
    while let Some(message) = receiver.recv().await {
        let ReadMessage::Batch(batch) = message else {
            continue;
        };
        let clean = batch.problems.is_empty();
        for problem in batch.problems {
            problems.push(layer.order, problem);
        }
        for feature in batch.features {
            let row = check_feature(layer, feature, problems);
            if destination == Destination::Table && !(clean && problems.is_empty()) {
                // Ending the COPY normally rather than aborting it keeps the
                // protocol in step even when the server has already refused
                // a row (an abort then meets that error instead of its own);
                // the caller rolls the rows back to its savepoint either way.
                buffer.extend_from_slice(&(-1i16).to_be_bytes());
                copy.send(buffer).await.map_err(copy_error())?;
                copy.finish().await.map_err(copy_error())?;
                return Ok(None);
            }
            if let Err(reason) = encode_row(&mut buffer, layer.spec, &row, with_feature) {
                let _ = copy.abort(reason.clone()).await;
                return Err(ImportError::Encode {
                    table: layer.spec.entity.table(),
                    feature: row.feature,
                    reason,
                });
            }
            staged += 1;
            if buffer.len() >= CHUNK_BYTES {
                copy.send(std::mem::take(&mut buffer))
                    .await
                    .map_err(copy_error())?;
                buffer.reserve(CHUNK_BYTES + (64 << 10));
            }
        }
    }
    buffer.extend_from_slice(&(-1i16).to_be_bytes());
    copy.send(buffer).await.map_err(copy_error())?;
    let rows = copy.finish().await.map_err(copy_error())?;
    tracing::debug!(rows, staged, ?destination, "COPY finished");
    Ok(Some(staged))
}

/// Writes the staged rows not rejected into `layer`'s table and returns the
/// rows changed: all of them for an insert, for an upsert those inserted or
/// updated because a value differed.
pub(crate) async fn write_layer(
    connection: &mut PgConnection,
    layer: &StagedLayer,
    upsert: bool,
) -> Result<u64, ImportError> {
    let table = layer.spec.entity.table();
    let sql = if upsert {
        upsert_from_stage_sql(layer.spec, &layer.stage)
    } else {
        format!(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} \
             WHERE NOT rejected",
            columns = stored_columns(layer.spec).join(", "),
            stage = layer.stage
        )
    };
    let result =
        sqlx::query(&sql)
            .execute(&mut *connection)
            .await
            .map_err(ImportError::database(format!(
                "writing the rows of {table}"
            )))?;
    Ok(result.rows_affected())
}

/// Moves the staged rows into the target: new codes are inserted, stored
/// codes updated where a value differs. The `WHERE … IS DISTINCT FROM` leaves
/// identical rows untouched, so a re-run writes nothing, fires no change
/// notification for them, and reports 0 rows. A scoped key (a worker's grid
/// and name) matches on both columns, which a unique constraint covers.
///
/// A grid's worker columns count only for grids without a roster: a grid
/// with rows in `grid_workers` keeps its roster's primary worker whatever is
/// written (migration 0008's trigger), so a grid layer naming another worker
/// would otherwise be "changed" on every run without changing anything.
pub(crate) fn upsert_from_stage_sql(spec: &LayerSpec, stage: &str) -> String {
    let table = spec.entity.table();
    let key = spec.key_columns();
    let key = if key.is_empty() { vec!["code"] } else { key };
    let all = stored_columns(spec);
    let updated: Vec<&str> = all
        .iter()
        .copied()
        .filter(|column| !key.contains(column))
        .collect();
    let set: Vec<String> = updated
        .iter()
        .map(|column| format!("{column} = EXCLUDED.{column}"))
        .collect();
    let roster = roster_columns(spec);
    let compared = |columns: &[&str], prefix: &str| -> String {
        columns
            .iter()
            .map(|column| format!("{prefix}.{column}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let own: Vec<&str> = updated
        .iter()
        .copied()
        .filter(|column| !roster.contains(column))
        .collect();
    let mut differs = format!(
        "({}) IS DISTINCT FROM ({})",
        compared(&own, table),
        compared(&own, "EXCLUDED")
    );
    if !roster.is_empty() {
        differs = format!(
            "{differs} OR (({}) IS DISTINCT FROM ({}) \
             AND NOT EXISTS (SELECT 1 FROM grid_workers WHERE grid_workers.grid_code = {table}.code))",
            compared(roster, table),
            compared(roster, "EXCLUDED")
        );
    }
    format!(
        "INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} \
         WHERE NOT rejected ON CONFLICT ({key}) DO UPDATE SET {set} WHERE {differs}",
        key = key.join(", "),
        columns = all.join(", "),
        set = set.join(", "),
    )
}

/// The columns of `spec` that the grid-worker roster decides for a grid
/// that has one: the grid's worker.
fn roster_columns(spec: &LayerSpec) -> &'static [&'static str] {
    match spec.entity {
        crate::Entity::Grids => &["worker_name", "worker_phone"],
        _ => &[],
    }
}

/// Appends one tuple: the field count, then each field as length and bytes
/// (length -1 for NULL); the feature number first when `with_feature`.
fn encode_row(
    buffer: &mut Vec<u8>,
    spec: &LayerSpec,
    row: &Row,
    with_feature: bool,
) -> Result<(), String> {
    let has_geometry = spec.geometry != GeometryKind::None;
    let count =
        i16::try_from(spec.fields.len() + usize::from(with_feature) + usize::from(has_geometry))
            .map_err(|_| "too many columns")?;
    buffer.extend_from_slice(&count.to_be_bytes());
    if with_feature {
        let feature = i64::try_from(row.feature).map_err(|_| "feature number too large")?;
        put_field(buffer, &feature.to_be_bytes());
    }
    for (field, value) in spec.fields.iter().zip(&row.values) {
        match (field.value, value) {
            (ValueKind::Integer { .. }, Value::Integer(number)) => {
                put_field(buffer, &number.to_be_bytes());
            }
            (ValueKind::PositiveReal, Value::Real(number)) => {
                put_field(buffer, &number.to_be_bytes());
            }
            // timestamptz travels as microseconds since 2000-01-01 UTC.
            (ValueKind::Time, Value::Time(micros)) => put_field(buffer, &micros.to_be_bytes()),
            (ValueKind::List, Value::List(items)) => encode_text_array(buffer, items)?,
            // An absent list is an empty one, as the column's default.
            (ValueKind::List, _) => encode_text_array(buffer, &[])?,
            (_, Value::Text(text)) => put_field(buffer, text.as_bytes()),
            _ => buffer.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    if !has_geometry {
        return Ok(());
    }
    // A geometry that failed a check while reading is staged as NULL.
    let Some(wkb) = row.wkb.as_deref() else {
        buffer.extend_from_slice(&(-1i32).to_be_bytes());
        return Ok(());
    };
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
    fn grid_workers_match_on_grid_and_name_and_have_no_geometry() {
        let spec = LayerSpec::of(Entity::GridWorkers);
        let sql = upsert_from_stage_sql(spec, "stage");
        assert_eq!(
            sql,
            "INSERT INTO grid_workers (grid_code, name, phone, role, staff_id) \
             SELECT grid_code, name, phone, role, staff_id FROM stage WHERE NOT rejected \
             ON CONFLICT (grid_code, name) DO UPDATE SET phone = EXCLUDED.phone, \
             role = EXCLUDED.role, staff_id = EXCLUDED.staff_id \
             WHERE (grid_workers.phone, grid_workers.role, grid_workers.staff_id) \
             IS DISTINCT FROM (EXCLUDED.phone, EXCLUDED.role, EXCLUDED.staff_id)"
        );
        let row = Row {
            feature: 3,
            values: vec![
                Value::Text("370681001001001".into()),
                Value::Text("张三".into()),
                Value::Null,
                Value::Text("full_time".into()),
                Value::Null,
            ],
            wkb: None,
        };
        let mut buffer = Vec::new();
        encode_row(&mut buffer, spec, &row, true).unwrap();
        // Six fields: the feature number and the five columns, no geometry.
        assert_eq!(&buffer[..2], &6i16.to_be_bytes());
        // Straight into the table: the five columns only.
        let mut direct = Vec::new();
        encode_row(&mut direct, spec, &row, false).unwrap();
        assert_eq!(&direct[..2], &5i16.to_be_bytes());
        assert_eq!(&direct[2..], &buffer[2 + 4 + 8..]);
    }

    #[test]
    fn upsert_updates_only_rows_that_differ() {
        let sql = upsert_from_stage_sql(LayerSpec::of(Entity::Grids), "stage");
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
            sql.ends_with(
                "WHERE (grids.name, grids.community_code, grids.kind, grids.status, grids.geom) \
                 IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.community_code, EXCLUDED.kind, EXCLUDED.status, EXCLUDED.geom) \
                 OR ((grids.worker_name, grids.worker_phone) IS DISTINCT FROM (EXCLUDED.worker_name, EXCLUDED.worker_phone) \
                 AND NOT EXISTS (SELECT 1 FROM grid_workers WHERE grid_workers.grid_code = grids.code))"
            ),
            "{sql}"
        );
    }
}
