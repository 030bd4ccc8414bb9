//! Access control against real PostgreSQL: logins, sessions, API keys, roles
//! and scopes, personal data in lookups, rate limits, and the `gridmap-admin`
//! CLI. Each test gets a fresh migrated database and drives the real router
//! with `oneshot`; a client address is attached where a socket would give one.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use gridmap_server::auth::credentials;
use gridmap_server::{AppState, AuthConfig, AuthState};
use gridmap_store::access_queries::{self, NewUser};
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

/// Two streets, a community in each, a grid with a worker in the first.
const SETUP: &str = "
    INSERT INTO districts VALUES ('370681', '龙口市',
        ST_Multi(ST_GeomFromText('POLYGON((120.4 37.6,120.6 37.6,120.6 37.7,120.4 37.7,120.4 37.6))', 4490)));
    INSERT INTO streets VALUES
        ('370681001', '370681', '东莱街道',
         ST_Multi(ST_GeomFromText('POLYGON((120.4 37.6,120.5 37.6,120.5 37.7,120.4 37.7,120.4 37.6))', 4490))),
        ('370681002', '370681', '龙港街道',
         ST_Multi(ST_GeomFromText('POLYGON((120.5 37.6,120.6 37.6,120.6 37.7,120.5 37.7,120.5 37.6))', 4490)));
    INSERT INTO communities VALUES
        ('370681001001', '370681001', '南苑社区', 'urban',
         ST_Multi(ST_GeomFromText('POLYGON((120.4 37.6,120.5 37.6,120.5 37.7,120.4 37.7,120.4 37.6))', 4490))),
        ('370681002001', '370681002', '港城社区', 'urban',
         ST_Multi(ST_GeomFromText('POLYGON((120.5 37.6,120.6 37.6,120.6 37.7,120.5 37.7,120.5 37.6))', 4490)));
    INSERT INTO grids (code, community_code, name, kind, status, worker_name, worker_phone, geom) VALUES
        ('370681001001001', '370681001001', '南苑社区第一网格', 'basic', 'green', '王小红', '13800001111',
         ST_Multi(ST_GeomFromText('POLYGON((120.4 37.6,120.5 37.6,120.5 37.7,120.4 37.7,120.4 37.6))', 4490))),
        ('370681002001001', '370681002001', '港城社区第一网格', 'basic', 'blue', '李大明', '13900002222',
         ST_Multi(ST_GeomFromText('POLYGON((120.5 37.6,120.6 37.6,120.6 37.7,120.5 37.7,120.5 37.6))', 4490)));";

const PASSWORD: &str = "long enough password";
/// A point inside grid 370681001001001.
const LOOKUP: &str = "/api/v1/lookup?lon=120.45&lat=37.65";

/// Limits loose enough not to interfere, unless a test sets them.
fn relaxed() -> AuthConfig {
    AuthConfig {
        login_per_minute_per_user: 1000,
        login_per_minute_per_ip: 1000,
        ..AuthConfig::default()
    }
}

async fn app_with(pool: &PgPool, config: AuthConfig) -> axum::Router {
    sqlx::raw_sql(SETUP).execute(pool).await.unwrap();
    let mut state = AppState::load(pool.clone(), 1 << 20).await.unwrap();
    state.auth = AuthState::new(config);
    gridmap_server::app(state, None)
}

async fn add_user(pool: &PgPool, username: &str, role: &str, scopes: &[&str]) {
    let scopes: Vec<String> = scopes.iter().map(|&s| s.to_owned()).collect();
    let hash = credentials::hash_password(PASSWORD).unwrap();
    let user = NewUser {
        username,
        password_hash: &hash,
        role,
        scopes: &scopes,
    };
    assert!(access_queries::create_user(pool, &user)
        .await
        .unwrap()
        .is_some());
}

async fn add_key(pool: &PgPool, name: &str) -> String {
    let key = credentials::new_api_key();
    let hash = credentials::token_sha256(&key);
    assert!(
        access_queries::create_api_key(pool, name, credentials::display_prefix(&key), &hash)
            .await
            .unwrap()
    );
    key
}

