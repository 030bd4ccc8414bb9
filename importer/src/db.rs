//! Checks that need the whole import or the database (duplicate codes, codes
//! already stored, parents, geometry validity by PostGIS), run as set-based
//! queries over the staging tables, and the deletes of a replace; the writes
//! are in `copy.rs`.
//!
//! Table and column names in the SQL below come from the constant alias table
//! in [`crate::fields`] and the staging tables' generated names, never from
//! input, so formatting them in is safe.

use std::collections::HashMap;

use sqlx::{PgConnection, Row as _};

use crate::check::StagedLayer;
use crate::fields::{GeometryKind, LayerSpec, ValueKind};
use crate::problem::{ImportError, Problems};
use crate::{Entity, ImportMode, Problem};

/// Blocks other writers of the tables this import fills until it commits, so
/// the duplicate checks below stay true until the inserts. Readers (the tile
/// server) are not blocked.
pub(crate) async fn lock_tables(
    connection: &mut PgConnection,
    entities: &[Entity],
) -> Result<(), ImportError> {
    let mut tables: Vec<&str> = entities.iter().map(|entity| entity.table()).collect();
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

/// Records codes used twice in the import, codes already stored, references
/// to parents found nowhere, and geometries PostGIS considers invalid.
///
/// With `repair`, invalid areas are repaired in the staging tables instead
/// (see [`check_geometry`]); the returned list says per feature what changed.
pub(crate) async fn check_against_database(
    connection: &mut PgConnection,
    layers: &[StagedLayer],
    mode: ImportMode,
    repair: bool,
    problems: &mut Problems,
) -> Result<Vec<Problem>, ImportError> {
    let mut entities: Vec<Entity> = layers.iter().map(|layer| layer.spec.entity).collect();
    entities.dedup();
    for entity in entities {
        check_duplicates(connection, layers, entity, problems).await?;
    }
    for layer in layers {
        // Upsert and replace update stored codes, so only insert refuses them.
        if mode == ImportMode::Insert {
            check_existing(connection, layer, problems).await?;
        }
        check_references(connection, layer, layers, problems).await?;
    }
    let mut repaired = Vec::new();
    for layer in layers {
        check_geometry(connection, layer, repair, problems, &mut repaired).await?;
    }
    Ok(repaired)
}

/// Whether the tables' own constraints make every set-based check of
/// [`check_against_database`] for `layers`: a primary key or unique
/// constraint on the layer's key (duplicates in the import and codes already
/// stored), a foreign key on every reference column (parents found nowhere;
/// the bulk path re-adds them), and a CHECK calling `ST_IsValid(geom)` for
/// areas and lines. Then an insert that succeeds has passed them all, and one
/// that fails fails with an integrity error.
pub(crate) async fn constraints_cover(
    connection: &mut PgConnection,
    layers: &[StagedLayer],
) -> Result<bool, ImportError> {
    for layer in layers {
        let spec = layer.spec;
        let table = spec.entity.table();
        let definitions: Vec<String> = sqlx::query_scalar(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = $1::regclass AND convalidated",
        )
        .bind(table)
        .fetch_all(&mut *connection)
        .await
        .map_err(ImportError::database(format!(
            "looking up the constraints of {table}"
        )))?;
        let has = |wanted: &str| definitions.iter().any(|definition| definition == wanted);
        let validity = matches!(spec.geometry, GeometryKind::Point | GeometryKind::None)
            || definitions
                .iter()
                .any(|definition| definition.contains("st_isvalid(geom)"));
        let key = spec.key.is_none() || {
            let columns = spec.key_columns().join(", ");
            has(&format!("PRIMARY KEY ({columns})")) || has(&format!("UNIQUE ({columns})"))
        };
        let references = spec.fields.iter().all(|field| {
            field.references.is_none_or(|parent| {
                has(&format!(
                    "FOREIGN KEY ({}) REFERENCES {}({})",
                    field.column,
                    parent.table(),
                    LayerSpec::of(parent).key.unwrap_or("code")
                ))
            })
        });
        if !(validity && key && references) {
            tracing::debug!(
                table,
                validity,
                key,
                references,
                "checks run before the insert"
            );
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether `err` is a constraint refusing a row (SQLSTATE class 23:
/// unique, foreign key, check, not null).
pub(crate) fn is_integrity_violation(err: &ImportError) -> bool {
    match err {
        ImportError::Database { source, .. } => source
            .as_database_error()
            .and_then(|db| db.code())
            .is_some_and(|code| code.starts_with("23")),
        _ => false,
    }
}

/// `SELECT <order> AS o, <columns> FROM <stage> UNION ALL …` over the staging
/// tables of `entity`, or `None` when the import has none.
pub(crate) fn stages_of(layers: &[StagedLayer], entity: Entity, columns: &str) -> Option<String> {
    let parts: Vec<String> = layers
        .iter()
        .filter(|layer| layer.spec.entity == entity)
        .map(|layer| {
            format!(
                "SELECT {order}::int4 AS o, {columns} FROM {stage}",
                order = layer.order,
                stage = layer.stage
            )
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" UNION ALL "))
}

/// Reports codes that occur twice in the import, naming the first occurrence.
async fn check_duplicates(
    connection: &mut PgConnection,
    layers: &[StagedLayer],
    entity: Entity,
    problems: &mut Problems,
) -> Result<(), ImportError> {
    let spec = LayerSpec::of(entity);
    let (Some(key), Some(key_sql)) = (spec.key, spec.key_sql("")) else {
        return Ok(());
    };
    let Some(all) = stages_of(layers, entity, &format!("feature, {key_sql} AS code")) else {
        return Ok(());
    };
    // Grouping first keeps the window (a sort) to the few duplicated codes.
    let sql = format!(
        "WITH a AS MATERIALIZED ({all}), \
              twice AS (SELECT code FROM a WHERE code IS NOT NULL GROUP BY code HAVING count(*) > 1) \
         SELECT o, feature, code, first_o, first_feature FROM ( \
             SELECT a.o, a.feature, a.code, \
                    first_value(a.o) OVER w AS first_o, first_value(a.feature) OVER w AS first_feature \
             FROM a JOIN twice USING (code) \
             WINDOW w AS (PARTITION BY a.code ORDER BY a.o, a.feature)) d \
         WHERE (o, feature) <> (first_o, first_feature) \
         ORDER BY o, feature"
    );
    let rows = sqlx::query(&sql)
        .fetch_all(&mut *connection)
        .await
        .map_err(ImportError::database(format!(
            "looking for duplicate codes of {entity}"
        )))?;
    let by_order: HashMap<usize, &StagedLayer> =
        layers.iter().map(|layer| (layer.order, layer)).collect();
    let key_index = LayerSpec::of(entity).field_index(key);
    for row in rows {
        let read = || ImportError::database("reading a duplicate code");
        let order: i32 = row.try_get(0).map_err(read())?;
        let feature: i64 = row.try_get(1).map_err(read())?;
        let code: String = row.try_get(2).map_err(read())?;
        let first_order: i32 = row.try_get(3).map_err(read())?;
        let first_feature: i64 = row.try_get(4).map_err(read())?;
        let (Some(layer), Some(first)) = (
            by_order.get(&(order as usize)),
            by_order.get(&(first_order as usize)),
        ) else {
            continue;
        };
        problems.push(
            layer.order,
            layer.problem(
                feature as u64,
                key_index,
                format!(
                    "duplicate code {code:?}: already used by {} feature {first_feature}",
                    first.file_name
                ),
            ),
        );
    }
    Ok(())
}

/// For `--mode replace`: deletes the stored rows of `entity` whose codes
/// the import does not keep (every row, for roads). Returns the rows deleted,
/// or the problem when other tables still reference some of them; the
/// transaction is then unusable and must be rolled back.
pub(crate) async fn delete_missing(
    connection: &mut PgConnection,
    entity: Entity,
    layers: &[StagedLayer],
) -> Result<Result<u64, Problem>, ImportError> {
    let table = entity.table();
    let spec = LayerSpec::of(entity);
    let condition = match spec
        .key_sql("")
        .and_then(|key| stages_of(layers, entity, &format!("{key} AS code, rejected")))
    {
        Some(kept) => format!(
            "WHERE NOT EXISTS (SELECT 1 FROM ({kept}) k WHERE NOT k.rejected AND k.code = {})",
            spec.key_sql(&format!("{table}.")).unwrap_or_default()
        ),
        // Roads have no code: a replace empties the table.
        None => String::new(),
    };
    // DELETE rather than TRUNCATE: TRUNCATE would block the tile server's
    // reads of the table until the import commits.
    let sql = format!(
        "WITH gone AS (DELETE FROM {table} {condition} RETURNING 1) SELECT count(*) FROM gone"
    );
    let query = sqlx::query_scalar::<_, i64>(&sql);
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

/// Reads `(feature, text)` pairs.
async fn feature_texts(
    connection: &mut PgConnection,
    sql: &str,
    what: String,
) -> Result<Vec<(u64, String)>, ImportError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(sql)
        .fetch_all(connection)
        .await
        .map_err(ImportError::database(what))?;
    Ok(rows
        .into_iter()
        .map(|(feature, text)| (feature as u64, text))
        .collect())
}

async fn check_existing(
    connection: &mut PgConnection,
    layer: &StagedLayer,
    problems: &mut Problems,
) -> Result<(), ImportError> {
    let (Some(key), Some(stored), Some(staged)) = (
        layer.spec.key,
        layer.spec.key_sql("t."),
        layer.spec.key_sql("s."),
    ) else {
        return Ok(());
    };
    let key_index = layer.spec.field_index(key);
    let table = layer.spec.entity.table();
    let sql = format!(
        "SELECT s.feature, {staged} FROM {stage} s JOIN {table} t ON {stored} = {staged} \
         ORDER BY s.feature",
        stage = layer.stage
    );
    let found = feature_texts(
        connection,
        &sql,
        format!("looking up the codes of {} in {table}", layer.file_name),
    )
    .await?;
    for (feature, code) in found {
        problems.push(
            layer.order,
            layer.problem(
                feature,
                key_index,
                format!("code {code:?} already exists in the database (table {table})"),
            ),
        );
    }
    Ok(())
}

/// Reports references to parent codes that neither the parent's table nor
/// the import holds: one anti-join per reference column.
async fn check_references(
    connection: &mut PgConnection,
    layer: &StagedLayer,
    layers: &[StagedLayer],
    problems: &mut Problems,
) -> Result<(), ImportError> {
    for (index, field) in layer.spec.fields.iter().enumerate() {
        let Some(parent) = field.references else {
            continue;
        };
        let column = field.column;
        let parent_key = LayerSpec::of(parent).key.unwrap_or("code");
        let in_import = stages_of(layers, parent, &format!("{parent_key} AS code"))
            .map(|all| {
                format!(" AND NOT EXISTS (SELECT 1 FROM ({all}) p WHERE p.code = s.{column})")
            })
            .unwrap_or_default();
        let sql = format!(
            "SELECT s.feature, s.{column} FROM {stage} s \
             WHERE s.{column} IS NOT NULL \
               AND NOT EXISTS (SELECT 1 FROM {parent_table} t WHERE t.{parent_key} = s.{column}){in_import} \
             ORDER BY s.feature",
            stage = layer.stage,
            parent_table = parent.table(),
        );
        let missing = feature_texts(
            connection,
            &sql,
            format!("looking up the parents of {}", layer.file_name),
        )
        .await?;
        let what = match field.value {
            ValueKind::Code(level) => level.as_str(),
            _ => parent.as_str(),
        };
        for (feature, code) in missing {
            problems.push(
                layer.order,
                layer.problem(
                    feature,
                    Some(index),
                    format!("{what} {code:?} exists neither in the database nor in this import"),
                ),
            );
        }
    }
    Ok(())
}

/// Asks PostGIS for the validity of every staged area and line, naming the
/// reason (`Self-intersection[x y]`, `Ring Self-intersection`, `Hole lies
/// outside shell`, …).
///
/// With `repair`, an invalid area is replaced in the staging table by the
/// polygons of `ST_MakeValid` (method `structure`, which keeps the area a
/// crossing ring encloses rather than dropping it) and the change is added to
/// `repaired`; an area that repairs to nothing, and every invalid line, stays
/// a problem.
async fn check_geometry(
    connection: &mut PgConnection,
    layer: &StagedLayer,
    repair: bool,
    problems: &mut Problems,
    repaired: &mut Vec<Problem>,
) -> Result<(), ImportError> {
    if matches!(
        layer.spec.geometry,
        GeometryKind::Point | GeometryKind::None
    ) {
        // Points are valid once their coordinates passed the extent check.
        return Ok(());
    }
    let stage = &layer.stage;
    let repair_areas = repair && layer.spec.geometry == GeometryKind::Area;
    let fixed = if repair_areas {
        "ST_Multi(ST_CollectionExtract(ST_MakeValid(geom, 'method=structure'), 3))"
    } else {
        "NULL::geometry"
    };
    let sql = format!(
        "WITH invalid AS MATERIALIZED ( \
             SELECT feature, ST_IsValidReason(geom) AS reason, {fixed} AS fixed \
             FROM {stage} WHERE geom IS NOT NULL AND NOT ST_IsValid(geom)), \
         replaced AS ( \
             UPDATE {stage} s SET geom = i.fixed FROM invalid i \
             WHERE s.feature = i.feature AND NOT ST_IsEmpty(i.fixed)) \
         SELECT i.feature, i.reason, ST_NumGeometries(i.fixed), ST_Area(i.fixed::geography) \
         FROM invalid i ORDER BY i.feature"
    );
    let invalid = sqlx::query(&sql)
        .fetch_all(&mut *connection)
        .await
        .map_err(ImportError::database(format!(
            "checking geometries of {} in PostGIS",
            layer.file_name
        )))?;
    for record in invalid {
        let read = || ImportError::database("reading a validity row");
        let feature: i64 = record.try_get(0).map_err(read())?;
        let reason: String = record.try_get(1).map_err(read())?;
        let parts: Option<i32> = record.try_get(2).map_err(read())?;
        let area: Option<f64> = record.try_get(3).map_err(read())?;
        let feature = feature as u64;
        let described = describe_invalid(&reason);
        match parts {
            Some(parts) if parts > 0 => {
                repaired.push(layer.problem(
                    feature,
                    None,
                    format!(
                        "{described} repaired into {parts} polygon{} of {:.1} m² in all",
                        if parts == 1 { "" } else { "s" },
                        area.unwrap_or(0.0)
                    ),
                ));
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
