//! `GET /health`.

use crate::{ApiError, SharedState};
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

/// Ready when the database answers; reports how many grids the index holds.
pub async fn health(State(state): State<SharedState>) -> Result<Json<Value>, ApiError> {
    sqlx::query("SELECT 1")
        .execute(&state.pool)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "status": "ok",
        "grids": state.grid_index.load().len(),
    })))
}

/// Liveness: the process serves HTTP. Touches neither the database nor the
/// index, so it also measures the HTTP ceiling of the machine in benchmarks.
pub async fn livez() -> &'static str {
    "ok"
}
