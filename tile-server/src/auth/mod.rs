//! Access control: who the caller is and what it may do.
//!
//! - Users have a role: `admin`, `planner` (scoped to streets or communities)
//!   or `viewer`; integrating systems hold API keys (lookup only).
//! - A caller proves who it is with the session cookie `gridmap_session` (the
//!   web map) or `Authorization: Bearer <session token or API key>`.
//! - Sessions and keys live in PostgreSQL as SHA-256 hashes, so every replica
//!   sees them. A replica caches a resolved token for [`AuthConfig::cache_ttl`]
//!   (5 s by default): a session logged out elsewhere, a revoked key or a
//!   disabled user stops working on every replica within that bound, at once on
//!   the replica that handled the logout; a session never outlives its expiry.
//! - Every denial (401, 403) is logged with `tracing::warn!`.
//!
//! Handlers take [`MaybeCaller`] (public endpoints that show more to some
//! callers) or [`Editor`] (writes), then [`Caller::require_write`] per object.

pub mod credentials;
mod limits;
mod personal_data;
mod routes;

use crate::{ApiError, SharedState};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use credentials::TokenKind;
use limits::{client_key, KeyedLimiter};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) use personal_data::grid_worker;
pub use personal_data::{GridWorker, WorkerCache};
pub(crate) use routes::routes;

/// The cookie that carries a session token for the web map.
pub const SESSION_COOKIE: &str = "gridmap_session";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Planner,
    Viewer,
    /// An integrating system holding an API key.
    Integration,
}

impl Role {
    /// The role of a user as stored (`users.role`).
    fn of_user(stored: &str) -> Option<Role> {
        match stored {
            "admin" => Some(Role::Admin),
            "planner" => Some(Role::Planner),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Planner => "planner",
            Role::Viewer => "viewer",
            Role::Integration => "integration",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    /// The username, or `key:<name>` for an API key.
    pub name: String,
    pub role: Role,
    /// Street (9-digit) or community (12-digit) codes; empty unless Planner.
    pub scopes: Vec<String>,
}

impl Caller {
    /// Staff with a user account (admin, planner, viewer) may read the
    /// internal layers and reports: the gap findings name buildings and
    /// count households grid by grid. API keys are for lookups.
    #[must_use]
    pub fn is_staff(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Planner | Role::Viewer)
    }

    /// Admin, Planner (any scope) and Integration keys may see grid workers'
    /// names and phones; viewers may not.
    #[must_use]
    pub fn may_see_personal_data(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Planner | Role::Integration)
    }

    /// Ok when the caller may change the object with this administrative code
    /// (a community 12, grid 15, grid-unit 18-digit code, or a station's
    /// community code): admin always; planner when the code starts with one of
    /// its scope codes, so a street scope covers its communities and all below.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] naming the code otherwise; every denial is logged.
    pub fn require_write(&self, code: &str) -> Result<(), ApiError> {
        let reason = match self.role {
            Role::Admin => return Ok(()),
            Role::Planner
                if self
                    .scopes
                    .iter()
                    .any(|scope| code.starts_with(scope.as_str())) =>
            {
                return Ok(())
            }
            Role::Planner => "outside the planner's scopes",
            Role::Viewer => "viewers may not edit",
            Role::Integration => "API keys may not edit",
        };
        tracing::warn!(
            caller = %self.name,
            role = self.role.as_str(),
            code,
            reason,
            "write denied"
        );
        Err(ApiError::Forbidden(match self.role {
            Role::Planner => format!(
                "{} may not edit {code}: it is outside the scopes {}",
                self.name,
                self.scopes.join(", ")
            ),
            _ => format!(
                "{} may not edit {code}: role {} does not edit",
                self.name,
                self.role.as_str()
            ),
        }))
    }

    fn may_edit_at_all(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Planner)
    }
}

/// Extractor: `Some(caller)` with a valid session cookie or bearer token;
/// `None` with no credentials; [`ApiError::Unauthorized`] when credentials are
/// present but invalid, expired or revoked.
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<Caller>);

/// Extractor for write endpoints: 401 (logged) without valid credentials, 403
/// (logged) unless the role is Admin or Planner.
#[derive(Debug, Clone)]
pub struct Editor(pub Caller);

/// Extractor for internal reports: 401 (logged) without valid credentials,
/// 403 (logged) unless the caller is staff ([`Caller::is_staff`]).
#[derive(Debug, Clone)]
pub struct Staff(pub Caller);

