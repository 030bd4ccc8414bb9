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

/// Sends one GET to `app` with no socket (axum's `oneshot`), as a client on
/// host `gridmap.test` would, and returns the status and body.
///
/// # Panics
/// When the request cannot be built or the body not read.
pub async fn send(app: axum::Router, uri: &str) -> (axum::http::StatusCode, Vec<u8>) {
    let (status, _, body) = send_for_headers(app, uri).await;
    (status, body)
}

/// As [`send`], with the response's headers.
///
/// # Panics
/// As [`send`].
pub async fn send_for_headers(
    app: axum::Router,
    uri: &str,
) -> (axum::http::StatusCode, axum::http::HeaderMap, Vec<u8>) {
    send_as(app, uri, None).await
}

/// As [`send_for_headers`], with `Authorization: Bearer <token>` when given.
///
/// # Panics
/// As [`send`].
pub async fn send_as(
    app: axum::Router,
    uri: &str,
    token: Option<&str>,
) -> (axum::http::StatusCode, axum::http::HeaderMap, Vec<u8>) {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let mut request = axum::http::Request::get(uri).header("host", "gridmap.test");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .body(axum::body::Body::empty())
        .unwrap_or_else(|err| panic!("{uri}: {err}"));
    let response = app
        .oneshot(request)
        .await
        .unwrap_or_else(|err| panic!("{uri}: {err}"));
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|err| panic!("{uri}: reading the body: {err}"))
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

/// As [`send`], with the body parsed as JSON.
///
/// # Panics
/// When the body is not JSON; the panic shows it.
pub async fn send_json(
    app: axum::Router,
    uri: &str,
) -> (axum::http::StatusCode, serde_json::Value) {
    let (status, body) = send(app, uri).await;
    let json = serde_json::from_slice(&body).unwrap_or_else(|err| {
        panic!(
            "{uri}: not JSON ({err}): {}",
            String::from_utf8_lossy(&body)
        )
    });
    (status, json)
}

/// `DATABASE_URL` with the database of `pool` in place of its own, for
/// running the project's command-line tools against a test database.
///
/// # Panics
/// When `DATABASE_URL` is unset or names no database.
pub fn database_url_of(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| panic!("DATABASE_URL is unset: run the suite with scripts/test"));
    let database = pool
        .connect_options()
        .get_database()
        .unwrap_or_else(|| panic!("the pool names no database"))
        .to_owned();
    let (before_query, query) = base
        .split_once('?')
        .map_or((base.as_str(), None), |(b, q)| (b, Some(q)));
    let server = before_query
        .rsplit_once('/')
        .map_or(before_query, |(server, _)| server);
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// A binary of the workspace (`target/debug/<name>`) beside the running
/// test's executable, built by `cargo build --bins` (scripts/test does).
///
/// # Panics
/// When it has not been built.
pub fn workspace_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|err| panic!("locating the test: {err}"));
    let binary = exe
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap_or_else(|| panic!("{} has no grandparent folder", exe.display()))
        .join(name);
    assert!(
        binary.exists(),
        "{} is missing: cargo build --bins",
        binary.display()
    );
    binary
}

/// Writes a tile as `scratch/dir/z/x/y.pbf` (GDAL georeferences a tile from
/// such a path) and opens it with GDAL's MVT driver, keeping the features
/// drawn only in the clip buffer (`CLIP=NO`); `None` for an empty tile, which
/// has no layer and which GDAL cannot open.
///
/// # Panics
/// When the file cannot be written or GDAL cannot open it.
#[must_use]
pub fn open_tile_with_gdal(
    scratch: &std::path::Path,
    dir: &str,
    tile: gridmap_tiles::TileCoord,
    bytes: &[u8],
) -> Option<gdal::Dataset> {
    if bytes.is_empty() {
        return None;
    }
    let path = scratch.join(format!("{dir}/{}/{}/{}.pbf", tile.z, tile.x, tile.y));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|err| panic!("creating {}: {err}", parent.display()));
    }
    std::fs::write(&path, bytes).unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
    let options = gdal::DatasetOptions {
        open_options: Some(&["CLIP=NO"]),
        ..gdal::DatasetOptions::default()
    };
    Some(
        gdal::Dataset::open_ex(&path, options)
            .unwrap_or_else(|err| panic!("GDAL cannot open {}: {err}", path.display())),
    )
}

/// Creates user `username` with `role` and `scopes` in the database of
/// `pool` (a test's own database, never the demo city's) and returns the
/// token of a fresh one-hour session.
///
/// # Panics
/// When the user exists already or the database cannot be written.
pub async fn session_for(pool: &PgPool, username: &str, role: &str, scopes: &[&str]) -> String {
    use gridmap_server::auth::credentials;
    use gridmap_store::access_queries::{self, NewUser};
    let hash = credentials::hash_password("correct horse battery staple")
        .unwrap_or_else(|err| panic!("hashing a password: {err}"));
    let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    let id = access_queries::create_user(
        pool,
        &NewUser {
            username,
            password_hash: &hash,
            role,
            scopes: &scopes,
        },
    )
    .await
    .unwrap_or_else(|err| panic!("creating user {username}: {err}"))
    .unwrap_or_else(|| panic!("user {username} exists already"));
    let token = credentials::new_session_token();
    access_queries::create_session(pool, id, &credentials::token_sha256(&token), 3600)
        .await
        .unwrap_or_else(|err| panic!("creating a session for {username}: {err}"));
    token
}

/// Creates the API key `name` in the database of `pool` (a test's own) and
/// returns the key.
///
/// # Panics
/// When the database cannot be written.
pub async fn api_key_for(pool: &PgPool, name: &str) -> String {
    use gridmap_server::auth::credentials;
    let key = credentials::new_api_key();
    gridmap_store::access_queries::create_api_key(
        pool,
        name,
        credentials::display_prefix(&key),
        &credentials::token_sha256(&key),
    )
    .await
    .unwrap_or_else(|err| panic!("creating API key {name}: {err}"));
    key
}
