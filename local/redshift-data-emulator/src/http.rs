//! The HTTP surface: the awsJson1_1 endpoint (`POST /`) and the emulator's admin routes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::faults::FaultSet;
use crate::operations;
use crate::AppState;

const JSON_1_1: &str = "application/x-amz-json-1.1";
const TARGET_PREFIX: &str = "RedshiftData.";

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", post(api))
        .route("/_emulator/health", get(health))
        .route("/_emulator/calls", get(calls))
        .route(
            "/_emulator/faults",
            get(get_faults).post(set_faults).delete(reset_faults),
        )
        .route("/_emulator/release", post(release))
        .with_state(state)
}

fn json_response(status: StatusCode, body: &Value, error_type: Option<&str>) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_1_1));
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-amzn-requestid", id);
    }
    if let Some(error_type) = error_type.and_then(|t| HeaderValue::from_str(t).ok()) {
        headers.insert("x-amzn-errortype", error_type);
    }
    response
}

fn error_response(error: &ApiError) -> Response {
    json_response(error.status(), &error.body(), Some(error.code()))
}

async fn api(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(operation) = target.strip_prefix(TARGET_PREFIX) else {
        let error = ApiError::UnknownOperation(format!(
            "missing or foreign X-Amz-Target {target:?}; expected RedshiftData.<Operation>"
        ));
        return error_response(&error);
    };
    state.store.count_call(operation);
    match operations::dispatch(&state, operation, &body).await {
        Ok(value) => json_response(StatusCode::OK, &value, None),
        Err(error) => {
            tracing::info!(operation, code = error.code(), %error, "request rejected");
            error_response(&error)
        }
    }
}

/// `{"<Operation>": <calls received>}` since start (a benchmark reads the difference).
async fn calls(State(state): State<Arc<AppState>>) -> Response {
    match serde_json::to_value(state.store.calls()) {
        Ok(value) => json_response(StatusCode::OK, &value, None),
        Err(error) => error_response(&ApiError::Internal(error.to_string())),
    }
}

async fn health() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

async fn get_faults(State(state): State<Arc<AppState>>) -> Response {
    faults_response(&state.faults())
}

async fn set_faults(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let invalid = |error: &dyn std::fmt::Display| {
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": format!("invalid fault set: {error}")}),
            None,
        )
    };
    let faults = match serde_json::from_slice::<FaultSet>(&body) {
        Ok(faults) => faults,
        Err(error) => return invalid(&error),
    };
    match state.set_faults(faults.clone()) {
        Ok(()) => {
            tracing::info!(rules = faults.rules().len(), faults = ?faults, "fault set replaced");
            faults_response(&faults)
        }
        Err(error) => invalid(&error),
    }
}

async fn reset_faults(State(state): State<Arc<AppState>>) -> Response {
    tracing::info!("faults reset");
    if let Err(error) = state.set_faults(FaultSet::default()) {
        return error_response(&ApiError::Internal(error.to_string()));
    }
    faults_response(&FaultSet::default())
}

/// `POST /_emulator/release` `{"statement_id": "<id>"}`: the answer a `hold_response` fault holds for
/// that statement's submission goes out now. 404 when no answer of that statement is held (not yet,
/// or no longer), 400 for a body without a `statement_id` string.
async fn release(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("statement_id")?.as_str().map(str::to_owned));
    let Some(id) = id else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid release: the body must be {\"statement_id\": \"<id>\"}"}),
            None,
        );
    };
    if state.release_answer(&id) {
        tracing::info!(statement_id = %id, "held answer released");
        json_response(StatusCode::OK, &json!({"released": id}), None)
    } else {
        json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no answer of statement {id} is held")}),
            None,
        )
    }
}

fn faults_response(faults: &FaultSet) -> Response {
    match serde_json::to_value(faults) {
        Ok(value) => json_response(StatusCode::OK, &value, None),
        Err(error) => error_response(&ApiError::Internal(error.to_string())),
    }
}
