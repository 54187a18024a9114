//! Errors the Data API returns to clients, in the awsJson1_1 shape the SDKs parse.

use axum::http::StatusCode;
use serde_json::json;

/// An error answered to a Data API client. The variant name is the wire `__type`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(String),
    #[error("{message}")]
    ResourceNotFound {
        message: String,
        resource_id: String,
    },
    #[error("{0}")]
    ActiveStatementsExceeded(String),
    #[error("{0}")]
    ActiveWaitingRequestsExceeded(String),
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    UnknownOperation(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn validation(message: impl Into<String>) -> Self {
        Self::Validation(message.into())
    }

    pub fn not_found(message: impl Into<String>, resource_id: impl Into<String>) -> Self {
        Self::ResourceNotFound {
            message: message.into(),
            resource_id: resource_id.into(),
        }
    }

    /// The error code, as sent in `__type` and `x-amzn-ErrorType`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "ValidationException",
            Self::ResourceNotFound { .. } => "ResourceNotFoundException",
            Self::ActiveStatementsExceeded(_) => "ActiveStatementsExceededException",
            Self::ActiveWaitingRequestsExceeded(_) => "ActiveWaitingRequestsExceededException",
            Self::Serialization(_) => "SerializationException",
            Self::UnknownOperation(_) => "UnknownOperationException",
            Self::Internal(_) => "InternalServerException",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The JSON body. Both `message` (read by the generic error metadata parser) and
    /// `Message` (the modeled member of every Data API exception) are sent.
    pub fn body(&self) -> serde_json::Value {
        let message = self.to_string();
        let mut body = json!({
            "__type": self.code(),
            "message": message,
            "Message": message,
        });
        if let (Self::ResourceNotFound { resource_id, .. }, Some(obj)) =
            (self, body.as_object_mut())
        {
            obj.insert("ResourceId".into(), json!(resource_id));
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_body_carries_type_message_and_resource_id() {
        let body = ApiError::not_found("Query does not exist.", "abc").body();
        assert_eq!(body["__type"], "ResourceNotFoundException");
        assert_eq!(body["message"], "Query does not exist.");
        assert_eq!(body["Message"], "Query does not exist.");
        assert_eq!(body["ResourceId"], "abc");
    }

    #[test]
    fn internal_errors_are_http_500_and_others_400() {
        assert_eq!(ApiError::Internal("x".into()).status(), 500);
        assert_eq!(ApiError::validation("x").status(), 400);
    }
}
