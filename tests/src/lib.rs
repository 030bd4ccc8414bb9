//! Shared set-up of gridmap's end-to-end tests (in `tests/tests/`).
//!
//! The tests run against the demo city imported by `scripts/test` through the
//! real importer into the database named by `GRIDMAP_DEMO_DATABASE_URL`.
//! They only read it, so they may run in parallel.

use sqlx::postgres::{PgPool, PgPoolOptions};

/// The environment variable naming the imported demo-city database.
pub const DEMO_URL_VAR: &str = "GRIDMAP_DEMO_DATABASE_URL";

/// A pool on the demo-city database.
///
/// # Panics
/// When the variable is unset or the database unreachable: these tests are
/// meant to fail loudly rather than pass without their data.
pub async fn demo_pool() -> PgPool {
    let url = std::env::var(DEMO_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{DEMO_URL_VAR} is unset: run the suite with scripts/test, which imports the demo city"
        )
    });
    PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap_or_else(|err| panic!("connecting to {DEMO_URL_VAR}: {err}"))
}

/// The server's state over the demo city, as `gridmap-server` builds it.
///
/// # Panics
/// When the demo city cannot be loaded.
pub async fn demo_state() -> gridmap_server::AppState {
    gridmap_server::AppState::load(demo_pool().await, 64 * 1024 * 1024)
        .await
        .unwrap_or_else(|err| panic!("loading the demo city: {err:#}"))
}