impl FromRequestParts<SharedState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        // The rate-limit middleware may already have resolved the credentials.
        if let Some(resolved) = parts.extensions.get::<ResolvedCredentials>() {
            return match resolved {
                ResolvedCredentials::Caller(caller) => Ok(MaybeCaller(Some(caller.clone()))),
                ResolvedCredentials::Rejected(message) => {
                    Err(ApiError::Unauthorized(message.clone()))
                }
            };
        }
        match bearer_or_cookie(&parts.headers)? {
            None => Ok(MaybeCaller(None)),
            Some(token) => Ok(MaybeCaller(Some(
                state.auth.resolve(&state.pool, &token).await?,
            ))),
        }
    }
}

/// What an extractor that needs a role says when it refuses a request.
struct Refusal {
    /// The log message of every denial (`write denied` …).
    event: &'static str,
    /// Whether the caller's role may go on.
    allows: fn(&Caller) -> bool,
    /// The log reason of a role that may not.
    role_reason: &'static str,
    /// The 401 message.
    unauthorized: fn(&Parts) -> String,
    /// The 403 message.
    forbidden: fn(&Caller, &Parts) -> String,
}

/// The caller of a request that needs credentials and a role `refusal`
/// allows: 401 without credentials, 403 for another role, each logged.
async fn caller_allowed(
    parts: &mut Parts,
    state: &SharedState,
    refusal: &Refusal,
) -> Result<Caller, ApiError> {
    let MaybeCaller(caller) = MaybeCaller::from_request_parts(parts, state).await?;
    let Some(caller) = caller else {
        tracing::warn!(
            caller = "anonymous",
            uri = %parts.uri,
            reason = "no credentials",
            "{}",
            refusal.event
        );
        return Err(ApiError::Unauthorized((refusal.unauthorized)(parts)));
    };
    if !(refusal.allows)(&caller) {
        tracing::warn!(
            caller = %caller.name,
            role = caller.role.as_str(),
            uri = %parts.uri,
            reason = refusal.role_reason,
            "{}",
            refusal.event
        );
        return Err(ApiError::Forbidden((refusal.forbidden)(&caller, parts)));
    }
    Ok(caller)
}

impl FromRequestParts<SharedState> for Editor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        const REFUSAL: Refusal = Refusal {
            event: "write denied",
            allows: Caller::may_edit_at_all,
            role_reason: "role does not edit",
            unauthorized: |_| "log in or send Authorization: Bearer <token> to edit".into(),
            forbidden: |caller, _| {
                format!(
                    "{} may not edit: role {} does not edit",
                    caller.name,
                    caller.role.as_str()
                )
            },
        };
        caller_allowed(parts, state, &REFUSAL).await.map(Editor)
    }
}

impl FromRequestParts<SharedState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        const REFUSAL: Refusal = Refusal {
            event: "internal report denied",
            allows: Caller::is_staff,
            role_reason: "role may not see internal reports",
            unauthorized: |parts| {
                format!(
                    "{} is internal: log in or send Authorization: Bearer <token>",
                    parts.uri.path()
                )
            },
            forbidden: |caller, parts| {
                format!(
                    "{} may not see {}: role {} does not see internal reports",
                    caller.name,
                    parts.uri.path(),
                    caller.role.as_str()
                )
            },
        };
        caller_allowed(parts, state, &REFUSAL).await.map(Staff)
    }
}

/// Limits and lifetimes of access control; [`Default`] is what the server
/// runs with unless its flags say otherwise.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// How long a session lasts after login.
    pub session_ttl: Duration,
    /// How long a replica trusts a resolved token without asking the database:
    /// the bound on how late a logout elsewhere or a revocation takes effect.
    pub cache_ttl: Duration,
    /// Login attempts per username per minute (0: unlimited).
    pub login_per_minute_per_user: u32,
    /// Login attempts per client address per minute (0: unlimited). Higher
    /// than per username: an office often shares one address.
    pub login_per_minute_per_ip: u32,
    /// Requests per second per client address of unauthenticated callers on
    /// the public endpoints (0: unlimited).
    pub public_per_second: u32,
    /// Requests an unauthenticated client may send at once before the rate
    /// applies; covers a map that loads a screen of tiles.
    pub public_burst: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(12 * 3600),
            cache_ttl: Duration::from_secs(5),
            login_per_minute_per_user: 5,
            login_per_minute_per_ip: 20,
            // A browser map asks tens of tiles per second while panning and a
            // few hundred on a fresh screen of several layers: neither comes
            // near 200/s with a burst of 1,000.
            public_per_second: 200,
            public_burst: 1000,
        }
    }
}

/// The access-control state shared by every handler of a replica.
#[derive(Clone)]
pub struct AuthState {
    inner: Arc<AuthInner>,
}

