//! `--skip-invalid`: flags the rejected features in their staging tables,
//! then the features whose parent was rejected and exists nowhere else, each
//! with a reason of its own.

use std::collections::HashMap;

use sqlx::PgConnection;

use crate::check::StagedLayer;
use crate::db::stages_of;
use crate::fields::{LayerSpec, ValueKind};
use crate::problem::{ImportError, Problems};

/// Flags every staged row with a problem and, in dependency order, every row
/// whose parent code was rejected and is neither kept by another row of the
/// import nor stored in the database. Returns how many rows were flagged;
/// the writes leave them out.
pub(crate) async fn drop_rejected(
    connection: &mut PgConnection,
    layers: &[StagedLayer],
    problems: &mut Problems,
) -> Result<u64, ImportError> {
    let mut rejected = problems.rejected_features();
    let by_order: HashMap<usize, &StagedLayer> =
        layers.iter().map(|layer| (layer.order, layer)).collect();
    // Layers are sorted by entity, so every parent layer is flagged before
    // its children are looked at.
    for layer in layers {
        for (column_index, field) in layer.spec.fields.iter().enumerate() {
            let Some(parent) = field.references else {
                continue;
            };
            let parent_key = LayerSpec::of(parent).key.unwrap_or("code");
            let Some(parent_rows) = stages_of(
                layers,
                parent,
                &format!("feature, {parent_key} AS code, rejected"),
            ) else {
                continue;
            };
            let column = field.column;
            let sql = format!(
                "WITH p AS MATERIALIZED ({parent_rows}), \
                 gone AS ( \
                     SELECT DISTINCT ON (code) code, o, feature FROM p \
                     WHERE rejected AND code IS NOT NULL \
                       AND NOT EXISTS (SELECT 1 FROM p kept WHERE NOT kept.rejected AND kept.code = p.code) \
                       AND NOT EXISTS (SELECT 1 FROM {parent_table} t WHERE t.{parent_key} = p.code) \
                     ORDER BY code, o, feature) \
                 SELECT c.feature, c.{column}, gone.o, gone.feature \
                 FROM {stage} c JOIN gone ON gone.code = c.{column} \
                 ORDER BY c.feature",
                parent_table = parent.table(),
                stage = layer.stage,
            );
            let orphans: Vec<(i64, String, i32, i64)> = sqlx::query_as(&sql)
                .fetch_all(&mut *connection)
                .await
                .map_err(ImportError::database(format!(
                    "looking for features of {} whose parent was skipped",
                    layer.file_name
                )))?;
            let what = match field.value {
                ValueKind::Code(level) => level.as_str(),
                _ => parent.as_str(),
            };
            for (feature, code, parent_order, parent_feature) in orphans {
                let feature = feature as u64;
                if !rejected.insert((layer.order, feature)) {
                    continue;
                }
                let file = by_order
                    .get(&(parent_order as usize))
                    .map_or("", |parent| parent.file_name.as_str());
                problems.push(
                    layer.order,
                    layer.problem(
                        feature,
                        Some(column_index),
                        format!(
                            "skipped because its {what} {code:?} ({file} feature {parent_feature}) was skipped"
                        ),
                    ),
                );
            }
        }
        let features: Vec<i64> = rejected
            .iter()
            .filter(|(order, _)| *order == layer.order)
            .map(|(_, feature)| *feature as i64)
            .collect();
        if features.is_empty() {
            continue;
        }
        sqlx::query(&format!(
            "UPDATE {} SET rejected = true WHERE feature = ANY($1)",
            layer.stage
        ))
        .bind(features)
        .execute(&mut *connection)
        .await
        .map_err(ImportError::database(format!(
            "flagging the skipped features of {}",
            layer.file_name
        )))?;
    }
    Ok(rejected.len() as u64)
}
