//! `gridmap-db`: manage the project-local PostgreSQL cluster.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use gridmap_store::LocalCluster;
use std::io::Write as _;

#[derive(Parser)]
#[command(version, about = "Manage the project-local PostgreSQL+PostGIS cluster")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the cluster if needed, start it, and print its URL.
    Start,
    /// Stop the cluster.
    Stop,
    /// Print the URL the tools use (DATABASE_URL if set, else the local cluster's).
    Url,
    /// Create (or re-create) an empty database in the cluster in force, apply the
    /// migrations, and print its URL.
    Fresh {
        /// Name of the database.
        name: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let line = match cli.command {
        Cmd::Start => LocalCluster::discover()?
            .ensure_running()
            .context("starting the local cluster")?,
        Cmd::Stop => {
            LocalCluster::discover()?
                .stop()
                .context("stopping the local cluster")?;
            "stopped".to_owned()
        }
        Cmd::Url => gridmap_store::database_url()?,
        Cmd::Fresh { name } => fresh_database(&name).await?,
    };
    writeln!(std::io::stdout(), "{line}").context("writing to stdout")?;
    Ok(())
}

async fn fresh_database(name: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "database name {name:?} must be ASCII letters, digits and underscores"
    );
    let url = gridmap_store::database_url()?;
    let admin = gridmap_store::connect_url(&url, 1).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .with_context(|| format!("dropping database {name}"))?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .with_context(|| format!("creating database {name}"))?;
    let fresh = with_database(&url, name);
    gridmap_store::connect_url(&fresh, 1)
        .await
        .with_context(|| format!("migrating database {name}"))?;
    Ok(fresh)
}

/// Replaces the database name in a PostgreSQL URL, keeping host and options.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}
