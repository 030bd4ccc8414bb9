//! The editing API over `gridmap-edit`: grids and stations as GeoJSON
//! Features with versions as entity tags.
//!
//! - `GET /api/v1/grids/{code}`, `GET /api/v1/stations/{code}`: the object
//!   with `ETag: "<version>"`; grid workers only for callers who may see
//!   personal data.
//! - Writes need an editing role (401/403 from [`Editor`]) and the object in
//!   the caller's scope ([`crate::Caller::require_write`], 403), and every
//!   write to an existing object needs `If-Match` with its current entity
//!   tag (428 without; 412 with the current versions when stale). A write
//!   that changes several grids (merge, shared edge) lists every grid's tag.
//! - A refused edit answers 422 with the offending areas as GeoJSON.
//! - A grid with a roster (`grid_workers`) takes its worker from it: a PATCH
//!   setting another `worker_name`/`worker_phone` answers 409 naming the
//!   roster; repeating the roster's worker passes.
//! - `…/history` lists the audit log (authenticated callers); `…/revert`
//!   restores a former version as a new write;
//!   `POST /api/v1/changes/{change_id}/revert` undoes a whole write (both
//!   grids of a moved edge).
//!
//! Tiles and lookups need nothing from here: the tables' triggers announce
//! each commit and every replica follows (`changes.rs`).

use crate::auth::{Editor, MaybeCaller};
use crate::{ApiError, AppState, Caller, SharedState};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gridmap_edit::areas::{self, AreaFields, AreaKind};
use gridmap_edit::grids::{self, GridChanges, NewGrid, Split};
use gridmap_edit::stations::{self, StationFields};
use gridmap_edit::{Actor, EditError, Entity, Expected, Parameters, Written};
use serde::Deserialize;
use serde_json::Value;

/// Columns of personal data, removed from what callers who may not see it get.
const PERSONAL_PROPERTIES: &[&str] = &["worker_name", "worker_phone"];

/// The largest snap tolerance a request may ask for: beyond a few metres
/// snapping would move edges planners meant to draw.
const MAX_SNAP_TOLERANCE_M: f64 = 5.0;

pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/grids", post(create_grid))
        .route("/api/v1/grids/merge", post(merge_grids))
        .route(
            "/api/v1/grids/{code}",
            get(get_grid).patch(update_grid).delete(delete_grid),
        )
        .route("/api/v1/grids/{code}/move-edge", post(move_edge))
        .route("/api/v1/grids/{code}/split", post(split_grid))
        .route("/api/v1/grids/{code}/revert", post(revert_grid))
        .route("/api/v1/grids/{code}/history", get(grid_history))
        .route("/api/v1/grids/{code}/buildings", post(assign_buildings))
        .route("/api/v1/changes/{change_id}/revert", post(revert_change))
        .route("/api/v1/grid-units", post(create_grid_unit))
        .route(
            "/api/v1/grid-units/{code}",
            get(get_grid_unit)
                .patch(update_grid_unit)
                .delete(delete_grid_unit),
        )
        .route("/api/v1/grid-units/{code}/history", get(grid_unit_history))
        .route("/api/v1/grid-units/{code}/revert", post(revert_grid_unit))
        .route("/api/v1/communities", post(create_community))
        .route(
            "/api/v1/communities/{code}",
            get(get_community)
                .patch(update_community)
                .delete(delete_community),
        )
        .route("/api/v1/communities/{code}/history", get(community_history))
        .route("/api/v1/communities/{code}/revert", post(revert_community))
        .route("/api/v1/stations", post(create_station))
        .route(
            "/api/v1/stations/{code}",
            get(get_station)
                .patch(update_station)
                .delete(delete_station),
        )
        .route("/api/v1/stations/{code}/history", get(station_history))
        .route("/api/v1/stations/{code}/revert", post(revert_station))
}

