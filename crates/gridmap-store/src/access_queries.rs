//! Users, scopes, sessions and API keys (migration 0004), and the one read of
//! personal data: a grid's worker, for callers allowed to see it.
//!
//! Secrets never reach the database: sessions and keys are stored as the
//! SHA-256 of their token, passwords as argon2 PHC strings hashed by the caller.
//! Timestamps come back as RFC 3339 text in UTC.

use crate::StoreError;
use sqlx::PgPool;

/// The SQL that renders a `timestamptz` column as RFC 3339 in UTC.
macro_rules! rfc3339 {
    ($column:literal) => {
        concat!(
            "to_char(",
            $column,
            " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
        )
    };
}

/// A user to create; `role` is `admin`, `planner` or `viewer`.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    /// Street (9-digit) or community (12-digit) codes.
    pub scopes: &'a [String],
}

/// A user as `gridmap-admin user list` shows it.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub username: String,
    pub role: String,
    pub scopes: Vec<String>,
    pub disabled: bool,
    pub created_at: String,
}

/// What a login needs to check a password and open a session.
#[derive(Debug, Clone)]
pub struct LoginRecord {
    pub user_id: i64,
    pub password_hash: String,
    pub role: String,
    pub scopes: Vec<String>,
    pub disabled: bool,
}

/// The holder of a live session.
#[derive(Debug, Clone)]
pub struct SessionHolder {
    pub username: String,
    pub role: String,
    pub scopes: Vec<String>,
    /// Seconds since the Unix epoch at which the session ends.
    pub expires_at_unix: f64,
}

/// An API key as `gridmap-admin key list` shows it (never the secret).
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub name: String,
    pub prefix: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A grid's worker: personal data.
#[derive(Debug, Clone)]
pub struct GridWorker {
    pub name: Option<String>,
    pub phone: Option<String>,
}

/// Creates a user with its scopes in one transaction; `None` when the
/// username is taken.
///
/// # Errors
/// On a database error, including a role or scope the schema rejects.
pub async fn create_user(pool: &PgPool, user: &NewUser<'_>) -> Result<Option<i64>, StoreError> {
    let what = || format!("creating user {}", user.username);
    let mut tx = pool.begin().await.map_err(StoreError::query(what()))?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)
         ON CONFLICT (username) DO NOTHING RETURNING id",
    )
    .bind(user.username)
    .bind(user.password_hash)
    .bind(user.role)
    .fetch_optional(&mut *tx)
    .await
    .map_err(StoreError::query(what()))?;
    let Some(id) = id else {
        return Ok(None);
    };
    sqlx::query("INSERT INTO user_scopes (user_id, code) SELECT $1, unnest($2::text[])")
        .bind(id)
        .bind(user.scopes)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::query(format!(
            "adding the scopes of user {}",
            user.username
        )))?;
    tx.commit().await.map_err(StoreError::query(what()))?;
    Ok(Some(id))
}

/// Every user with its scopes, by username.
///
/// # Errors
/// On a database error.
pub async fn list_users(pool: &PgPool) -> Result<Vec<UserRecord>, StoreError> {
    let rows: Vec<(String, String, Vec<String>, bool, String)> = sqlx::query_as(concat!(
        "SELECT username, role,
                ARRAY(SELECT code FROM user_scopes WHERE user_id = users.id ORDER BY code),
                disabled, ",
        rfc3339!("created_at"),
        " FROM users ORDER BY username"
    ))
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("listing users"))?;
    Ok(rows
        .into_iter()
        .map(
            |(username, role, scopes, disabled, created_at)| UserRecord {
                username,
                role,
                scopes,
                disabled,
                created_at,
            },
        )
        .collect())
}

/// Disables or re-enables a user; disabling also ends its sessions. `false`
/// when there is no such user.
///
/// # Errors
/// On a database error.
pub async fn set_user_disabled(
    pool: &PgPool,
    username: &str,
    disabled: bool,
) -> Result<bool, StoreError> {
    let what = || format!("setting disabled={disabled} on user {username}");
    let mut tx = pool.begin().await.map_err(StoreError::query(what()))?;
    let id: Option<i64> =
        sqlx::query_scalar("UPDATE users SET disabled = $2 WHERE username = $1 RETURNING id")
            .bind(username)
            .bind(disabled)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::query(what()))?;
    let Some(id) = id else {
        return Ok(false);
    };
    if disabled {
        end_sessions_of(&mut tx, id, username).await?;
    }
    tx.commit().await.map_err(StoreError::query(what()))?;
    Ok(true)
}

/// Replaces a user's password hash and ends its sessions, so a stolen session
/// does not survive the change. `false` when there is no such user.
///
/// # Errors
/// On a database error.
pub async fn set_password(
    pool: &PgPool,
    username: &str,
    password_hash: &str,
) -> Result<bool, StoreError> {
    let what = || format!("changing the password of user {username}");
    let mut tx = pool.begin().await.map_err(StoreError::query(what()))?;
    let id: Option<i64> =
        sqlx::query_scalar("UPDATE users SET password_hash = $2 WHERE username = $1 RETURNING id")
            .bind(username)
            .bind(password_hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::query(what()))?;
    let Some(id) = id else {
        return Ok(false);
    };
    end_sessions_of(&mut tx, id, username).await?;
    tx.commit().await.map_err(StoreError::query(what()))?;
    Ok(true)
}

