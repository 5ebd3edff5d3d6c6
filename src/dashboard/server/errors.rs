//! What the page gets when a request fails: a status and a reason, with
//! the engine's errors sorted into the user's (400), the policy's (403), a
//! full memory pool (503) and dnsq's own (500).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::Error;

/// An error as the page gets it: a status and a reason.
pub(super) struct ApiError(pub(super) StatusCode, pub(super) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        if let Some(msg) = exhausted(&e) {
            return ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the query needs more memory than dnsq serve's --memory-limit allows ({}); \
                     restart it with a higher --memory-limit, or narrow the view (a time range, \
                     a filter)",
                    msg.trim()
                ),
            );
        }
        let status = match e.downcast_ref::<Error>() {
            Some(Error::Refused(why)) => {
                let why = why.replace(crate::query::policy::READ_ONLY, "dnsq serve is read-only");
                return ApiError(StatusCode::FORBIDDEN, why);
            }
            Some(Error::Usage(_)) => StatusCode::BAD_REQUEST,
            Some(Error::DataFusion(df)) if is_plan_error(df) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, format!("{e:#}"))
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        anyhow::Error::from(e).into()
    }
}

/// DataFusion's message when a query ran out of the engine's memory pool.
fn exhausted(e: &anyhow::Error) -> Option<String> {
    use datafusion::error::DataFusionError as D;
    e.chain().find_map(|cause| {
        let df = match cause.downcast_ref::<Error>() {
            Some(Error::DataFusion(df)) => df,
            _ => cause.downcast_ref::<D>()?,
        };
        match df.find_root() {
            D::ResourcesExhausted(msg) => Some(msg.clone()),
            _ => None,
        }
    })
}

fn is_plan_error(e: &datafusion::error::DataFusionError) -> bool {
    use datafusion::error::DataFusionError as D;
    matches!(
        e.find_root(),
        D::Plan(_) | D::SQL(..) | D::SchemaError(..) | D::NotImplemented(_)
    )
}

pub(super) fn bad(reason: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, reason.into())
}