#[derive(Debug, Deserialize)]
pub(crate) struct EditParams {
    /// Snap tolerance in metres (default 0.5).
    snap_tolerance_m: Option<f64>,
    /// Accept a new gap in the community's cover: administrators only.
    #[serde(default)]
    leave_gap: bool,
}

impl EditParams {
    fn parameters(&self, caller: &Caller) -> Result<Parameters, ApiError> {
        let mut parameters = Parameters::default();
        if self.leave_gap {
            if caller.role != crate::Role::Admin {
                tracing::warn!(caller = %caller.name, reason = "leave_gap needs admin", "write denied");
                return Err(ApiError::Forbidden(
                    "only an administrator may leave a gap in a community's cover".into(),
                ));
            }
            parameters.allow_new_gap = true;
        }
        if let Some(tolerance) = self.snap_tolerance_m {
            if !(0.0..=MAX_SNAP_TOLERANCE_M).contains(&tolerance) {
                return Err(ApiError::BadRequest(format!(
                    "snap_tolerance_m must be between 0 and {MAX_SNAP_TOLERANCE_M} metres"
                )));
            }
            parameters.snap_tolerance_m = tolerance;
        }
        Ok(parameters)
    }
}

/// A GeoJSON Feature as a write sends it: properties and geometry are both
/// optional for an update.
#[derive(Debug, Deserialize)]
pub(crate) struct FeatureBody<P> {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default = "Option::default")]
    properties: Option<P>,
    #[serde(default)]
    geometry: Option<Value>,
}

impl<P> FeatureBody<P> {
    fn checked(self) -> Result<(Option<P>, Option<Value>), ApiError> {
        if self.kind.as_deref().is_some_and(|kind| kind != "Feature") {
            return Err(ApiError::BadRequest(
                "the body must be a GeoJSON Feature".into(),
            ));
        }
        Ok((self.properties, self.geometry.filter(|g| !g.is_null())))
    }
}

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(value)| value).map_err(|rejection| {
        ApiError::BadRequest(format!("unreadable body: {}", rejection.body_text()))
    })
}

