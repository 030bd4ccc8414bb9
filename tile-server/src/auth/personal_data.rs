//! Personal data in answers: only for callers whose role may see it, read
//! from PostGIS by grid and never held in the lookup snapshot. A small cache
//! of workers by grid code spares the query on repeated lookups; it is
//! emptied whenever the grids table changes (`changes.rs`) and entries live
//! at most a second, so an edited worker shows within a second either way.

#[cfg(doc)]
use super::Caller;
use crate::ApiError;
use serde::Serialize;
use std::sync::Arc;

/// A grid's worker as `GET /api/v1/lookup` shows it to permitted callers.
#[derive(Debug, Clone, Serialize)]
pub struct GridWorker {
    pub name: Option<String>,
    pub phone: Option<String>,
}

/// The worker of grid `code` for a lookup answer: from the cache, else one
/// query by the grid's primary key. The caller checks first that the
/// requester may see personal data ([`Caller::may_see_personal_data`]), so
/// anonymous callers and viewers never cause a query.
///
/// # Errors
/// [`ApiError::Internal`] on a database error.
pub(crate) async fn grid_worker(
    pool: &sqlx::PgPool,
    workers: &WorkerCache,
    code: &Arc<str>,
) -> Result<Option<GridWorker>, ApiError> {
    let code = Arc::clone(code);
    workers
        .cache
        .try_get_with(Arc::clone(&code), async move {
            gridmap_store::access_queries::grid_worker(pool, &code)
                .await
                .map(|worker| {
                    worker.map(|worker| GridWorker {
                        name: worker.name,
                        phone: worker.phone,
                    })
                })
        })
        .await
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("reading a grid's worker: {err}")))
}

/// Workers by grid code (None: the grid has none), for permitted callers.
#[derive(Clone)]
pub struct WorkerCache {
    cache: moka::future::Cache<Arc<str>, Option<GridWorker>>,
}

impl Default for WorkerCache {
    fn default() -> Self {
        Self {
            cache: moka::future::Cache::builder()
                .max_capacity(200_000)
                .time_to_live(std::time::Duration::from_secs(1))
                .build(),
        }
    }
}

impl WorkerCache {
    /// Forgets every worker: the grids table changed.
    pub fn clear(&self) {
        self.cache.invalidate_all();
    }
}
