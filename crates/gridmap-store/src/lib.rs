//! PostGIS storage for gridmap.
//!
//! - [`connect`] opens a pool on `DATABASE_URL`, or on the project-local cluster
//!   ([`local_cluster`]) when that variable is unset, and applies the migrations.
//! - [`queries`] holds the typed reads other crates build on.

pub mod access_queries;
pub mod circle_queries;
pub mod local_cluster;
pub mod queries;
pub mod topology_queries;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::time::Duration;

pub use local_cluster::{ClusterError, LocalCluster};
pub use queries::GridRecord;

/// The schema, embedded at compile time so no build needs a live database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("connecting to {url}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("applying migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{what}")]
    Query {
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("invalid geometry in {what}: {reason}")]
    Geometry { what: String, reason: String },
}

impl StoreError {
    pub(crate) fn query(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
        let what = what.into();
        move |source| StoreError::Query { what, source }
    }
}

/// The database URL in force: `DATABASE_URL` if set, else the project-local
/// cluster's, which is created and started on first use.
///
/// # Errors
/// When the local cluster cannot be initialised or started.
pub fn database_url() -> Result<String, StoreError> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        _ => Ok(LocalCluster::discover()?.ensure_running()?),
    }
}

/// Opens a pool on [`database_url`] and brings the schema up to date.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn connect(max_connections: u32) -> Result<PgPool, StoreError> {
    let url = tokio::task::spawn_blocking(database_url)
        .await
        .map_err(|join| ClusterError::Io {
            what: "waiting for the local cluster".into(),
            source: std::io::Error::other(join),
        })??;
    connect_url(&url, max_connections).await
}

/// Settings of every session the tools open. `ST_AsMVT` writes features in
/// the order its rows arrive, so a tile's bytes (and its entity tag) follow
/// the query plan: PostgreSQL switches a prepared statement to one generic
/// plan after five runs (an index scan instead of the tile's bitmap scan, in
/// another order), and a parallel plan returns rows in any order. With a
/// custom plan per run and no parallel workers, the same data gives the same
/// plan, hence the same bytes on every run and every replica.
pub const SESSION_SETTINGS: [(&str, &str); 2] = [
    ("plan_cache_mode", "force_custom_plan"),
    ("max_parallel_workers_per_gather", "0"),
];

/// Opens a pool on `url` and brings the schema up to date.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn connect_url(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    let connect_error = |source| StoreError::Connect {
        url: redact(url),
        source,
    };
    let options = url
        .parse::<PgConnectOptions>()
        .map_err(connect_error)?
        .options(SESSION_SETTINGS);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(connect_error)?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Hides a password in a URL before it goes into an error or a log line.
#[must_use]
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("postgres:///gridmap?host=/tmp"),
            "postgres:///gridmap?host=/tmp"
        );
    }
}