/// `If-Match` as the versions it names; 428 without it.
fn expected(headers: &HeaderMap) -> Result<Expected, ApiError> {
    let values: Vec<&str> = headers
        .get_all(header::IF_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .collect();
    if values.is_empty() {
        return Err(ApiError::PreconditionRequired(
            "send If-Match with the ETag of the version you edited".into(),
        ));
    }
    if values.contains(&"*") {
        return Ok(Expected::Any);
    }
    values
        .iter()
        .map(|tag| {
            tag.strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .and_then(|t| t.parse::<i64>().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "If-Match {tag} is not an entity tag of this API (\"<version>\")"
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Expected::Versions)
}

pub(crate) fn edit_error(err: EditError) -> ApiError {
    match err {
        EditError::NotFound { .. } => ApiError::NotFound(err.to_string()),
        EditError::Invalid(message) => ApiError::BadRequest(message),
        EditError::Conflict(message) => ApiError::Conflict(message),
        EditError::Stale { message, current } => ApiError::PreconditionFailed { message, current },
        EditError::Refused { message, findings } => ApiError::Refused { message, findings },
        EditError::Database(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => {
            ApiError::Conflict(format!("a code is in use: {}", db.message()))
        }
        EditError::Database(sqlx::Error::Database(db))
            if matches!(db.code().as_deref(), Some("23514" | "23503" | "23502")) =>
        {
            ApiError::BadRequest(format!(
                "the data breaks a rule of the schema: {}",
                db.message()
            ))
        }
        EditError::Database(source) => ApiError::internal(source),
    }
}

/// `If-Match` for a revert: restoring a deleted object has no current
/// version to match.
fn expected_if_exists(headers: &HeaderMap, exists: bool) -> Result<Expected, ApiError> {
    if exists {
        expected(headers)
    } else {
        Ok(Expected::Any)
    }
}

/// Removes personal data unless the caller may see it.
fn for_caller(mut feature: Value, caller: Option<&Caller>) -> Value {
    if !caller.is_some_and(Caller::may_see_personal_data) {
        if let Some(properties) = feature.get_mut("properties").and_then(Value::as_object_mut) {
            for key in PERSONAL_PROPERTIES {
                properties.remove(*key);
            }
        }
    }
    feature
}

fn etag_of(feature: &Value) -> Option<HeaderValue> {
    let version = feature.pointer("/properties/version")?.as_i64()?;
    HeaderValue::from_str(&format!("\"{version}\"")).ok()
}

fn feature_response(feature: Value, caller: Option<&Caller>) -> Response {
    let etag = etag_of(&feature);
    let mut response = Json(for_caller(feature, caller)).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn written_response(status: StatusCode, written: Written, caller: &Caller) -> Response {
    let etag = match written.features.as_slice() {
        [only] => etag_of(only),
        _ => None,
    };
    let location = match (status, written.features.as_slice()) {
        (StatusCode::CREATED, [only]) => only.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    let written = Written {
        features: written
            .features
            .into_iter()
            .map(|f| for_caller(f, Some(caller)))
            .collect(),
        ..written
    };
    let mut response = (status, Json(written)).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    if let Some(code) = location {
        if let Ok(value) = HeaderValue::from_str(&code) {
            response.headers_mut().insert(header::LOCATION, value);
        }
    }
    response
}

fn actor(caller: &Caller) -> Actor<'_> {
    Actor { name: &caller.name }
}

async fn get_grid(
    State(state): State<SharedState>,
    MaybeCaller(caller): MaybeCaller,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let feature = grids::get(&state.pool, &code)
        .await
        .map_err(edit_error)?
        .ok_or_else(|| ApiError::NotFound(format!("grid {code} not found")))?;
    Ok(feature_response(feature, caller.as_ref()))
}

async fn create_grid(
    State(state): State<SharedState>,
    Editor(caller): Editor,
    Query(params): Query<EditParams>,
    request: Result<Json<FeatureBody<NewGrid>>, JsonRejection>,
) -> Result<Response, ApiError> {
    let (properties, geometry) = body(request)?.checked()?;
    let grid =
        properties.ok_or_else(|| ApiError::BadRequest("a new grid needs properties".into()))?;
    let geometry =
        geometry.ok_or_else(|| ApiError::BadRequest("a new grid needs a geometry".into()))?;
    let scope_code = grid
        .community_code
        .clone()
        .or_else(|| grid.code.clone())
        .unwrap_or_default();
    caller.require_write(&scope_code)?;
    if let Some(code) = &grid.code {
        caller.require_write(code)?;
    }
    let written = grids::create(
        &state.pool,
        actor(&caller),
        params.parameters(&caller)?,
        grid,
        &geometry,
    )
    .await
    .map_err(edit_error)?;
    Ok(written_response(StatusCode::CREATED, written, &caller))
}

async fn update_grid(
    State(state): State<SharedState>,
    Editor(caller): Editor,
    Path(code): Path<String>,
    Query(params): Query<EditParams>,
    headers: HeaderMap,
    request: Result<Json<FeatureBody<GridChanges>>, JsonRejection>,
) -> Result<Response, ApiError> {
    caller.require_write(&code)?;
    let expected = expected(&headers)?;
    let (changes, geometry) = body(request)?.checked()?;
    let written = grids::update(
        &state.pool,
        actor(&caller),
        params.parameters(&caller)?,
        &code,
        &expected,
        changes.unwrap_or_default(),
        geometry.as_ref(),
    )
    .await
    .map_err(edit_error)?;
    Ok(written_response(StatusCode::OK, written, &caller))
}

async fn delete_grid(
    State(state): State<SharedState>,
    Editor(caller): Editor,
    Path(code): Path<String>,
    Query(params): Query<EditParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require_write(&code)?;
    let expected = expected(&headers)?;
    let written = grids::delete(
        &state.pool,
        actor(&caller),
        params.parameters(&caller)?,
        &code,
        &expected,
    )
    .await
    .map_err(edit_error)?;
    Ok(written_response(StatusCode::OK, written, &caller))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoveEdge {
    /// The grid on the other side of the edge.
    neighbour: String,
    /// The new shape of the grid named in the path.
    geometry: Value,
}

async fn move_edge(
    State(state): State<SharedState>,
    Editor(caller): Editor,
    Path(code): Path<String>,
    Query(params): Query<EditParams>,
    headers: HeaderMap,
    request: Result<Json<MoveEdge>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = body(request)?;
    caller.require_write(&code)?;
    caller.require_write(&request.neighbour)?;
    let expected = expected(&headers)?;
    let written = grids::move_shared_edge(
        &state.pool,
        actor(&caller),
        params.parameters(&caller)?,
        &code,
        &request.neighbour,
        &expected,
        &request.geometry,
    )
    .await
    .map_err(edit_error)?;
    Ok(written_response(StatusCode::OK, written, &caller))
}

async fn split_grid(
    State(state): State<SharedState>,
    Editor(caller): Editor,
    Path(code): Path<String>,
    Query(params): Query<EditParams>,
    headers: HeaderMap,
    request: Result<Json<Split>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = body(request)?;
    caller.require_write(&code)?;
    if let Some(new_code) = &request.code {
        caller.require_write(new_code)?;
    }
    let expected = expected(&headers)?;
    let written = grids::split(
        &state.pool,
        actor(&caller),
        params.parameters(&caller)?,
        &code,
        &expected,
        request,
    )
    .await
    .map_err(edit_error)?;
    Ok(written_response(StatusCode::OK, written, &caller))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Merge {
    codes: Vec<String>,
    name: Option<String>,
}

async fn merge_grids(
    State(state): State<SharedState>,
    Editor(caller): Editor,
    Query(params): Query<EditParams>,
    headers: HeaderMap,
    request: Result<Json<Merge>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = body(request)?;
    for code in &request.codes {
        caller.require_write(code)?;
    }
    let expected = expected(&headers)?;
    let written = grids::merge(
        &state.pool,
        actor(&caller),
        params.parameters(&caller)?,
        &request.codes,
        &expected,
        request.name.as_deref(),
    )
    .await
    .map_err(edit_error)?;
    Ok(written_response(StatusCode::OK, written, &caller))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Revert {
    /// The version to restore (a `version` from the history).
    version: i64,
}

async fn revert_grid(
    State(state): State<SharedState>,
    Editor(caller): Editor,
    Path(code): Path<String>,
    Query(params): Query<EditParams>,
    headers: HeaderMap,
    request: Result<Json<Revert>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = body(request)?;
    caller.require_write(&code)?;
    let exists = grids::community_of(&state.pool, &code)
        .await
        .map_err(edit_error)?
        .is_some();
    let expected = expected_if_exists(&headers, exists)?;
    let written = grids::revert(
        &state.pool,
        actor(&caller),
        params.parameters(&caller)?,
        &code,
        &expected,
        request.version,
    )
    .await
    .map_err(edit_error)?;
    Ok(written_response(StatusCode::OK, written, &caller))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Assign {
    /// Codes of the buildings to move into the grid.
    buildings: Vec<String>,
}

/// Assigns buildings to the grid: both the grid and each building's
/// current grid must be in the caller's scope.
async fn assign_buildings(
    State(state): State<SharedState>,
    Editor(caller): Editor,
    Path(code): Path<String>,
    request: Result<Json<Assign>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = body(request)?;
    caller.require_write(&code)?;
    for building in &request.buildings {
        caller.require_write(building)?;
    }
    let written = grids::assign_buildings(&state.pool, actor(&caller), &code, &request.buildings)
        .await
        .map_err(edit_error)?;
    Ok(written_response(StatusCode::OK, written, &caller))
}

/// Undoes a whole write (all grids it touched), as a new write.
async fn revert_change(
    State(state): State<SharedState>,
    Editor(caller): Editor,
    Path(change_id): Path<i64>,
    Query(params): Query<EditParams>,
) -> Result<Response, ApiError> {
    let codes = gridmap_edit::change_codes(&state.pool, change_id)
        .await
        .map_err(edit_error)?;
    for code in &codes {
        caller.require_write(code)?;
    }
    let written = gridmap_edit::revert_change(
        &state.pool,
        actor(&caller),
        params.parameters(&caller)?,
        change_id,
    )
    .await
    .map_err(edit_error)?;
    Ok(written_response(StatusCode::OK, written, &caller))
}

async fn history(
    state: &AppState,
    caller: Option<Caller>,
    entity: Entity,
    code: &str,
) -> Result<Response, ApiError> {
    let Some(caller) = caller else {
        tracing::warn!(
            caller = "anonymous",
            code,
            reason = "no credentials",
            "history denied"
        );
        return Err(ApiError::Unauthorized(
            "log in or send Authorization: Bearer <token> to read the history".into(),
        ));
    };
    let entries = gridmap_edit::history(&state.pool, entity, code)
        .await
        .map_err(edit_error)?;
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|entry| {
            let mut entry = serde_json::to_value(entry).unwrap_or(Value::Null);
            for side in ["before", "after"] {
                if let Some(feature) = entry.get_mut(side) {
                    let mut stripped = for_caller(feature.take(), Some(&caller));
                    if let Some(object) = stripped.as_object_mut() {
                        object.remove("ewkb");
                    }
                    *feature = stripped;
                }
            }
            entry
        })
        .collect();
    Ok(Json(serde_json::json!({ "code": code, "entries": entries })).into_response())
}

async fn grid_history(
    State(state): State<SharedState>,
    MaybeCaller(caller): MaybeCaller,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    history(&state, caller, Entity::Grid, &code).await
}

async fn station_history(
    State(state): State<SharedState>,
    MaybeCaller(caller): MaybeCaller,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    history(&state, caller, Entity::Station, &code).await
}

async fn get_station(
    State(state): State<SharedState>,
    MaybeCaller(caller): MaybeCaller,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let feature = stations::get(&state.pool, &code)
        .await
        .map_err(edit_error)?
        .ok_or_else(|| ApiError::NotFound(format!("station {code} not found")))?;
    Ok(feature_response(feature, caller.as_ref()))
}

async fn create_station(
    State(state): State<SharedState>,
    Editor(caller): Editor,
    request: Result<Json<FeatureBody<StationFields>>, JsonRejection>,
) -> Result<Response, ApiError> {
    let (fields, geometry) = body(request)?.checked()?;
    let fields =
        fields.ok_or_else(|| ApiError::BadRequest("a new station needs properties".into()))?;
    let geometry =
        geometry.ok_or_else(|| ApiError::BadRequest("a new station needs a geometry".into()))?;
    caller.require_write(fields.community_code.as_deref().unwrap_or_default())?;
    let written = stations::create(&state.pool, actor(&caller), fields, &geometry)
        .await
        .map_err(edit_error)?;
    Ok(written_response(StatusCode::CREATED, written, &caller))
}

async fn update_station(
    State(state): State<SharedState>,
    Editor(caller): Editor,
    Path(code): Path<String>,
    headers: HeaderMap,
    request: Result<Json<FeatureBody<StationFields>>, JsonRejection>,
) -> Result<Response, ApiError> {
    let (fields, geometry) = body(request)?.checked()?;
    let fields = fields.unwrap_or_default();
    let community = stations::community_of(&state.pool, &code)
        .await
        .map_err(edit_error)?
        .ok_or_else(|| ApiError::NotFound(format!("station {code} not found")))?;
    caller.require_write(&community)?;
    if let Some(new_community) = &fields.community_code {
        caller.require_write(new_community)?;
    }
    let expected = expected(&headers)?;
    let written = stations::update(
        &state.pool,
        actor(&caller),
        &code,
        &expected,
        fields,
        geometry.as_ref(),
    )
    .await
    .map_err(edit_error)?;
    Ok(written_response(StatusCode::OK, written, &caller))
}

async fn revert_station(
    State(state): State<SharedState>,
    Editor(caller): Editor,
    Path(code): Path<String>,
    headers: HeaderMap,
    request: Result<Json<Revert>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = body(request)?;
    let current = stations::community_of(&state.pool, &code)
        .await
        .map_err(edit_error)?;
    let restored = gridmap_edit::state_of(&state.pool, Entity::Station, &code, request.version)
        .await
        .map_err(edit_error)?
        .and_then(|s| {
            s.pointer("/properties/community_code")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    // Both the community it is in and the one it returns to must be in scope.
    for community in current.iter().chain(restored.iter()) {
        caller.require_write(community)?;
    }
    let expected = expected_if_exists(&headers, current.is_some())?;
    let written = stations::revert(
        &state.pool,
        actor(&caller),
        &code,
        &expected,
        request.version,
    )
    .await
    .map_err(edit_error)?;
    Ok(written_response(StatusCode::OK, written, &caller))
}

async fn delete_station(
    State(state): State<SharedState>,
    Editor(caller): Editor,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let community = stations::community_of(&state.pool, &code)
        .await
        .map_err(edit_error)?
        .ok_or_else(|| ApiError::NotFound(format!("station {code} not found")))?;
    caller.require_write(&community)?;
    let expected = expected(&headers)?;
    let written = stations::delete(&state.pool, actor(&caller), &code, &expected)
        .await
        .map_err(edit_error)?;
    Ok(written_response(StatusCode::OK, written, &caller))
}

async fn get_area(state: &AppState, area: AreaKind, code: &str) -> Result<Response, ApiError> {
    let feature = areas::get(&state.pool, area, code)
        .await
        .map_err(edit_error)?
        .ok_or_else(|| ApiError::NotFound(format!("{} {code} not found", area.entity().name())))?;
    Ok(feature_response(feature, None))
}

async fn create_area(
    state: &AppState,
    caller: &Caller,
    area: AreaKind,
    params: &EditParams,
    request: Result<Json<FeatureBody<AreaFields>>, JsonRejection>,
) -> Result<Response, ApiError> {
    let (fields, geometry) = body(request)?.checked()?;
    let fields =
        fields.ok_or_else(|| ApiError::BadRequest("a new area needs properties".into()))?;
    let geometry =
        geometry.ok_or_else(|| ApiError::BadRequest("a new area needs a geometry".into()))?;
    let parent = match area {
        AreaKind::GridUnit => fields.grid_code.clone(),
        AreaKind::Community => fields.street_code.clone(),
    };
    for code in parent.iter().chain(fields.code.iter()) {
        caller.require_write(code)?;
    }
    if parent.is_none() && fields.code.is_none() {
        return Err(ApiError::BadRequest(
            "a new area needs its parent's code or its own code".into(),
        ));
    }
    let written = areas::create(
        &state.pool,
        actor(caller),
        params.parameters(caller)?,
        area,
        fields,
        &geometry,
    )
    .await
    .map_err(edit_error)?;
    Ok(written_response(StatusCode::CREATED, written, caller))
}

async fn update_area(
    state: &AppState,
    caller: &Caller,
    area: AreaKind,
    code: &str,
    params: &EditParams,
    headers: &HeaderMap,
    request: Result<Json<FeatureBody<AreaFields>>, JsonRejection>,
) -> Result<Response, ApiError> {
    caller.require_write(code)?;
    let expected = expected(headers)?;
    let (fields, geometry) = body(request)?.checked()?;
    let written = areas::update(
        &state.pool,
        actor(caller),
        params.parameters(caller)?,
        area,
        code,
        &expected,
        fields.unwrap_or_default(),
        geometry.as_ref(),
    )
    .await
    .map_err(edit_error)?;
    Ok(written_response(StatusCode::OK, written, caller))
}

async fn delete_area(
    state: &AppState,
    caller: &Caller,
    area: AreaKind,
    code: &str,
    params: &EditParams,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    caller.require_write(code)?;
    let expected = expected(headers)?;
    let written = areas::delete(
        &state.pool,
        actor(caller),
        params.parameters(caller)?,
        area,
        code,
        &expected,
    )
    .await
    .map_err(edit_error)?;
    Ok(written_response(StatusCode::OK, written, caller))
}

async fn revert_area(
    state: &AppState,
    caller: &Caller,
    area: AreaKind,
    code: &str,
    params: &EditParams,
    headers: &HeaderMap,
    request: Result<Json<Revert>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = body(request)?;
    caller.require_write(code)?;
    let exists = areas::get(&state.pool, area, code)
        .await
        .map_err(edit_error)?
        .is_some();
    let expected = expected_if_exists(headers, exists)?;
    let written = areas::revert(
        &state.pool,
        actor(caller),
        params.parameters(caller)?,
        area,
        code,
        &expected,
        request.version,
    )
    .await
    .map_err(edit_error)?;
    Ok(written_response(StatusCode::OK, written, caller))
}

/// The handlers of one kind of area, binding the kind to the generic ones.
macro_rules! area_handlers {
    ($kind:expr, $get:ident, $create:ident, $update:ident, $delete:ident, $history:ident, $revert:ident) => {
        async fn $revert(
            State(state): State<SharedState>,
            Editor(caller): Editor,
            Path(code): Path<String>,
            Query(params): Query<EditParams>,
            headers: HeaderMap,
            request: Result<Json<Revert>, JsonRejection>,
        ) -> Result<Response, ApiError> {
            revert_area(&state, &caller, $kind, &code, &params, &headers, request).await
        }

        async fn $get(
            State(state): State<SharedState>,
            Path(code): Path<String>,
        ) -> Result<Response, ApiError> {
            get_area(&state, $kind, &code).await
        }

        async fn $create(
            State(state): State<SharedState>,
            Editor(caller): Editor,
            Query(params): Query<EditParams>,
            request: Result<Json<FeatureBody<AreaFields>>, JsonRejection>,
        ) -> Result<Response, ApiError> {
            create_area(&state, &caller, $kind, &params, request).await
        }

        async fn $update(
            State(state): State<SharedState>,
            Editor(caller): Editor,
            Path(code): Path<String>,
            Query(params): Query<EditParams>,
            headers: HeaderMap,
            request: Result<Json<FeatureBody<AreaFields>>, JsonRejection>,
        ) -> Result<Response, ApiError> {
            update_area(&state, &caller, $kind, &code, &params, &headers, request).await
        }

        async fn $delete(
            State(state): State<SharedState>,
            Editor(caller): Editor,
            Path(code): Path<String>,
            Query(params): Query<EditParams>,
            headers: HeaderMap,
        ) -> Result<Response, ApiError> {
            delete_area(&state, &caller, $kind, &code, &params, &headers).await
        }

        async fn $history(
            State(state): State<SharedState>,
            MaybeCaller(caller): MaybeCaller,
            Path(code): Path<String>,
        ) -> Result<Response, ApiError> {
            history(&state, caller, $kind.entity(), &code).await
        }
    };
}

area_handlers!(
    AreaKind::GridUnit,
    get_grid_unit,
    create_grid_unit,
    update_grid_unit,
    delete_grid_unit,
    grid_unit_history,
    revert_grid_unit
);
area_handlers!(
    AreaKind::Community,
    get_community,
    create_community,
    update_community,
    delete_community,
    community_history,
    revert_community
);
