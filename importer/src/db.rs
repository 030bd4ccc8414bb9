//! Checks that need the database (codes already stored, parents, geometry
//! validity by PostGIS) and the batched inserts.
//!
//! Table and column names in the SQL below come from the constant alias table
//! in [`crate::fields`], never from input, so formatting them in is safe.

use std::collections::{HashMap, HashSet};

use gridmap_model::STORAGE_SRID;
use sqlx::{PgConnection, Row as _};

use crate::check::{CheckedLayer, Row, Value};
use crate::fields::{GeometryKind, LayerSpec, ValueKind};
use crate::problem::{ImportError, Problems};
use crate::{Entity, ImportMode, Problem};

/// Rows per INSERT statement: large enough that round trips do not matter,
/// small enough to keep each message to a few megabytes.
const BATCH_ROWS: usize = 5_000;

/// Blocks other writers of the tables this import fills until it commits, so
/// the duplicate checks below stay true until the inserts. Readers (the tile
/// server) are not blocked.
pub(crate) async fn lock_tables(
    connection: &mut PgConnection,
    layers: &[CheckedLayer],
) -> Result<(), ImportError> {
    let mut tables: Vec<&str> = layers
        .iter()
        .map(|layer| layer.spec.entity.table())
        .collect();
    tables.dedup();
    if tables.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
        tables.join(", ")
    );
    sqlx::query(&sql)
        .execute(connection)
        .await
        .map_err(ImportError::database("locking the tables to import into"))?;
    Ok(())
}

/// Records codes already stored, references to parents found nowhere, and
/// geometries PostGIS considers invalid.
pub(crate) async fn check_against_database(
    connection: &mut PgConnection,
    layers: &[CheckedLayer],
    mode: ImportMode,
    problems: &mut Problems,
) -> Result<(), ImportError> {
    let imported = imported_codes(layers);
    for layer in layers {
        // Upsert and replace update stored codes, so only insert refuses them.
        if mode == ImportMode::Insert {
            check_existing(connection, layer, problems).await?;
        }
        check_references(connection, layer, &imported, problems).await?;
        check_geometry(connection, layer, problems).await?;
    }
    Ok(())
}

