//! gridmap-server: the HTTP face of gridmap.
//!
//! - `GET /api/v1/lookup?lon=…&lat=…`: which grid owns a coordinate, with its
//!   chain, grid unit, building, address and nearest stations.
//! - `POST /api/v1/lookup/batch`: the grid chain of many points (CSV, NDJSON,
//!   JSON or GeoJSON in), streamed back in input order.
//! - `GET /api/v1/circles`, `GET /api/v1/coverage`: walking service circles
//!   of the stations of one kind and the households they cover.
//! - `GET /tiles/{layers}.json` (or `/tiles/{layers}`): TileJSON 3.0.
//! - `GET /tiles/{layers}/{z}/{x}/{y}`: Mapbox Vector Tiles (spec 2.1); a layer
//!   set holding an internal layer (`gap_findings`) needs an admin, planner or
//!   viewer (401 without credentials, 403 for API keys).
//! - `GET /style.json`: the MapLibre style of the default map over all layers.
//! - `GET /fonts/{fontstack}/{range}.pbf`: SDF glyph ranges rendered from local
//!   fonts (Noto Sans CJK), and `GET /sprites/gridmap[@2x].json|.png`: the
//!   station icons, both named by the style.
//! - `GET|POST|PATCH|DELETE /api/v1/grids…`, `/api/v1/stations…`: the editing
//!   API with versions, validation and history (see `edit.rs`).
//! - `POST /api/v1/auth/login`, `…/logout`, `GET /api/v1/auth/me`: sessions (see [`auth`]).
//! - `GET /health`: readiness for probes (answers once the database does).
//! - `GET /livez`: liveness, touching nothing; also the HTTP ceiling in benchmarks.
//! - `GET /`: the web map, served from static files.
//!
//! The server keeps no state of its own beyond caches rebuilt from PostGIS, so
//! replicas scale out behind a load balancer.

mod area_params;
pub mod auth;
mod batch;
mod changes;
mod circles;
mod edit;
mod error;
mod fonts;
pub mod gaps;
mod grid_index;
mod health;
mod lookup;
mod sprites;
mod style;
mod tiles;

use axum::extract::{FromRef, MatchedPath};
use axum::http::Request;
use axum::routing::{get, post};
use axum::Router;
use std::path::PathBuf;
use std::sync::Arc;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

pub use auth::{AuthConfig, AuthState, Caller, Editor, MaybeCaller, Role};
pub use changes::{follow_changes, subscribe};
pub use error::ApiError;
pub use fonts::{Fonts, DEBIAN_FONT_FILES};
pub use grid_index::{
    load_grid_index, load_lookup_index, refresh_lookup_index, GridChain, GridIndex, LookupIndex,
    Resolved,
};
pub use lookup::{answer as lookup_answer, LookupHit, LookupResponse};
pub use style::StyleAssets;

/// Shared, cheaply clonable state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub pool: sqlx::PgPool,
    /// The lookup snapshot (grids, grid units, buildings, stations); it
    /// dereferences to the grid index for code that needs only the grids.
    pub grid_index: Arc<arc_swap::ArcSwap<LookupIndex>>,
    pub tile_cache: tiles::TileCache,
    pub bounds: Option<[f64; 4]>,
    /// Sessions and keys cache, rate limiters; [`AuthConfig::default`] unless
    /// replaced before [`app`] is built.
    pub auth: AuthState,
    /// Glyphs and sprites of `style.json`; [`StyleAssets::debian_default`]
    /// unless replaced before [`app`] is built.
    pub style_assets: StyleAssets,
}

/// The state the router hands to every request: one reference count per
/// request instead of a clone of every field of [`AppState`] (its caches,
/// pool and limiters are each reference-counted, and cloning them all per
/// request showed as a tenth of the server's time under load).
pub type SharedState = Arc<AppState>;

impl FromRef<SharedState> for StyleAssets {
    fn from_ref(state: &SharedState) -> Self {
        state.style_assets.clone()
    }
}

impl AppState {
    /// Loads what the server holds in memory from the database.
    ///
    /// # Errors
    /// When the indexed tables or the extent cannot be read.
    pub async fn load(
        pool: sqlx::PgPool,
        tile_cache_bytes: u64,
    ) -> Result<Self, gridmap_store::StoreError> {
        let grid_index = load_lookup_index(&pool).await?;
        let bounds = gridmap_store::queries::extent(&pool).await?;
        let tile_cache = tiles::TileCache::new(tile_cache_bytes);
        // Tiles fall back to loading it on first use.
        if let Err(err) = tile_cache.load_polygons(&pool).await {
            tracing::error!(error = format!("{err:#}"), "loading the polygon layers");
        }
        Ok(Self {
            pool,
            grid_index: Arc::new(arc_swap::ArcSwap::from_pointee(grid_index)),
            tile_cache,
            bounds,
            auth: AuthState::new(AuthConfig::default()),
            style_assets: StyleAssets::debian_default(),
        })
    }
}

/// `/style.json`, `/fonts/…` and `/sprites/…` alone, needing no database.
pub fn style_asset_router(assets: StyleAssets) -> Router {
    style::routes().with_state(assets)
}

/// The application router. `web_root` holds the built web map.
pub fn app(state: AppState, web_root: Option<PathBuf>) -> Router {
    let state: SharedState = Arc::new(state);
    let router = Router::new()
        .route("/health", get(health::health))
        .route("/livez", get(health::livez))
        .route("/api/v1/lookup", get(lookup::lookup))
        .route("/api/v1/lookup/batch", post(batch::batch))
        .route("/api/v1/gaps", get(gaps::gaps))
        .route("/api/v1/circles", get(circles::circles))
        .route("/api/v1/coverage", get(circles::coverage_report))
        .route("/tiles/{layers}", get(tiles::tilejson))
        .route("/tiles/{layers}/{z}/{x}/{y}", get(tiles::tile))
        .merge(style::routes())
        .merge(auth::routes())
        .merge(edit::routes())
        // Unauthenticated callers of every route above are limited per address.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::public_rate_limit,
        ))
        .with_state(state);
    let router = match web_root {
        Some(root) => {
            router.fallback_service(ServeDir::new(root).append_index_html_on_directories(true))
        }
        None => router,
    };
    router.layer(
        TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or("static", MatchedPath::as_str);
            tracing::info_span!("http", method = %request.method(), route, uri = %request.uri())
        }),
    )
}