/// One request as a client would send it.
struct Call {
    method: Method,
    uri: String,
    headers: Vec<(header::HeaderName, String)>,
    body: Option<Value>,
    client: Option<SocketAddr>,
}

fn call(method: Method, uri: &str) -> Call {
    Call {
        method,
        uri: uri.to_owned(),
        headers: Vec::new(),
        body: None,
        client: None,
    }
}

impl Call {
    fn bearer(mut self, token: &str) -> Self {
        self.headers
            .push((header::AUTHORIZATION, format!("Bearer {token}")));
        self
    }
    fn cookie(mut self, token: &str) -> Self {
        self.headers.push((
            header::COOKIE,
            format!("theme=dark; gridmap_session={token}"),
        ));
        self
    }
    fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    fn from(mut self, client: &str) -> Self {
        self.client = Some(client.parse().unwrap());
        self
    }

    async fn send(self, app: &axum::Router) -> (StatusCode, HeaderMap, Value) {
        let mut request = Request::builder().method(self.method).uri(&self.uri);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let body = match &self.body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).unwrap();
        if let Some(client) = self.client {
            // What `into_make_service_with_connect_info` attaches for a socket.
            request.extensions_mut().insert(ConnectInfo(client));
        }
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, headers, json)
    }
}

async fn login(
    app: &axum::Router,
    username: &str,
    password: &str,
) -> (StatusCode, HeaderMap, Value) {
    call(Method::POST, "/api/v1/auth/login")
        .json(json!({ "username": username, "password": password }))
        .send(app)
        .await
}