/// For `--mode replace`: deletes the stored rows of `entity` whose codes
/// `layers` do not contain (every row, for roads). Returns the rows deleted,
/// or the problem when other tables still reference some of them; the
/// transaction is then unusable and must be rolled back.
pub(crate) async fn delete_missing(
    connection: &mut PgConnection,
    entity: Entity,
    layers: &[CheckedLayer],
) -> Result<Result<u64, Problem>, ImportError> {
    let table = entity.table();
    let spec = LayerSpec::of(entity);
    // An empty list of kept codes deletes every row, which is also what a
    // replace of roads (no code) needs.
    let kept: Vec<String> = match spec.key.and_then(|key| spec.field_index(key)) {
        None => Vec::new(),
        Some(key) => layers
            .iter()
            .filter(|layer| layer.spec.entity == entity)
            .flat_map(|layer| &layer.rows)
            .filter_map(|row| row.values[key].as_text().map(str::to_owned))
            .collect(),
    };
    let condition = if spec.key.is_some() {
        "WHERE code <> ALL($1::text[])"
    } else {
        "WHERE cardinality($1::text[]) = 0"
    };
    // DELETE rather than TRUNCATE: TRUNCATE would block the tile server's
    // reads of the table until the import commits.
    let sql = format!(
        "WITH gone AS (DELETE FROM {table} {condition} RETURNING 1) SELECT count(*) FROM gone"
    );
    let query = sqlx::query_scalar::<_, i64>(&sql).bind(kept);
    match query.fetch_one(connection).await {
        Ok(count) => Ok(Ok(u64::try_from(count).unwrap_or_default())),
        Err(err)
            if err.as_database_error().and_then(|db| db.code()).as_deref() == Some("23503") =>
        {
            let detail = err
                .as_database_error()
                .and_then(|db| db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
                .and_then(|db| db.detail().map(str::to_owned))
                .unwrap_or_default();
            let file = layers
                .iter()
                .find(|layer| layer.spec.entity == entity)
                .map_or(table, |layer| layer.file_name.as_str());
            Ok(Err(Problem::layer(
                file,
                None,
                format!(
                    "--mode replace would delete rows of {table} that the import does not contain, \
                     but other tables still reference them ({detail}); import the referencing \
                     layer with --mode replace too, or use --mode upsert"
                ),
            )))
        }
        Err(err) => Err(ImportError::database(format!(
            "deleting replaced rows of {table}"
        ))(err)),
    }
}

/// Writes the rows of `layer` in batches and returns how many rows changed:
/// inserted, or (in upsert and replace modes) updated because a value differed.
pub(crate) async fn insert_layer(
    connection: &mut PgConnection,
    spec: &LayerSpec,
    rows: Vec<Row>,
    mode: ImportMode,
    progress: &crate::ImportOptions,
) -> Result<u64, ImportError> {
    // Rows without a code (roads) cannot be matched; replace emptied their
    // table already, so they are plain inserts.
    let sql = match mode {
        ImportMode::Upsert | ImportMode::Replace if spec.key.is_some() => upsert_sql(spec),
        _ => insert_sql(spec),
    };
    let mut inserted = 0;
    let mut rows = rows.into_iter();
    loop {
        let mut batch: Vec<Row> = rows.by_ref().take(BATCH_ROWS).collect();
        if batch.is_empty() {
            break;
        }
        let mut query = sqlx::query(&sql);
        for (index, field) in spec.fields.iter().enumerate() {
            let column = batch.iter().map(|row| &row.values[index]);
            query = match field.value {
                ValueKind::Integer { .. } => query.bind(
                    column
                        .map(|value| match value {
                            Value::Integer(number) => Some(*number),
                            _ => None,
                        })
                        .collect::<Vec<Option<i32>>>(),
                ),
                ValueKind::PositiveReal => query.bind(
                    column
                        .map(|value| match value {
                            Value::Real(number) => Some(*number),
                            _ => None,
                        })
                        .collect::<Vec<Option<f64>>>(),
                ),
                // A ragged text[][] cannot be unnested row by row, so each
                // list travels as a JSON array and is unpacked in SQL.
                ValueKind::List => query.bind(
                    column
                        .map(|value| match value {
                            Value::List(items) => {
                                serde_json::Value::from(items.clone()).to_string()
                            }
                            _ => "[]".to_owned(),
                        })
                        .collect::<Vec<String>>(),
                ),
                ValueKind::Code(_) | ValueKind::Id | ValueKind::Text | ValueKind::Choice(_) => {
                    query.bind(
                        column
                            .map(|value| value.as_text().map(str::to_owned))
                            .collect::<Vec<Option<String>>>(),
                    )
                }
            };
        }
        let geometries: Vec<Vec<u8>> = batch
            .iter_mut()
            .map(|row| row.wkb.take().unwrap_or_default())
            .collect();
        let result = query
            .bind(geometries)
            .execute(&mut *connection)
            .await
            .map_err(ImportError::database(format!(
                "inserting into {}",
                spec.entity.table()
            )))?;
        inserted += result.rows_affected();
        progress.advance(batch.len() as u64);
    }
    Ok(inserted)
}

/// The codes each entity gets from this import.
fn imported_codes(layers: &[CheckedLayer]) -> HashMap<Entity, HashSet<&str>> {
    let mut codes: HashMap<Entity, HashSet<&str>> = HashMap::new();
    for layer in layers {
        let Some(key) = layer.spec.key.and_then(|key| layer.spec.field_index(key)) else {
            continue;
        };
        codes.entry(layer.spec.entity).or_default().extend(
            layer
                .rows
                .iter()
                .filter_map(|row| row.values[key].as_text()),
        );
    }
    codes
}

/// Which of `codes` exist in `entity`'s table.
pub(crate) async fn stored_codes(
    connection: &mut PgConnection,
    entity: Entity,
    codes: Vec<String>,
) -> Result<HashSet<String>, ImportError> {
    if codes.is_empty() {
        return Ok(HashSet::new());
    }
    let sql = format!("SELECT code FROM {} WHERE code = ANY($1)", entity.table());
    let found: Vec<String> = sqlx::query_scalar(&sql)
        .bind(codes)
        .fetch_all(connection)
        .await
        .map_err(ImportError::database(format!(
            "looking up codes in {}",
            entity.table()
        )))?;
    Ok(found.into_iter().collect())
}

async fn check_existing(
    connection: &mut PgConnection,
    layer: &CheckedLayer,
    problems: &mut Problems,
) -> Result<(), ImportError> {
    let Some(key) = layer.spec.key.and_then(|key| layer.spec.field_index(key)) else {
        return Ok(());
    };
    let codes = layer
        .rows
        .iter()
        .filter_map(|row| row.values[key].as_text().map(str::to_owned))
        .collect();
    let table = layer.spec.entity.table();
    let stored = stored_codes(connection, layer.spec.entity, codes).await?;
    for row in &layer.rows {
        if let Some(code) = row.values[key]
            .as_text()
            .filter(|code| stored.contains(*code))
        {
            problems.push(
                layer.order,
                layer.problem(
                    row.feature,
                    Some(key),
                    format!("code {code:?} already exists in the database (table {table})"),
                ),
            );
        }
    }
    Ok(())
}

async fn check_references(
    connection: &mut PgConnection,
    layer: &CheckedLayer,
    imported: &HashMap<Entity, HashSet<&str>>,
    problems: &mut Problems,
) -> Result<(), ImportError> {
    let empty = HashSet::new();
    for (index, field) in layer.spec.fields.iter().enumerate() {
        let Some(parent) = field.references else {
            continue;
        };
        let in_import = imported.get(&parent).unwrap_or(&empty);
        let outside: HashSet<&str> = layer
            .rows
            .iter()
            .filter_map(|row| row.values[index].as_text())
            .filter(|code| !in_import.contains(code))
            .collect();
        let codes = outside.iter().map(|code| (*code).to_owned()).collect();
        let stored = stored_codes(connection, parent, codes).await?;
        let what = match field.value {
            ValueKind::Code(level) => level.as_str(),
            _ => parent.as_str(),
        };
        for row in &layer.rows {
            let Some(code) = row.values[index].as_text() else {
                continue;
            };
            if outside.contains(code) && !stored.contains(code) {
                problems.push(
                    layer.order,
                    layer.problem(
                        row.feature,
                        Some(index),
                        format!(
                            "{what} {code:?} exists neither in the database nor in this import"
                        ),
                    ),
                );
            }
        }
    }
    Ok(())
}

/// Asks PostGIS for the validity of every area and line, naming the reason
/// (`Self-intersection[x y]`, `Ring Self-intersection`, `Hole lies outside shell`, …).
async fn check_geometry(
    connection: &mut PgConnection,
    layer: &CheckedLayer,
    problems: &mut Problems,
) -> Result<(), ImportError> {
    let geometry = match layer.spec.geometry {
        // Points are valid once their coordinates passed the extent check.
        GeometryKind::Point => return Ok(()),
        GeometryKind::Area => format!("ST_Multi(ST_GeomFromWKB(u.wkb, {STORAGE_SRID}))"),
        GeometryKind::Line => format!("ST_GeomFromWKB(u.wkb, {STORAGE_SRID})"),
    };
    let sql = format!(
        "SELECT t.i, ST_IsValidReason(t.g) FROM \
           (SELECT u.i, {geometry} AS g FROM unnest($1::bytea[]) WITH ORDINALITY AS u(wkb, i)) AS t \
         WHERE NOT ST_IsValid(t.g)"
    );
    let with_geometry: Vec<&Row> = layer.rows.iter().filter(|row| row.wkb.is_some()).collect();
    for batch in with_geometry.chunks(BATCH_ROWS) {
        let wkbs: Vec<&[u8]> = batch.iter().filter_map(|row| row.wkb.as_deref()).collect();
        let invalid = sqlx::query(&sql)
            .bind(wkbs)
            .fetch_all(&mut *connection)
            .await
            .map_err(ImportError::database(format!(
                "checking geometries of {} in PostGIS",
                layer.file_name
            )))?;
        for record in invalid {
            let ordinal: i64 = record
                .try_get(0)
                .map_err(ImportError::database("reading a validity row"))?;
            let reason: String = record
                .try_get(1)
                .map_err(ImportError::database("reading a validity row"))?;
            let Some(row) = usize::try_from(ordinal - 1).ok().and_then(|i| batch.get(i)) else {
                continue;
            };
            problems.push(
                layer.order,
                layer.problem(
                    row.feature,
                    None,
                    format!("invalid geometry: {}", describe_invalid(&reason)),
                ),
            );
        }
    }
    Ok(())
}

/// `Self-intersection[120.05 37.05]` → `Self-intersection at (120.05 37.05)`.
fn describe_invalid(reason: &str) -> String {
    match reason.split_once('[') {
        Some((what, rest)) => format!("{what} at ({})", rest.trim_end_matches(']')),
        None => reason.to_owned(),
    }
}

fn insert_sql(spec: &LayerSpec) -> String {
    let columns: Vec<&str> = spec.fields.iter().map(|field| field.column).collect();
    let mut parameters = Vec::with_capacity(columns.len() + 1);
    let mut selected = Vec::with_capacity(columns.len() + 1);
    for (index, field) in spec.fields.iter().enumerate() {
        let sql_type = match field.value {
            ValueKind::Integer { .. } => "int4",
            ValueKind::PositiveReal => "float8",
            ValueKind::Code(_)
            | ValueKind::Id
            | ValueKind::Text
            | ValueKind::Choice(_)
            | ValueKind::List => "text",
        };
        parameters.push(format!("${}::{sql_type}[]", index + 1));
        selected.push(match field.value {
            ValueKind::List => format!(
                "ARRAY(SELECT jsonb_array_elements_text(t.{}::jsonb))",
                field.column
            ),
            _ => format!("t.{}", field.column),
        });
    }
    parameters.push(format!("${}::bytea[]", columns.len() + 1));
    selected.push(match spec.geometry {
        GeometryKind::Area => format!("ST_Multi(ST_GeomFromWKB(t.wkb, {STORAGE_SRID}))"),
        GeometryKind::Point | GeometryKind::Line => {
            format!("ST_GeomFromWKB(t.wkb, {STORAGE_SRID})")
        }
    });
    format!(
        "INSERT INTO {table} ({columns}, geom) SELECT {selected} FROM UNNEST({parameters}) AS t({columns}, wkb)",
        table = spec.entity.table(),
        columns = columns.join(", "),
        selected = selected.join(", "),
        parameters = parameters.join(", "),
    )
}

/// The insert statement plus, for codes already stored, an update of the
/// columns that differ. The `WHERE … IS DISTINCT FROM` leaves identical rows
/// untouched, so a re-run writes nothing, fires no change notification for
/// them, and reports 0 rows. Only for layers with a code.
fn upsert_sql(spec: &LayerSpec) -> String {
    let table = spec.entity.table();
    let key = spec.key.unwrap_or("code");
    let columns: Vec<&str> = spec
        .fields
        .iter()
        .map(|field| field.column)
        .filter(|column| *column != key)
        .chain(std::iter::once("geom"))
        .collect();
    let set: Vec<String> = columns
        .iter()
        .map(|column| format!("{column} = EXCLUDED.{column}"))
        .collect();
    let stored: Vec<String> = columns
        .iter()
        .map(|column| format!("{table}.{column}"))
        .collect();
    let excluded: Vec<String> = columns
        .iter()
        .map(|column| format!("EXCLUDED.{column}"))
        .collect();
    format!(
        "{insert} ON CONFLICT ({key}) DO UPDATE SET {set} WHERE ({stored}) IS DISTINCT FROM ({excluded})",
        insert = insert_sql(spec),
        set = set.join(", "),
        stored = stored.join(", "),
        excluded = excluded.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_sql_updates_only_rows_that_differ() {
        let sql = upsert_sql(LayerSpec::of(Entity::Grids));
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

    #[test]
    fn insert_sql_unnests_every_column() {
        let sql = insert_sql(LayerSpec::of(Entity::Stations));
        assert!(sql.starts_with("INSERT INTO stations (code, kind, name, community_code, grid_code, area_m2, amenities, opening_hours, geom)"), "{sql}");
        assert!(sql.contains("$6::float8[]"), "{sql}");
        assert!(
            sql.contains("ARRAY(SELECT jsonb_array_elements_text(t.amenities::jsonb))"),
            "{sql}"
        );
        assert!(sql.ends_with("$9::bytea[]) AS t(code, kind, name, community_code, grid_code, area_m2, amenities, opening_hours, wkb)"), "{sql}");
        assert!(insert_sql(LayerSpec::of(Entity::Grids))
            .contains("ST_Multi(ST_GeomFromWKB(t.wkb, 4490))"));
    }

    #[test]
    fn invalid_reasons_read_as_sentences() {
        assert_eq!(
            describe_invalid("Self-intersection[120.05 37.05]"),
            "Self-intersection at (120.05 37.05)"
        );
        assert_eq!(describe_invalid("Too few points"), "Too few points");
    }
}