/// The user a login names, disabled or not.
///
/// # Errors
/// On a database error.
pub async fn login_record(
    pool: &PgPool,
    username: &str,
) -> Result<Option<LoginRecord>, StoreError> {
    let row: Option<(i64, String, String, Vec<String>, bool)> = sqlx::query_as(
        "SELECT id, password_hash, role,
                ARRAY(SELECT code FROM user_scopes WHERE user_id = users.id ORDER BY code),
                disabled
           FROM users WHERE username = $1",
    )
    .bind(username)
    .fetch_optional(pool)
    .await
    .map_err(StoreError::query(format!("reading user {username}")))?;
    Ok(row.map(
        |(user_id, password_hash, role, scopes, disabled)| LoginRecord {
            user_id,
            password_hash,
            role,
            scopes,
            disabled,
        },
    ))
}

/// Opens a session of `ttl_s` seconds for a user and returns when it ends
/// (RFC 3339). The user's expired sessions are dropped on the way, so the
/// table holds live sessions and at most one stale row per idle user.
///
/// # Errors
/// On a database error, including a token hash that is not 32 bytes.
pub async fn create_session(
    pool: &PgPool,
    user_id: i64,
    token_sha256: &[u8],
    ttl_s: i64,
) -> Result<String, StoreError> {
    let what = || format!("opening a session for user id {user_id}");
    let mut tx = pool.begin().await.map_err(StoreError::query(what()))?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND expires_at <= now()")
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::query(what()))?;
    let expires_at: String = sqlx::query_scalar(concat!(
        "INSERT INTO sessions (token_sha256, user_id, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))
         RETURNING ",
        rfc3339!("expires_at")
    ))
    .bind(token_sha256)
    .bind(user_id)
    .bind(ttl_s as f64)
    .fetch_one(&mut *tx)
    .await
    .map_err(StoreError::query(what()))?;
    tx.commit().await.map_err(StoreError::query(what()))?;
    Ok(expires_at)
}

/// The holder of the live session with this token hash: not expired, user
/// not disabled. One lookup by primary key.
///
/// # Errors
/// On a database error.
pub async fn session_holder(
    pool: &PgPool,
    token_sha256: &[u8],
) -> Result<Option<SessionHolder>, StoreError> {
    let row: Option<(String, String, Vec<String>, f64)> = sqlx::query_as(
        "SELECT u.username, u.role,
                ARRAY(SELECT code FROM user_scopes WHERE user_id = u.id ORDER BY code),
                extract(epoch FROM s.expires_at)::float8
           FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.token_sha256 = $1 AND s.expires_at > now() AND NOT u.disabled",
    )
    .bind(token_sha256)
    .fetch_optional(pool)
    .await
    .map_err(StoreError::query("reading a session"))?;
    Ok(
        row.map(|(username, role, scopes, expires_at_unix)| SessionHolder {
            username,
            role,
            scopes,
            expires_at_unix,
        }),
    )
}

/// Ends the session with this token hash; `false` when there was none.
///
/// # Errors
/// On a database error.
pub async fn delete_session(pool: &PgPool, token_sha256: &[u8]) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM sessions WHERE token_sha256 = $1")
        .bind(token_sha256)
        .execute(pool)
        .await
        .map_err(StoreError::query("ending a session"))?;
    Ok(result.rows_affected() > 0)
}

/// Stores a new API key; `false` when a live key already has this name.
///
/// # Errors
/// On a database error.
pub async fn create_api_key(
    pool: &PgPool,
    name: &str,
    prefix: &str,
    secret_sha256: &[u8],
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO api_keys (name, prefix, secret_sha256) VALUES ($1, $2, $3)
         ON CONFLICT (name) WHERE revoked_at IS NULL DO NOTHING",
    )
    .bind(name)
    .bind(prefix)
    .bind(secret_sha256)
    .execute(pool)
    .await
    .map_err(StoreError::query(format!("creating API key {name}")))?;
    Ok(result.rows_affected() > 0)
}

/// The name of the live (not revoked) API key with this secret hash.
///
/// # Errors
/// On a database error.
pub async fn api_key_name(
    pool: &PgPool,
    secret_sha256: &[u8],
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar("SELECT name FROM api_keys WHERE secret_sha256 = $1 AND revoked_at IS NULL")
        .bind(secret_sha256)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::query("reading an API key"))
}

/// Every API key, live ones first, then by name.
///
/// # Errors
/// On a database error.
pub async fn list_api_keys(pool: &PgPool) -> Result<Vec<ApiKeyRecord>, StoreError> {
    let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(concat!(
        "SELECT name, prefix, ",
        rfc3339!("created_at"),
        ", ",
        rfc3339!("revoked_at"),
        " FROM api_keys ORDER BY revoked_at IS NOT NULL, name, created_at"
    ))
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("listing API keys"))?;
    Ok(rows
        .into_iter()
        .map(|(name, prefix, created_at, revoked_at)| ApiKeyRecord {
            name,
            prefix,
            created_at,
            revoked_at,
        })
        .collect())
}

/// Revokes the live key of this name; `false` when there is none.
///
/// # Errors
/// On a database error.
pub async fn revoke_api_key(pool: &PgPool, name: &str) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL",
    )
    .bind(name)
    .execute(pool)
    .await
    .map_err(StoreError::query(format!("revoking API key {name}")))?;
    Ok(result.rows_affected() > 0)
}

/// The worker of one grid (personal data): only for callers whose role may
/// see it. `None` when there is no such grid.
///
/// # Errors
/// On a database error.
pub async fn grid_worker(pool: &PgPool, code: &str) -> Result<Option<GridWorker>, StoreError> {
    let row: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT worker_name, worker_phone FROM grids WHERE code = $1")
            .bind(code)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::query(format!(
                "reading the worker of grid {code}"
            )))?;
    Ok(row.map(|(name, phone)| GridWorker { name, phone }))
}

async fn end_sessions_of(
    tx: &mut sqlx::PgConnection,
    user_id: i64,
    username: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(tx)
        .await
        .map_err(StoreError::query(format!(
            "ending the sessions of user {username}"
        )))?;
    Ok(())
}
