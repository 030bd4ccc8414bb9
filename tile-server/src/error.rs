//! The one place that turns errors into HTTP status codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The client sent something wrong; the message says what.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// A body larger than the endpoint reads into memory.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A body in a format the endpoint does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No credentials, or credentials that are not valid (expired, revoked, wrong).
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials whose role or scope does not allow the request.
    #[error("{0}")]
    Forbidden(String),
    /// A write without `If-Match` on an object that has versions.
    #[error("{0}")]
    PreconditionRequired(String),
    /// `If-Match` names a version that is no longer current; `current` is the
    /// JSON of the object's current version(s), sent back so the client can merge.
    #[error("{message}")]
    PreconditionFailed {
        message: String,
        current: serde_json::Value,
    },
    /// The request conflicts with the data (a duplicate code, a row still referenced).
    #[error("{0}")]
    Conflict(String),
    /// A well-formed edit refused by validation; `findings` is a GeoJSON
    /// FeatureCollection of the offending areas (overlap, gap, outside …).
    #[error("{message}")]
    Refused {
        message: String,
        findings: serde_json::Value,
    },
    /// Over a rate limit; `retry_after_s` goes to the `Retry-After` header.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_s: u64 },
    /// Anything else: logged in full, answered with a plain 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn internal(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Internal(anyhow::Error::new(err))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::Unauthorized(message) => {
                let mut response =
                    (StatusCode::UNAUTHORIZED, Json(json!({ "error": message }))).into_response();
                response.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer realm=\"gridmap\""),
                );
                return response;
            }
            ApiError::Forbidden(message) => (StatusCode::FORBIDDEN, message),
            ApiError::PreconditionRequired(message) => (StatusCode::PRECONDITION_REQUIRED, message),
            ApiError::PreconditionFailed { message, current } => {
                return (
                    StatusCode::PRECONDITION_FAILED,
                    Json(json!({ "error": message, "current": current })),
                )
                    .into_response();
            }
            ApiError::Conflict(message) => (StatusCode::CONFLICT, message),
            ApiError::Refused { message, findings } => {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({ "error": message, "findings": findings })),
                )
                    .into_response();
            }
            ApiError::TooManyRequests {
                message,
                retry_after_s,
            } => {
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({ "error": message })),
                )
                    .into_response();
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(retry_after_s),
                );
                return response;
            }
            ApiError::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            ApiError::NotFound(message) => (StatusCode::NOT_FOUND, message),
            ApiError::PayloadTooLarge(message) => (StatusCode::PAYLOAD_TOO_LARGE, message),
            ApiError::UnsupportedMediaType(message) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
            }
            ApiError::Internal(err) => {
                // The chain goes to the log inside the request span, never to
                // the client: it may name tables, hosts or queries.
                tracing::error!(error = format!("{err:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal server error".to_owned(),
                )
            }
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}
