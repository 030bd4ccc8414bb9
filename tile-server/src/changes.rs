//! Follows committed changes announced by PostgreSQL (channel
//! `gridmap_changes`, see migration 0002) so that every replica rebuilds its
//! lookup index and drops exactly the cached tiles that show a change.

use crate::AppState;
use serde::Deserialize;
use sqlx::postgres::PgListener;
use std::collections::BTreeMap;
use std::time::Duration;

/// The channel the database triggers notify on.
pub const CHANNEL: &str = "gridmap_changes";

/// Notifications arriving this close together are handled as one batch, so a
/// multi-table import rebuilds the index once.
const SETTLE: Duration = Duration::from_millis(100);

/// Tables whose rows the lookup snapshot holds (directly or through the
/// chain): grids with their chain, grid units, buildings with their
/// addresses, stations, roads (walking distances to stations) and the
/// departmental grids.
const INDEXED_TABLES: &[&str] = &[
    "districts",
    "streets",
    "communities",
    "grids",
    "grid_units",
    "buildings",
    "addresses",
    "stations",
    "roads",
    "department_grids",
];

#[derive(Debug, Deserialize)]
struct Change {
    table: String,
    bbox: Option<[f64; 4]>,
}

/// Subscribes to the change channel. Call it before loading the state, so no
/// change committed in between is missed.
///
/// # Errors
/// When the listener cannot connect or subscribe.
pub async fn subscribe(pool: &sqlx::PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    tracing::info!(channel = CHANNEL, "following database changes");
    Ok(listener)
}

/// Applies changes until the process ends; run it in its own task. A lost
/// connection is re-established by sqlx, after which everything is refreshed
/// because notifications sent meanwhile are lost.
pub async fn follow_changes(mut listener: PgListener, state: AppState) {
    // The computed tile layers take seconds for a city: compute them now,
    // beside the first changes, rather than on the first tile request.
    let warming = state.clone();
    tokio::spawn(async move {
        tokio::join!(
            warming.tile_cache.warm_stored(&warming.pool),
            warming.tile_cache.warm_computed(&warming.pool)
        );
    });
    loop {
        // Extents per table; `None` means the whole table.
        let mut changed: BTreeMap<String, Option<[f64; 4]>> = BTreeMap::new();
        match listener.try_recv().await {
            Ok(Some(notification)) => record(&mut changed, notification.payload()),
            Ok(None) => {
                tracing::warn!("change listener reconnected; refreshing everything");
                for layer in gridmap_tiles::LAYERS
                    .iter()
                    .chain(gridmap_tiles::INTERNAL_LAYERS)
                {
                    changed.insert(layer.table.to_owned(), None);
                    for table in layer.computed_from {
                        changed.insert((*table).to_owned(), None);
                    }
                }
                for table in INDEXED_TABLES {
                    changed.insert((*table).to_owned(), None);
                }
            }
            Err(err) => {
                tracing::warn!(%err, "change listener failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        while let Ok(Ok(Some(notification))) =
            tokio::time::timeout(SETTLE, listener.try_recv()).await
        {
            record(&mut changed, notification.payload());
        }
        apply(&state, &changed).await;
    }
}

fn record(changed: &mut BTreeMap<String, Option<[f64; 4]>>, payload: &str) {
    let change: Change = match serde_json::from_str(payload) {
        Ok(change) => change,
        Err(err) => {
            tracing::warn!(%err, payload, "unreadable change notification");
            return;
        }
    };
    let merged = match (changed.get(&change.table), change.bbox) {
        // First change of this table.
        (None, bbox) => bbox,
        (Some(Some([w, s, e, n])), Some([w2, s2, e2, n2])) => {
            Some([w.min(w2), s.min(s2), e.max(e2), n.max(n2)])
        }
        // Either side covers the whole table.
        _ => None,
    };
    changed.insert(change.table, merged);
}

async fn apply(state: &AppState, changed: &BTreeMap<String, Option<[f64; 4]>>) {
    // The lookup index and the tiles are rebuilt side by side: neither reads
    // the other, and the tiles' one-second budget should not wait for it.
    tokio::join!(
        refresh_lookup(state, changed),
        refresh_tiles(state, changed)
    );
    tracing::info!(tables = ?changed.keys().collect::<Vec<_>>(), "applied database changes");
}

async fn refresh_lookup(state: &AppState, changed: &BTreeMap<String, Option<[f64; 4]>>) {
    if changed
        .keys()
        .any(|table| INDEXED_TABLES.contains(&table.as_str()))
    {
        // Only the parts whose tables changed are reloaded; requests keep
        // reading the previous snapshot until the new one is swapped in.
        let current = state.grid_index.load_full();
        let refreshed = crate::grid_index::refresh_lookup_index(&state.pool, &current, |table| {
            changed.contains_key(table)
        })
        .await;
        match refreshed {
            Ok(index) => state.grid_index.store(std::sync::Arc::new(index)),
            Err(err) => tracing::error!(error = format!("{err:#}"), "rebuilding the lookup index"),
        }
    }
    if changed.contains_key("grids") {
        state.auth.workers().clear();
    }
}

async fn refresh_tiles(state: &AppState, changed: &BTreeMap<String, Option<[f64; 4]>>) {
    // The generalised polygons are rebuilt before any tile is dropped, so a
    // tile encoded after the drop draws the new shapes.
    let changed_list: Vec<(String, Option<[f64; 4]>)> = changed
        .iter()
        .map(|(table, bbox)| (table.clone(), *bbox))
        .collect();
    state
        .tile_cache
        .stored_changed(&state.pool, &changed_list)
        .await;
    for (table, bbox) in state
        .tile_cache
        .polygons_changed(&state.pool, &changed_list)
        .await
    {
        state.tile_cache.invalidate(&table, bbox);
    }
    // Computed layers likewise: updated first, then their tiles dropped
    // where a feature changed.
    for (layer, bbox) in state
        .tile_cache
        .computed_changed(&state.pool, &changed_list)
        .await
    {
        state.tile_cache.invalidate_layer(layer, bbox);
    }
}