async fn session(app: &axum::Router, username: &str) -> String {
    let (status, _, body) = login(app, username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

async fn status_of(app: &axum::Router, request: Call) -> StatusCode {
    request.send(app).await.0
}

/// Polls until `request` answers `expected`, failing after `limit`.
async fn answers_within(
    app: &axum::Router,
    limit: Duration,
    expected: StatusCode,
    request: impl Fn() -> Call,
) -> Duration {
    let started = Instant::now();
    loop {
        let status = status_of(app, request()).await;
        if status == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "still {status} after {limit:?}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn login_gives_a_bearer_token_and_a_secure_cookie(pool: PgPool) {
    let app = app_with(&pool, relaxed()).await;
    add_user(&pool, "li.planner", "planner", &["370681001"]).await;
    let (status, headers, body) = login(&app, "li.planner", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap();
    assert_eq!(body["role"], "planner");
    assert_eq!(body["scopes"], json!(["370681001"]));
    // The database states when the session ends: 12 h from now by default.
    let (hours, stored_hash): (f64, Vec<u8>) = sqlx::query_as(
        "SELECT (extract(epoch FROM expires_at - now()) / 3600)::float8, token_sha256 FROM sessions",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!((11.9..=12.0).contains(&hours), "{hours}");
    assert_eq!(
        stored_hash,
        credentials::token_sha256(token),
        "only the hash is stored"
    );
    let expires_at: String = sqlx::query_scalar(
        "SELECT to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM sessions",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(body["expires_at"], expires_at.as_str());

    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    let attributes: Vec<&str> = cookie.split("; ").collect();
    assert_eq!(attributes[0], format!("gridmap_session={token}"));
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(
            attributes.contains(&attribute),
            "{attribute} missing from {cookie}"
        );
    }

    for request in [
        call(Method::GET, "/api/v1/auth/me").bearer(token),
        call(Method::GET, "/api/v1/auth/me").cookie(token),
    ] {
        let (status, _, me) = request.send(&app).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["name"], "li.planner");
        assert_eq!(me["role"], "planner");
        assert_eq!(me["scopes"], json!(["370681001"]));
        assert_eq!(me["may_see_personal_data"], true);
    }
    let (status, headers, _) = call(Method::GET, "/api/v1/auth/me").send(&app).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn failed_logins_are_401_alike_and_take_as_long(pool: PgPool) {
    let app = app_with(&pool, relaxed()).await;
    add_user(&pool, "zhao", "viewer", &[]).await;
    add_user(&pool, "qian", "viewer", &[]).await;
    access_queries::set_user_disabled(&pool, "qian", true)
        .await
        .unwrap();

    let mut wrong_password = Vec::new();
    let mut unknown_user = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let (status, _, wrong) = login(&app, "zhao", "not the password").await;
        wrong_password.push(started.elapsed());
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let started = Instant::now();
        let (status, _, unknown) = login(&app, "nobody", PASSWORD).await;
        unknown_user.push(started.elapsed());
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // A disabled user with the right password gets the same answer.
        let (status, _, disabled) = login(&app, "qian", PASSWORD).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong, unknown);
        assert_eq!(wrong, disabled);
        assert_eq!(wrong["error"], "wrong username or password");
    }
    // An unknown user is checked against a dummy Argon2 hash: its median time
    // is of the same order as a wrong password's (both are mostly Argon2).
    wrong_password.sort();
    unknown_user.sort();
    let (wrong, unknown) = (wrong_password[1], unknown_user[1]);
    assert!(
        unknown * 2 > wrong && wrong * 2 > unknown,
        "wrong password {wrong:?}, unknown user {unknown:?}"
    );
    let (status, _, _) = login(&app, "zhao", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sessions, 1, "failed logins open no session");
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn logout_ends_the_session(pool: PgPool) {
    let app = app_with(&pool, relaxed()).await;
    add_user(&pool, "sun", "admin", &[]).await;
    let token = session(&app, "sun").await;
    assert_eq!(
        status_of(&app, call(Method::GET, "/api/v1/auth/me").bearer(&token)).await,
        StatusCode::OK
    );

    let (status, headers, _) = call(Method::POST, "/api/v1/auth/logout")
        .cookie(&token)
        .send(&app)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let cleared = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("gridmap_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0);
    // At once on this replica, although the token was cached.
    for request in [
        call(Method::GET, "/api/v1/auth/me").bearer(&token),
        call(Method::GET, LOOKUP).cookie(&token),
    ] {
        assert_eq!(status_of(&app, request).await, StatusCode::UNAUTHORIZED);
    }
    // Logging out again is harmless.
    assert_eq!(
        status_of(
            &app,
            call(Method::POST, "/api/v1/auth/logout").bearer(&token)
        )
        .await,
        StatusCode::NO_CONTENT
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn expired_sessions_and_disabled_users_are_refused(pool: PgPool) {
    let app = app_with(
        &pool,
        AuthConfig {
            session_ttl: Duration::from_secs(2),
            ..relaxed()
        },
    )
    .await;
    add_user(&pool, "zhou", "planner", &["370681001001"]).await;
    add_user(&pool, "wu", "planner", &["370681001001"]).await;

    // Expired in the database before first use.
    let token = session(&app, "zhou").await;
    sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    let (status, _, body) = call(Method::GET, "/api/v1/auth/me")
        .bearer(&token)
        .send(&app)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // Expiring while cached: the cache never outlives the session (2 s here).
    let token = session(&app, "zhou").await;
    assert_eq!(
        status_of(&app, call(Method::GET, "/api/v1/auth/me").bearer(&token)).await,
        StatusCode::OK
    );
    let waited = answers_within(
        &app,
        Duration::from_secs(3),
        StatusCode::UNAUTHORIZED,
        || call(Method::GET, "/api/v1/auth/me").bearer(&token),
    )
    .await;
    assert!(
        waited >= Duration::from_millis(1500),
        "refused too early: {waited:?}"
    );

    // Disabling a user ends its sessions on every replica within the cache bound.
    let token = session(&app, "wu").await;
    assert_eq!(
        status_of(&app, call(Method::GET, "/api/v1/auth/me").bearer(&token)).await,
        StatusCode::OK
    );
    assert!(access_queries::set_user_disabled(&pool, "wu", true)
        .await
        .unwrap());
    answers_within(
        &app,
        Duration::from_secs(6),
        StatusCode::UNAUTHORIZED,
        || call(Method::GET, "/api/v1/auth/me").bearer(&token),
    )
    .await;

    // Malformed and unknown tokens.
    for token in ["gms_short", &credentials::new_session_token(), "x"] {
        assert_eq!(
            status_of(&app, call(Method::GET, "/api/v1/auth/me").bearer(token)).await,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn api_keys_look_up_but_never_write(pool: PgPool) {
    let app = app_with(&pool, relaxed()).await;
    let key = add_key(&pool, "hotline-12345").await;

    let (status, _, me) = call(Method::GET, "/api/v1/auth/me")
        .bearer(&key)
        .send(&app)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["name"], "key:hotline-12345");
    assert_eq!(me["role"], "integration");
    let (status, _, lookup) = call(Method::GET, LOOKUP).bearer(&key).send(&app).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lookup["grid"]["code"], "370681001001001");

    // Writes: 403 for the key, 401 without credentials, on the real write
    // routes and on the may-edit probe.
    for uri in [
        "/api/v1/grids/370681001001001",
        "/api/v1/auth/may-edit/370681001001001",
    ] {
        let method = if uri.contains("may-edit") {
            Method::GET
        } else {
            Method::DELETE
        };
        let (status, _, body) = call(method.clone(), uri).bearer(&key).send(&app).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}: {body}");
        let (status, _, body) = call(method, uri).send(&app).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}: {body}");
    }
    let grids: i64 = sqlx::query_scalar("SELECT count(*) FROM grids")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(grids, 2, "nothing was deleted");

    // Revoked: refused within the cache bound (5 s) on a replica that has the
    // key cached, at once on one that has not.
    assert!(access_queries::revoke_api_key(&pool, "hotline-12345")
        .await
        .unwrap());
    let waited = answers_within(
        &app,
        Duration::from_secs(6),
        StatusCode::UNAUTHORIZED,
        || call(Method::GET, LOOKUP).bearer(&key),
    )
    .await;
    assert!(waited <= Duration::from_millis(5500), "{waited:?}");
    let fresh_replica = {
        let mut state = AppState::load(pool.clone(), 1 << 20).await.unwrap();
        state.auth = AuthState::new(relaxed());
        gridmap_server::app(state, None)
    };
    assert_eq!(
        status_of(&fresh_replica, call(Method::GET, LOOKUP).bearer(&key)).await,
        StatusCode::UNAUTHORIZED
    );
    // The name may be given to a new key.
    let renewed = add_key(&pool, "hotline-12345").await;
    assert_eq!(
        status_of(&app, call(Method::GET, LOOKUP).bearer(&renewed)).await,
        StatusCode::OK
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn planners_edit_within_their_scopes(pool: PgPool) {
    let app = app_with(&pool, relaxed()).await;
    add_user(&pool, "street.planner", "planner", &["370681001"]).await;
    add_user(&pool, "community.planner", "planner", &["370681002001"]).await;
    add_user(&pool, "admin", "admin", &[]).await;
    add_user(&pool, "viewer", "viewer", &[]).await;
    let street = session(&app, "street.planner").await;
    let community = session(&app, "community.planner").await;
    let admin = session(&app, "admin").await;
    let viewer = session(&app, "viewer").await;

    let check = |token: &str, code: &str, expected: StatusCode| {
        let app = app.clone();
        let (token, code) = (token.to_owned(), code.to_owned());
        async move {
            let uri = format!("/api/v1/auth/may-edit/{code}");
            let (status, _, body) = call(Method::GET, &uri).bearer(&token).send(&app).await;
            assert_eq!(status, expected, "{code}: {body}");
            if status == StatusCode::FORBIDDEN {
                // A planner is told which code is out of scope; other roles
                // are refused by the editing extractor before any code.
                let message = body["error"].as_str().unwrap();
                assert!(
                    message.contains(&code) || message.contains("does not edit"),
                    "{body}"
                );
            }
        }
    };
    // A street scope covers its communities, grids and grid units.
    check(&street, "370681001001", StatusCode::NO_CONTENT).await;
    check(&street, "370681001001001", StatusCode::NO_CONTENT).await;
    check(&street, "370681001001001002", StatusCode::NO_CONTENT).await;
    check(&street, "370681002001", StatusCode::FORBIDDEN).await;
    check(&street, "370681002001001", StatusCode::FORBIDDEN).await;
    // A community scope covers its grids, not its street or a sibling.
    check(&community, "370681002001001", StatusCode::NO_CONTENT).await;
    check(&community, "370681002", StatusCode::FORBIDDEN).await;
    check(&community, "370681002002", StatusCode::FORBIDDEN).await;
    check(&community, "370681001001001", StatusCode::FORBIDDEN).await;
    check(&admin, "370681002001001", StatusCode::NO_CONTENT).await;
    check(&viewer, "370681001001", StatusCode::FORBIDDEN).await;

    // The real write route: out of scope and viewers are refused before any
    // write; in scope passes access control (what follows is the editing API's).
    let delete = |token: &str| call(Method::DELETE, "/api/v1/grids/370681002001001").bearer(token);
    assert_eq!(
        status_of(&app, delete(&street)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(&app, delete(&viewer)).await,
        StatusCode::FORBIDDEN
    );
    let in_scope = status_of(&app, delete(&community)).await;
    assert!(
        in_scope != StatusCode::FORBIDDEN && in_scope != StatusCode::UNAUTHORIZED,
        "{in_scope}"
    );
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn workers_show_only_to_roles_that_may_see_them(pool: PgPool) {
    let app = app_with(&pool, relaxed()).await;
    add_user(&pool, "admin", "admin", &[]).await;
    // Scoped elsewhere: personal data in lookups is not limited by scope.
    add_user(&pool, "planner", "planner", &["370681002"]).await;
    add_user(&pool, "viewer", "viewer", &[]).await;
    let key = add_key(&pool, "dispatch").await;
    // The grid's roster (migration 0008): its full-time worker becomes the
    // grid's worker; the leader and the part-time worker must not show either.
    sqlx::raw_sql(
        "INSERT INTO grid_workers (grid_code, name, phone, role) VALUES
            ('370681001001001', '周网格长', '13700005555', 'grid_leader'),
            ('370681001001001', '赵专职', '13700003333', 'full_time'),
            ('370681001001001', '钱兼职', '13600004444', 'part_time')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (name, phone): (String, String) = sqlx::query_as(
        "SELECT worker_name, worker_phone FROM grids
          WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(120.45, 37.65), 4490))",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((name.as_str(), phone.as_str()), ("赵专职", "13700003333"));

    let mut permitted = vec![key];
    for user in ["admin", "planner"] {
        permitted.push(session(&app, user).await);
    }
    for token in &permitted {
        let (status, _, body) = call(Method::GET, LOOKUP).bearer(token).send(&app).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body["grid"]["worker"],
            json!({ "name": name, "phone": phone }),
            "{body}"
        );
    }
    let viewer = session(&app, "viewer").await;
    for request in [
        call(Method::GET, LOOKUP),
        call(Method::GET, LOOKUP).bearer(&viewer),
    ] {
        let (status, _, body) = request.send(&app).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["grid"]["code"], "370681001001001");
        assert!(body["grid"].get("worker").is_none(), "{body}");
        let text = body.to_string();
        assert!(!text.contains(&phone) && !text.contains(&name), "{text}");
        for roster in ["周网格长", "13700005555", "钱兼职", "13600004444", "王小红"] {
            assert!(!text.contains(roster), "{text}");
        }
    }
    // Outside every grid there is no worker to show.
    let (_, _, body) = call(Method::GET, "/api/v1/lookup?lon=120.7&lat=37.65")
        .bearer(&permitted[1])
        .send(&app)
        .await;
    assert!(body["grid"].is_null(), "{body}");
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn logins_are_rate_limited_per_username_and_per_address(pool: PgPool) {
    let app = app_with(
        &pool,
        AuthConfig {
            login_per_minute_per_ip: 8,
            ..AuthConfig::default()
        },
    )
    .await;
    add_user(&pool, "zheng", "viewer", &[]).await;
    // Five attempts per username per minute (the default), from any address.
    for attempt in 0..5 {
        let (status, _, _) = call(Method::POST, "/api/v1/auth/login")
            .json(json!({ "username": "zheng", "password": "guess" }))
            .from(&format!("10.0.0.{attempt}:5000"))
            .send(&app)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, body) = login(&app, "zheng", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry_after: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        sessions, 0,
        "a limited login does not log in, right password or not"
    );

    // Eight attempts per address per minute here, over any usernames.
    for attempt in 0..8 {
        let (status, _, _) = call(Method::POST, "/api/v1/auth/login")
            .json(json!({ "username": format!("user{attempt}"), "password": "guess" }))
            .from("192.0.2.7:4000")
            .send(&app)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let limited = call(Method::POST, "/api/v1/auth/login")
        .json(json!({ "username": "user9", "password": "guess" }))
        .from("192.0.2.7:4001")
        .send(&app)
        .await;
    assert_eq!(limited.0, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.1.contains_key(header::RETRY_AFTER));
    let other_address = call(Method::POST, "/api/v1/auth/login")
        .json(json!({ "username": "user9", "password": "guess" }))
        .from("192.0.2.8:4000")
        .send(&app)
        .await;
    assert_eq!(other_address.0, StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn public_endpoints_are_rate_limited_for_anonymous_callers(pool: PgPool) {
    let app = app_with(
        &pool,
        AuthConfig {
            public_per_second: 1,
            public_burst: 3,
            ..relaxed()
        },
    )
    .await;
    add_user(&pool, "feng", "viewer", &[]).await;
    let token = session(&app, "feng").await;
    let tile = gridmap_tiles::TileCoord::containing(120.45, 37.65, 14);
    let tile = format!("/tiles/grids/{}/{}/{}", tile.z, tile.x, tile.y);
    for uri in [LOOKUP, &tile, "/tiles/grids.json"] {
        let (status, _, body) = call(Method::GET, uri)
            .from("198.51.100.1:1000")
            .send(&app)
            .await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    }
    let (status, headers, body) = call(Method::GET, LOOKUP)
        .from("198.51.100.1:1001")
        .send(&app)
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(headers[header::RETRY_AFTER], "1");
    // Another address, an authenticated caller at the same address, and a
    // request without a socket address are not limited.
    assert_eq!(
        status_of(&app, call(Method::GET, LOOKUP).from("198.51.100.2:1000")).await,
        StatusCode::OK
    );
    for _ in 0..5 {
        assert_eq!(
            status_of(
                &app,
                call(Method::GET, LOOKUP)
                    .from("198.51.100.1:1002")
                    .cookie(&token)
            )
            .await,
            StatusCode::OK
        );
        assert_eq!(
            status_of(&app, call(Method::GET, LOOKUP)).await,
            StatusCode::OK
        );
    }
    // A stale cookie does not exempt, nor does it blank the tiles of the map.
    let stale = credentials::new_session_token();
    assert_eq!(
        status_of(
            &app,
            call(Method::GET, &tile)
                .from("198.51.100.3:1000")
                .cookie(&stale)
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(
            &app,
            call(Method::GET, LOOKUP)
                .from("198.51.100.3:1000")
                .cookie(&stale)
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    // One request per second comes back.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        status_of(&app, call(Method::GET, LOOKUP).from("198.51.100.1:1003")).await,
        StatusCode::OK
    );
}

fn admin(pool: &PgPool, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(gridmap_e2e::workspace_binary("gridmap-admin"))
        .args(args)
        .env("DATABASE_URL", gridmap_e2e::database_url_of(pool))
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[sqlx::test(migrator = "gridmap_store::MIGRATOR")]
async fn the_admin_cli_creates_users_and_keys_that_work(pool: PgPool) {
    let app = app_with(&pool, relaxed()).await;
    let (ok, _, err) = admin(
        &pool,
        &[
            "user",
            "add",
            "chen",
            "--role",
            "planner",
            "--scope",
            "370681001",
            "--scope",
            "370681002001",
            "--password-stdin",
        ],
        "correct horse battery\n",
    );
    assert!(ok, "{err}");
    let (status, _, body) = login(&app, "chen", "correct horse battery").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scopes"], json!(["370681001", "370681002001"]));
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'chen'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");

    // Refusals: a duplicate, a planner without scope, a scoped viewer, a bad code, a short password.
    for (args, stdin) in [
        (
            vec!["user", "add", "chen", "--role", "viewer"],
            "another password\n",
        ),
        (
            vec!["user", "add", "he", "--role", "planner"],
            "another password\n",
        ),
        (
            vec![
                "user",
                "add",
                "he",
                "--role",
                "viewer",
                "--scope",
                "370681001",
            ],
            "another password\n",
        ),
        (
            vec![
                "user", "add", "he", "--role", "planner", "--scope", "3706810",
            ],
            "another password\n",
        ),
        (vec!["user", "add", "he", "--role", "viewer"], "short\n"),
    ] {
        let (ok, _, err) = admin(&pool, &args, stdin);
        assert!(!ok, "{args:?} was accepted");
        assert!(!err.is_empty());
    }
    let (ok, list, _) = admin(&pool, &["user", "list"], "");
    assert!(ok);
    assert_eq!(list.lines().count(), 1, "{list}");
    assert!(
        list.starts_with("chen\tplanner\t370681001,370681002001\tactive\t"),
        "{list}"
    );

    // A new password ends the sessions opened with the old one.
    let token = body["token"].as_str().unwrap().to_owned();
    let (ok, _, err) = admin(
        &pool,
        &["user", "passwd", "chen", "--password-stdin"],
        "a new long password\n",
    );
    assert!(ok, "{err}");
    let fresh_replica = {
        let mut state = AppState::load(pool.clone(), 1 << 20).await.unwrap();
        state.auth = AuthState::new(relaxed());
        gridmap_server::app(state, None)
    };
    assert_eq!(
        status_of(
            &fresh_replica,
            call(Method::GET, "/api/v1/auth/me").bearer(&token)
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&fresh_replica, "chen", "a new long password").await.0,
        StatusCode::OK
    );
    let (ok, _, _) = admin(&pool, &["user", "disable", "chen"], "");
    assert!(ok);
    assert_eq!(
        login(&fresh_replica, "chen", "a new long password").await.0,
        StatusCode::UNAUTHORIZED
    );

    // A key is printed once, works, is listed by prefix only, and is revoked.
    let (ok, key, err) = admin(&pool, &["key", "add", "community-app"], "");
    assert!(ok, "{err}");
    let key = key.trim();
    assert!(key.starts_with("gmk_") && key.len() == 47, "{key}");
    let (status, _, body) = call(Method::GET, LOOKUP)
        .bearer(key)
        .send(&fresh_replica)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["grid"]["worker"]["name"], "王小红");
    let (ok, list, _) = admin(&pool, &["key", "list"], "");
    assert!(ok);
    assert!(
        list.starts_with(&format!("community-app\t{}…\tlive\t", &key[..12])),
        "{list}"
    );
    assert!(!list.contains(key));
    let (ok, _, _) = admin(&pool, &["key", "revoke", "community-app"], "");
    assert!(ok);
    let (ok, _, _) = admin(&pool, &["key", "revoke", "community-app"], "");
    assert!(!ok, "revoking twice is an error");
    let (ok, list, _) = admin(&pool, &["key", "list"], "");
    assert!(ok && list.contains("\trevoked "), "{list}");
    answers_within(
        &fresh_replica,
        Duration::from_secs(6),
        StatusCode::UNAUTHORIZED,
        || call(Method::GET, LOOKUP).bearer(key),
    )
    .await;
}
