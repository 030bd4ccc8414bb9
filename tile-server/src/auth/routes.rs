//! `POST /api/v1/auth/login`, `POST /api/v1/auth/logout`, `GET /api/v1/auth/me`
//! and `GET /api/v1/auth/may-edit/{code}`.

use super::credentials::{self, TokenKind};
use super::limits::client_key;
use super::{bearer_or_cookie, client_ip, Caller, Editor, MaybeCaller, Role, SESSION_COOKIE};
use crate::{ApiError, AppState, SharedState};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::net::IpAddr;

/// The routes of this module, merged into the application router.
pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/me", get(me))
        .route("/api/v1/auth/may-edit/{code}", get(may_edit))
}

/// The one answer to every failed login, so it tells nothing about which
/// usernames exist or are disabled.
const LOGIN_REFUSED: &str = "wrong username or password";

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct LoginResponse {
    token: String,
    expires_at: String,
    role: Role,
    scopes: Vec<String>,
}

/// The client address the socket saw, if any.
struct ClientIp(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(ClientIp(client_ip(parts)))
    }
}

async fn login(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|err| ApiError::BadRequest(err.body_text()))?;
    let username = request.username.trim();
    check_login_limits(&state, ip, username)?;

    let record = if username.is_empty() || username.len() > 64 {
        None
    } else {
        gridmap_store::access_queries::login_record(&state.pool, username)
            .await
            .map_err(ApiError::internal)?
    };
    // Argon2 takes tens of milliseconds of CPU: off the async workers. An
    // unknown user is verified against a dummy hash so it takes as long (the
    // dummy itself is made on first use, on the blocking pool as well).
    let phc = record.as_ref().map(|record| record.password_hash.clone());
    let password = request.password;
    let password_ok = tokio::task::spawn_blocking(move || match phc.as_deref() {
        Some(phc) => credentials::verify_password(&password, phc),
        None => credentials::verify_password(&password, credentials::dummy_password_hash()),
    })
    .await
    .map_err(|err| anyhow::anyhow!("verifying a password: {err}"))?;
    let (record, role) = match record {
        Some(record) if password_ok && !record.disabled => match Role::of_user(&record.role) {
            Some(role) => (record, role),
            None => return Err(anyhow::anyhow!("user {username} has role {}", record.role).into()),
        },
        record => {
            let reason = match record {
                None => "unknown user",
                Some(_) if !password_ok => "wrong password",
                Some(_) => "user disabled",
            };
            tracing::warn!(username, ip = ?ip, reason, "login refused");
            return Err(ApiError::Unauthorized(LOGIN_REFUSED.into()));
        }
    };

    let token = credentials::new_session_token();
    let ttl_s = i64::try_from(state.auth.config().session_ttl.as_secs()).unwrap_or(i64::MAX);
    let expires_at = gridmap_store::access_queries::create_session(
        &state.pool,
        record.user_id,
        &credentials::token_sha256(&token),
        ttl_s,
    )
    .await
    .map_err(ApiError::internal)?;
    tracing::info!(username, role = role.as_str(), "logged in");
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={ttl_s}"
    );
    let body = LoginResponse {
        token,
        expires_at,
        role,
        scopes: if role == Role::Planner {
            record.scopes
        } else {
            Vec::new()
        },
    };
    Ok(with_cookie(Json(body).into_response(), &cookie))
}

/// 429 when the client address or the username has tried too often.
fn check_login_limits(
    state: &AppState,
    ip: Option<IpAddr>,
    username: &str,
) -> Result<(), ApiError> {
    let inner = &state.auth.inner;
    let by_ip = match (inner.login_by_ip.as_ref(), ip) {
        (Some(limiter), Some(ip)) => limiter.check(&client_key(ip)),
        _ => Ok(()),
    };
    // Usernames are limited as given (bounded in length), whether they exist
    // or not, so the limit itself reveals nothing.
    let limited_name: String = username.chars().take(64).collect();
    let result = by_ip.and_then(|()| match inner.login_by_user.as_ref() {
        Some(limiter) => limiter.check(&limited_name),
        None => Ok(()),
    });
    result.map_err(|retry_after_s| {
        tracing::warn!(username, ip = ?ip, retry_after_s, "login refused: rate limit");
        ApiError::TooManyRequests {
            message: "too many login attempts; retry later".into(),
            retry_after_s,
        }
    })
}

/// Ends the session presented (bearer token or cookie) and clears the cookie.
/// Logging out twice, or with no session, is not an error.
async fn logout(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = bearer_or_cookie(&headers)? {
        match credentials::token_kind(&token) {
            Some(TokenKind::ApiKey) => {
                return Err(ApiError::BadRequest(
                    "an API key has no session; revoke it with gridmap-admin key revoke".into(),
                ));
            }
            Some(TokenKind::Session) => {
                let hash = credentials::token_sha256(&token);
                gridmap_store::access_queries::delete_session(&state.pool, &hash)
                    .await
                    .map_err(ApiError::internal)?;
                state.auth.forget(&hash).await;
            }
            None => {}
        }
    }
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0");
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie))
}

/// Who the credentials stand for, and what that role may see.
async fn me(MaybeCaller(caller): MaybeCaller) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(caller) = caller else {
        tracing::warn!(
            caller = "anonymous",
            reason = "no credentials",
            "who-am-I denied"
        );
        return Err(ApiError::Unauthorized("not logged in".into()));
    };
    let may_see_personal_data = caller.may_see_personal_data();
    let Caller { name, role, scopes } = caller;
    Ok(Json(serde_json::json!({
        "name": name,
        "role": role,
        "scopes": scopes,
        "may_see_personal_data": may_see_personal_data,
    })))
}

/// 204 when the caller may edit the object with this code, else 401 or 403:
/// the web map asks before it offers to edit.
async fn may_edit(
    Editor(caller): Editor,
    Path(code): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_write(&code)?;
    Ok(StatusCode::NO_CONTENT)
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