struct AuthInner {
    config: AuthConfig,
    /// Resolved tokens by SHA-256; never invalid ones, which are always asked.
    cache: moka::future::Cache<[u8; 32], CachedCaller>,
    login_by_ip: Option<KeyedLimiter<IpAddr>>,
    login_by_user: Option<KeyedLimiter<String>>,
    public_by_ip: Option<KeyedLimiter<IpAddr>>,
    workers: WorkerCache,
}

#[derive(Clone)]
struct CachedCaller {
    caller: Caller,
    /// The end of a session; `None` for an API key.
    expires_at: Option<SystemTime>,
}

impl AuthState {
    /// Grid workers recently shown to permitted callers.
    #[must_use]
    pub fn workers(&self) -> &WorkerCache {
        &self.inner.workers
    }

    #[must_use]
    pub fn new(config: AuthConfig) -> Self {
        // Make the dummy hash now, so that the first login of an unknown user
        // takes no longer than any other.
        std::thread::spawn(credentials::dummy_password_hash);
        let minute = Duration::from_secs(60);
        let inner = AuthInner {
            cache: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(config.cache_ttl)
                .build(),
            login_by_ip: KeyedLimiter::new(
                config.login_per_minute_per_ip,
                config.login_per_minute_per_ip,
                minute,
            ),
            login_by_user: KeyedLimiter::new(
                config.login_per_minute_per_user,
                config.login_per_minute_per_user,
                minute,
            ),
            public_by_ip: KeyedLimiter::new(
                config.public_per_second,
                config.public_burst,
                Duration::from_secs(1),
            ),
            workers: WorkerCache::default(),
            config,
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    #[must_use]
    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// The caller a token stands for: from the cache, else one indexed query.
    ///
    /// # Errors
    /// [`ApiError::Unauthorized`] (logged) for a malformed, unknown, expired or
    /// revoked token; [`ApiError::Internal`] on a database error.
    pub async fn resolve(&self, pool: &sqlx::PgPool, token: &str) -> Result<Caller, ApiError> {
        let Some(kind) = credentials::token_kind(token) else {
            return Err(deny_credentials("malformed token"));
        };
        let hash = credentials::token_sha256(token);
        if let Some(cached) = self.inner.cache.get(&hash).await {
            if cached.expires_at.is_none_or(|end| end > SystemTime::now()) {
                return Ok(cached.caller);
            }
            self.inner.cache.invalidate(&hash).await;
        }
        let cached = match kind {
            TokenKind::Session => {
                let holder = gridmap_store::access_queries::session_holder(pool, &hash)
                    .await
                    .map_err(ApiError::internal)?
                    .ok_or_else(|| deny_credentials("session unknown, expired or logged out"))?;
                let role = Role::of_user(&holder.role).ok_or_else(|| {
                    anyhow::anyhow!("user {} has role {}", holder.username, holder.role)
                })?;
                CachedCaller {
                    caller: Caller {
                        name: holder.username,
                        role,
                        scopes: if role == Role::Planner {
                            holder.scopes
                        } else {
                            Vec::new()
                        },
                    },
                    expires_at: Some(
                        UNIX_EPOCH + Duration::from_secs_f64(holder.expires_at_unix.max(0.0)),
                    ),
                }
            }
            TokenKind::ApiKey => {
                let name = gridmap_store::access_queries::api_key_name(pool, &hash)
                    .await
                    .map_err(ApiError::internal)?
                    .ok_or_else(|| deny_credentials("API key unknown or revoked"))?;
                CachedCaller {
                    caller: Caller {
                        name: format!("key:{name}"),
                        role: Role::Integration,
                        scopes: Vec::new(),
                    },
                    expires_at: None,
                }
            }
        };
        self.inner.cache.insert(hash, cached.clone()).await;
        Ok(cached.caller)
    }

    /// Drops a token from this replica's cache (at logout).
    async fn forget(&self, hash: &[u8; 32]) {
        self.inner.cache.invalidate(hash).await;
    }
}

/// What the rate-limit middleware found, left for the extractors so the
/// credentials are resolved once per request.
#[derive(Clone)]
enum ResolvedCredentials {
    Caller(Caller),
    Rejected(String),
}

/// Middleware over the public routes: requests without valid credentials are
/// limited per client address ([`AuthConfig::public_per_second`]);
/// authenticated callers are exempt. Invalid credentials are not refused here
/// but by the handlers that read the caller, so a stale session cookie never
/// blanks the tiles of the web map. Without a client address (a request not
/// from a socket, as in tests) nothing is limited.
pub(crate) async fn public_rate_limit(
    State(state): State<SharedState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(limiter) = state.auth.inner.public_by_ip.as_ref() else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    let credentials = match bearer_or_cookie(&parts.headers) {
        Ok(Some(token)) => Some(state.auth.resolve(&state.pool, &token).await),
        Ok(None) => None,
        Err(rejected) => Some(Err(rejected)),
    };
    match credentials {
        Some(Ok(caller)) => {
            parts.extensions.insert(ResolvedCredentials::Caller(caller));
            return next.run(Request::from_parts(parts, body)).await;
        }
        Some(Err(ApiError::Unauthorized(message))) => {
            parts
                .extensions
                .insert(ResolvedCredentials::Rejected(message));
        }
        Some(Err(other)) => return other.into_response(),
        None => {}
    }
    if let Some(ip) = client_ip(&parts) {
        if let Err(retry_after_s) = limiter.check(&client_key(ip)) {
            // Not a denial of access: logged at debug so a flood does not
            // flood the log as well.
            tracing::debug!(%ip, retry_after_s, "public rate limit");
            return ApiError::TooManyRequests {
                message: format!(
                    "more than {} requests per second from one address without credentials; \
                     retry later or authenticate",
                    state.auth.config().public_per_second
                ),
                retry_after_s,
            }
            .into_response();
        }
    }
    next.run(Request::from_parts(parts, body)).await
}

/// The socket address the server saw, when there was a socket.
fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// The token of `Authorization: Bearer …`, else of the session cookie.
///
/// # Errors
/// [`ApiError::Unauthorized`] for an `Authorization` header of another scheme.
fn bearer_or_cookie(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().unwrap_or_default().trim();
        return match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Ok(Some(token.trim().to_owned()))
            }
            _ => Err(deny_credentials("Authorization is not Bearer")),
        };
    }
    Ok(session_cookie(headers).map(str::to_owned))
}

