//! Undoing a whole write: every grid it touched goes back to its state
//! before the write, validated together, as one new audited write.
//!
//! A per-object revert cannot undo a write that changed two grids at once
//! (a moved shared edge): either grid alone back in its old shape overlaps
//! or uncovers the other. Reverting the write restores both together.

use crate::audit::{self, Entity};
use crate::children::Change;
use crate::cover::{self, Layer, Shape};
use crate::grids::{self, written};
use crate::{Actor, EditError, Parameters, Written};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::BTreeMap;

/// The codes of the objects a write touched, for scope checks before
/// [`revert_change`].
///
/// # Errors
/// [`EditError::NotFound`] for an unknown change.
pub async fn change_codes(pool: &PgPool, change_id: i64) -> Result<Vec<String>, EditError> {
    let codes: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT code FROM audit_log WHERE change_id = $1 ORDER BY code",
    )
    .bind(change_id)
    .fetch_all(pool)
    .await?;
    if codes.is_empty() {
        return Err(EditError::not_found("change", &change_id.to_string()));
    }
    Ok(codes)
}

/// Restores every grid the write `change_id` touched to its state before
/// it: grids it created are deleted, grids it deleted come back. Each grid
/// must still be as the write left it (otherwise [`EditError::Stale`]:
/// revert the later write first). The restored shapes are validated like
/// any edit, except that they may uncover what the write had covered.
///
/// # Errors
/// [`EditError::Conflict`] for a write that moved grid units, buildings or
/// stations (a split or merge: undo it with the inverse operation, whose
/// codes the history shows) or that touched stations.
pub async fn revert_change(
    pool: &PgPool,
    actor: Actor<'_>,
    params: Parameters,
    change_id: i64,
) -> Result<Written, EditError> {
    let mut tx = pool.begin().await?;
    let rows: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT entity, code, before::text, after::text FROM audit_log
          WHERE change_id = $1 ORDER BY id",
    )
    .bind(change_id)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Err(EditError::not_found("change", &change_id.to_string()));
    }
    if rows
        .iter()
        .any(|(entity, ..)| entity != Entity::Grid.name())
    {
        return Err(EditError::Conflict(format!(
            "change {change_id} moved or edited grid units, buildings or stations: undo a split with a merge, a merge with a split"
        )));
    }
    // Per grid: the state before the write's first row, after its last.
    let mut states: BTreeMap<String, (Option<Value>, Option<Value>)> = BTreeMap::new();
    for (_, code, before, after) in rows {
        let parse = |text: Option<String>| text.as_deref().map(audit::parse_json).transpose();
        let (before, after) = (parse(before)?, parse(after)?);
        let entry = states.entry(code).or_insert((before, None));
        entry.1 = after;
    }
    let communities: Vec<String> = states
        .values()
        .flat_map(|(before, after)| [before, after])
        .flatten()
        .filter_map(|state| grids::property_of(state, "community_code"))
        .collect();
    let community = communities
        .first()
        .cloned()
        .ok_or_else(|| EditError::Invalid(format!("change {change_id} names no community")))?;
    if communities.iter().any(|c| *c != community) {
        return Err(EditError::Invalid(format!(
            "change {change_id} spans several communities"
        )));
    }
    grids::lock_community(&mut tx, &community).await?;
    let codes: Vec<String> = states.keys().cloned().collect();
    let current: Vec<(String, i64)> = sqlx::query_as(
        "SELECT code, version FROM grids WHERE code = ANY($1) ORDER BY code FOR UPDATE",
    )
    .bind(&codes)
    .fetch_all(&mut *tx)
    .await?;
    let current: BTreeMap<String, i64> = current.into_iter().collect();
    for (code, (_, after)) in &states {
        let left = after
            .as_ref()
            .and_then(|a| a.pointer("/properties/version"))
            .and_then(Value::as_i64);
        if current.get(code).copied() != left {
            return Err(EditError::Stale {
                message: format!(
                    "grid {code} changed after change {change_id}: revert the later change first"
                ),
                current: json!(current),
            });
        }
    }
    let replaced: Vec<String> = current.keys().cloned().collect();
    let mut proposed = Vec::new();
    for (code, (before, _)) in &states {
        if let Some(before) = before {
            let ewkb = grids::shape_of(before)
                .ok_or_else(|| EditError::Invalid(format!("grid {code}: no shape in the log")))?;
            proposed.push(Shape {
                code: code.clone(),
                ewkb,
            });
        }
    }
    let settled = cover::settle(
        &mut tx,
        Layer::GRIDS,
        &community,
        &replaced,
        proposed,
        Parameters {
            allow_new_gap: true,
            ..params
        },
    )
    .await?;
    let new_change = audit::new_change(&mut tx).await?;
    let change = Change {
        change_id: new_change,
        actor: actor.name,
        operation: "revert",
    };
    let mut features = Vec::new();
    let mut deleted = Vec::new();
    let mut notes = Vec::new();
    for (code, (before, _)) in &states {
        let was = audit::snapshot(&mut tx, Entity::Grid, code).await?;
        match before {
            None => {
                let (children,): (i64,) = sqlx::query_as(
                    "SELECT (SELECT count(*) FROM grid_units WHERE grid_code = $1)
                          + (SELECT count(*) FROM buildings WHERE grid_code = $1)
                          + (SELECT count(*) FROM stations WHERE grid_code = $1)
                          + (SELECT count(*) FROM grid_workers WHERE grid_code = $1)",
                )
                .bind(code)
                .fetch_one(&mut *tx)
                .await?;
                if children > 0 {
                    return Err(EditError::Conflict(format!(
                        "grid {code}, created by change {change_id}, now has units, buildings, stations or people on its roster: merge it instead"
                    )));
                }
                sqlx::query("DELETE FROM grids WHERE code = $1")
                    .bind(code)
                    .execute(&mut *tx)
                    .await?;
                deleted.push(code.clone());
            }
            Some(before) => {
                let shape = settled
                    .iter()
                    .find(|s| s.code == *code)
                    .map(|s| s.ewkb.clone())
                    .unwrap_or_default();
                grids::restore(&mut tx, code, before, &shape, was.is_some()).await?;
                notes.extend(grids::roster_note(&mut tx, code, before).await?);
            }
        }
        let now = audit::snapshot(&mut tx, Entity::Grid, code).await?;
        grids::audit_grid(&mut tx, &change, code, was.as_ref(), now.as_ref()).await?;
        features.extend(now);
    }
    tx.commit().await?;
    Ok(Written {
        notes,
        ..written(new_change, features, deleted, Vec::new())
    })
}
