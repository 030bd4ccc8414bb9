//! `GET /health`.

use crate::{ApiError, AppState};
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

/// Ready when the database answers; reports how many grids the index holds.
pub async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    sqlx::query("SELECT 1")
        .execute(&state.pool)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "status": "ok",
        "grids": state.grid_index.load().len(),
    })))
}