/// The value of the session cookie, from any `Cookie` header.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
}

/// A logged 401 for credentials that do not hold.
fn deny_credentials(reason: &'static str) -> ApiError {
    tracing::warn!(reason, "credentials refused");
    ApiError::Unauthorized(format!("invalid credentials: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planner(scopes: &[&str]) -> Caller {
        Caller {
            name: "li".into(),
            role: Role::Planner,
            scopes: scopes.iter().map(|&scope| scope.to_owned()).collect(),
        }
    }

    #[test]
    fn planners_write_inside_their_scopes_only() {
        let street = planner(&["370681001"]);
        assert!(
            street.require_write("370681001002").is_ok(),
            "community of the street"
        );
        assert!(
            street.require_write("370681001002003").is_ok(),
            "grid of the street"
        );
        assert!(street.require_write("370681002001").is_err());
        let community = planner(&["370681001002", "370681003001"]);
        assert!(community.require_write("370681001002").is_ok());
        assert!(community.require_write("370681003001009004").is_ok());
        assert!(
            community.require_write("370681001003").is_err(),
            "sibling community"
        );
        assert!(
            community.require_write("370681001").is_err(),
            "the street above"
        );
        assert!(planner(&[]).require_write("370681001002").is_err());
    }

    #[test]
    fn roles_decide_edits_and_personal_data() {
        let caller = |role| Caller {
            name: "x".into(),
            role,
            scopes: Vec::new(),
        };
        assert!(caller(Role::Admin).require_write("370681001002").is_ok());
        for role in [Role::Viewer, Role::Integration] {
            let err = caller(role).require_write("370681001002").err();
            assert!(
                matches!(&err, Some(ApiError::Forbidden(message)) if message.contains("370681001002")),
                "{err:?}"
            );
        }
        assert!(caller(Role::Admin).may_see_personal_data());
        assert!(caller(Role::Planner).may_see_personal_data());
        assert!(caller(Role::Integration).may_see_personal_data());
        assert!(!caller(Role::Viewer).may_see_personal_data());
    }

    #[test]
    fn reads_bearer_before_cookie() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_or_cookie(&headers).ok(), Some(None));
        headers.insert(
            header::COOKIE,
            "theme=dark; gridmap_session=gms_abc"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(
            bearer_or_cookie(&headers).ok(),
            Some(Some("gms_abc".into()))
        );
        headers.insert(
            header::AUTHORIZATION,
            "bearer  gmk_xyz "
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(
            bearer_or_cookie(&headers).ok(),
            Some(Some("gmk_xyz".into()))
        );
        headers.insert(
            header::AUTHORIZATION,
            "Basic dTpw".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert!(matches!(
            bearer_or_cookie(&headers),
            Err(ApiError::Unauthorized(_))
        ));
    }
}
