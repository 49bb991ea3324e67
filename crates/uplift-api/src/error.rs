//! The error body every non-2xx answer carries.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `{"error": {"code": "…", "message": "…", "request_id": "…"}}` (OData's error shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code per kind of failure: `BadRequest`, `Unauthorized`, `Forbidden`,
    /// `NotFound`, `Conflict`, `PreconditionFailed`, `Locked`, `Busy`, `InternalError`, …
    pub code: String,
    /// What went wrong, in plain words, naming the problem.
    pub message: String,
    /// The request's id; the server's log has the details of a failure under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}
