//! Checks that need the database (codes already stored, parents, geometry
//! validity by PostGIS) and the deletes of a replace; the writes are in
//! `copy.rs`.
//!
//! Table and column names in the SQL below come from the constant alias table
//! in [`crate::fields`], never from input, so formatting them in is safe.

use std::collections::{HashMap, HashSet};

use gridmap_model::STORAGE_SRID;
use sqlx::{PgConnection, Row as _};

use crate::check::CheckedLayer;
use crate::fields::{GeometryKind, LayerSpec, ValueKind};
use crate::problem::{ImportError, Problems};
use crate::{Entity, ImportMode, Problem};

/// Geometries per validity query: large enough that round trips do not
/// matter, small enough to keep each message to a few megabytes.
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
///
/// With `repair`, invalid areas are repaired instead (see [`check_geometry`]);
/// the returned list says per feature what changed.
pub(crate) async fn check_against_database(
    connection: &mut PgConnection,
    layers: &mut [CheckedLayer],
    mode: ImportMode,
    repair: bool,
    problems: &mut Problems,
) -> Result<Vec<Problem>, ImportError> {
    {
        let imported = imported_codes(layers);
        for layer in layers.iter() {
            // Upsert and replace update stored codes, so only insert refuses them.
            if mode == ImportMode::Insert {
                check_existing(connection, layer, problems).await?;
            }
            check_references(connection, layer, &imported, problems).await?;
        }
    }
    let mut repaired = Vec::new();
    for layer in layers.iter_mut() {
        check_geometry(connection, layer, repair, problems, &mut repaired).await?;
    }
    Ok(repaired)
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
///
/// With `repair`, an invalid area is replaced by the polygons of
/// `ST_MakeValid` (method `structure`, which keeps the area a crossing ring
/// encloses rather than dropping it) and the change is added to `repaired`;
/// an area that repairs to nothing, and every invalid line, stays a problem.
async fn check_geometry(
    connection: &mut PgConnection,
    layer: &mut CheckedLayer,
    repair: bool,
    problems: &mut Problems,
    repaired: &mut Vec<Problem>,
) -> Result<(), ImportError> {
    let geometry = match layer.spec.geometry {
        // Points are valid once their coordinates passed the extent check.
        GeometryKind::Point => return Ok(()),
        GeometryKind::Area => format!("ST_Multi(ST_GeomFromWKB(u.wkb, {STORAGE_SRID}))"),
        GeometryKind::Line => format!("ST_GeomFromWKB(u.wkb, {STORAGE_SRID})"),
    };
    let repair_areas = repair && layer.spec.geometry == GeometryKind::Area;
    let repaired_sql = if repair_areas {
        "r.g"
    } else {
        "NULL::geometry"
    };
    let sql = format!(
        "SELECT t.i, ST_IsValidReason(t.g), ST_AsBinary({repaired_sql}), \
                ST_NumGeometries({repaired_sql}), ST_Area({repaired_sql}::geography) \
         FROM (SELECT u.i, {geometry} AS g FROM unnest($1::bytea[]) WITH ORDINALITY AS u(wkb, i)) AS t \
         CROSS JOIN LATERAL (SELECT CASE WHEN {repair_areas} AND NOT ST_IsValid(t.g) THEN \
             ST_Multi(ST_CollectionExtract(ST_MakeValid(t.g, 'method=structure'), 3)) END AS g) AS r \
         WHERE NOT ST_IsValid(t.g)"
    );
    let with_geometry: Vec<usize> = (0..layer.rows.len())
        .filter(|index| layer.rows[*index].wkb.is_some())
        .collect();
    for batch in with_geometry.chunks(BATCH_ROWS) {
        let wkbs: Vec<&[u8]> = batch
            .iter()
            .filter_map(|index| layer.rows[*index].wkb.as_deref())
            .collect();
        let invalid = sqlx::query(&sql)
            .bind(wkbs)
            .fetch_all(&mut *connection)
            .await
            .map_err(ImportError::database(format!(
                "checking geometries of {} in PostGIS",
                layer.file_name
            )))?;
        for record in invalid {
            let read = ImportError::database("reading a validity row");
            let ordinal: i64 = record.try_get(0).map_err(read)?;
            let reason: String = record
                .try_get(1)
                .map_err(ImportError::database("reading a validity row"))?;
            let fixed: Option<Vec<u8>> = record
                .try_get(2)
                .map_err(ImportError::database("reading a validity row"))?;
            let parts: Option<i32> = record
                .try_get(3)
                .map_err(ImportError::database("reading a validity row"))?;
            let area: Option<f64> = record
                .try_get(4)
                .map_err(ImportError::database("reading a validity row"))?;
            let Some(index) = usize::try_from(ordinal - 1)
                .ok()
                .and_then(|i| batch.get(i))
                .copied()
            else {
                continue;
            };
            let feature = layer.rows[index].feature;
            let described = describe_invalid(&reason);
            match (fixed, parts) {
                (Some(wkb), Some(parts)) if parts > 0 => {
                    repaired.push(layer.problem(
                        feature,
                        None,
                        format!(
                            "{described} repaired into {parts} polygon{} of {:.1} m² in all",
                            if parts == 1 { "" } else { "s" },
                            area.unwrap_or(0.0)
                        ),
                    ));
                    layer.rows[index].wkb = Some(wkb);
                }
                _ => {
                    let suffix = if repair_areas {
                        "; --repair leaves nothing of it"
                    } else {
                        ""
                    };
                    problems.push(
                        layer.order,
                        layer.problem(
                            feature,
                            None,
                            format!("invalid geometry: {described}{suffix}"),
                        ),
                    );
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_reasons_read_as_sentences() {
        assert_eq!(
            describe_invalid("Self-intersection[120.05 37.05]"),
            "Self-intersection at (120.05 37.05)"
        );
        assert_eq!(describe_invalid("Too few points"), "Too few points");
    }
}
