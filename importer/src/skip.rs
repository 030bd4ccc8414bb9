//! `--skip-invalid`: removes the rejected features from the layers, then the
//! features whose parent was removed and exists nowhere else, each with a
//! reason of its own.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use sqlx::PgConnection;

use crate::check::CheckedLayer;
use crate::fields::ValueKind;
use crate::problem::{ImportError, Problems};
use crate::{db, Entity};

/// Drops every row with a problem and, in dependency order, every row whose
/// parent code was dropped and is not stored in the database either.
/// Returns how many rows were dropped.
pub(crate) async fn drop_rejected(
    connection: &mut PgConnection,
    layers: &mut [CheckedLayer],
    problems: &mut Problems,
) -> Result<u64, ImportError> {
    let mut rejected = problems.rejected_features();
    // Codes of dropped rows per entity, with the file and feature that
    // carried them, and the codes of rows kept.
    let mut gone: HashMap<Entity, HashMap<String, (String, u64)>> = HashMap::new();
    let mut kept: HashMap<Entity, HashSet<String>> = HashMap::new();
    // Per parent entity: the dropped codes that neither a kept row of the
    // import (the first of two duplicates) nor the database provides.
    let mut missing: HashMap<Entity, HashMap<String, (String, u64)>> = HashMap::new();
    let mut count = 0;
    // Layers are sorted by entity, so every parent layer is filtered before
    // its children are looked at.
    for layer in layers.iter_mut() {
        for (column, field) in layer.spec.fields.iter().enumerate() {
            let Some(parent) = field.references else {
                continue;
            };
            if let Entry::Vacant(slot) = missing.entry(parent) {
                let candidates: HashMap<String, (String, u64)> = gone
                    .get(&parent)
                    .map(|codes| {
                        codes
                            .iter()
                            .filter(|(code, _)| {
                                !kept.get(&parent).is_some_and(|kept| kept.contains(*code))
                            })
                            .map(|(code, at)| (code.clone(), at.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                let codes = candidates.keys().cloned().collect();
                let stored = db::stored_codes(&mut *connection, parent, codes).await?;
                let candidates = candidates
                    .into_iter()
                    .filter(|(code, _)| !stored.contains(code))
                    .collect();
                slot.insert(candidates);
            }
            let Some(parent_missing) = missing.get(&parent) else {
                continue;
            };
            let what = match field.value {
                ValueKind::Code(level) => level.as_str(),
                _ => parent.as_str(),
            };
            for row in &layer.rows {
                let Some(code) = row.values[column].as_text() else {
                    continue;
                };
                let Some((file, feature)) = parent_missing.get(code) else {
                    continue;
                };
                if !rejected.insert((layer.order, row.feature)) {
                    continue;
                }
                problems.push(
                    layer.order,
                    layer.problem(
                        row.feature,
                        Some(column),
                        format!(
                            "skipped because its {what} {code:?} ({file} feature {feature}) was skipped"
                        ),
                    ),
                );
            }
        }
        let order = layer.order;
        let entity = layer.spec.entity;
        let before = layer.rows.len();
        let (rows, dropped): (Vec<_>, Vec<_>) = std::mem::take(&mut layer.rows)
            .into_iter()
            .partition(|row| !rejected.contains(&(order, row.feature)));
        layer.rows = rows;
        count += (before - layer.rows.len()) as u64;
        let Some(key) = layer.spec.key.and_then(|key| layer.spec.field_index(key)) else {
            continue;
        };
        let gone = gone.entry(entity).or_default();
        for row in dropped {
            if let Some(code) = row.values[key].as_text() {
                gone.insert(code.to_owned(), (layer.file_name.clone(), row.feature));
            }
        }
        kept.entry(entity).or_default().extend(
            layer
                .rows
                .iter()
                .filter_map(|row| row.values[key].as_text().map(str::to_owned)),
        );
    }
    Ok(count)
}
