//! `gridmap-server`: serve tiles, lookups and the web map.

use anyhow::Context as _;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use tower_http::compression::CompressionLayer;

#[derive(Parser)]
#[command(
    version,
    about = "Serve gridmap's vector tiles, lookup API and web map"
)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "GRIDMAP_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Folder of the built web map (served at /); omit to serve none.
    #[arg(long, env = "GRIDMAP_WEB_ROOT")]
    web_root: Option<PathBuf>,
    /// Upper bound of the in-memory tile cache, in megabytes.
    #[arg(long, default_value_t = 256)]
    tile_cache_mb: u64,
    /// Database connections in the pool.
    #[arg(long, default_value_t = 16)]
    db_connections: u32,
    /// Requests per second per client address of unauthenticated callers on
    /// every API and tile route (0: no limit). Authenticated callers are exempt.
    #[arg(long, env = "GRIDMAP_PUBLIC_RATE_LIMIT", default_value_t = 200)]
    public_rate_limit: u32,
    /// Requests an unauthenticated client address may send at once before
    /// --public-rate-limit applies.
    #[arg(long, env = "GRIDMAP_PUBLIC_BURST", default_value_t = 1000)]
    public_burst: u32,
    /// Login attempts per username per minute (0: no limit).
    #[arg(long, default_value_t = 5)]
    login_rate_limit: u32,
    /// Login attempts per client address per minute (0: no limit).
    #[arg(long, default_value_t = 20)]
    login_ip_rate_limit: u32,
    /// Hours a login session lasts.
    #[arg(long, default_value_t = 12)]
    session_hours: u64,
    /// Font files (or collections) whose faces serve the style's glyphs;
    /// repeat or separate with commas. A missing file is logged and skipped.
    #[arg(
        long = "font-file",
        env = "GRIDMAP_FONT_FILES",
        value_delimiter = ',',
        default_values = gridmap_server::DEBIAN_FONT_FILES
    )]
    font_files: Vec<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let pool = gridmap_store::connect(cli.db_connections)
        .await
        .context("connecting to the database")?;
    let listener = gridmap_server::subscribe(&pool)
        .await
        .context("subscribing to database changes")?;
    let mut state = gridmap_server::AppState::load(pool, cli.tile_cache_mb * 1024 * 1024)
        .await
        .context("loading grids into the index")?;
    state.auth = gridmap_server::AuthState::new(gridmap_server::AuthConfig {
        session_ttl: std::time::Duration::from_secs(cli.session_hours * 3600),
        login_per_minute_per_user: cli.login_rate_limit,
        login_per_minute_per_ip: cli.login_ip_rate_limit,
        public_per_second: cli.public_rate_limit,
        public_burst: cli.public_burst,
        ..gridmap_server::AuthConfig::default()
    });
    state.style_assets = gridmap_server::StyleAssets::open(&cli.font_files);
    tokio::spawn(gridmap_server::follow_changes(listener, state.clone()));
    let app = gridmap_server::app(state, cli.web_root).layer(CompressionLayer::new());
    let listener = tokio::net::TcpListener::bind(cli.bind)
        .await
        .with_context(|| format!("binding {}", cli.bind))?;
    let local = listener.local_addr().context("reading the bound address")?;
    tracing::info!("gridmap-server listening on http://{local}/");
    // The peer address feeds the per-address rate limits.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("serving HTTP")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
