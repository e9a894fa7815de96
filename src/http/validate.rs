//! Field checks shared by handlers (pure; every failure is a 400 with the field named).

use crate::domain::money::{cents_from_json, AmountError};
use crate::error::{AppError, AppResult, ErrorCode};

pub fn amount(value: &serde_json::Value, field: &str, not_positive: ErrorCode) -> AppResult<i64> {
    cents_from_json(value).map_err(|e| match e {
        AmountError::Malformed => AppError::msg(
            ErrorCode::InvalidAmount,
            format!(
                "{field} must be a positive amount with at most 2 decimals, up to 9999999999.99."
            ),
        )
        .with_details(serde_json::json!({"field": field})),
        AmountError::NotPositive => {
            AppError::new(not_positive).with_details(serde_json::json!({"field": field}))
        }
    })
}

/// Printable ASCII, 1..=max characters (keys that end up in logs and headers).
pub fn key(value: &str, field: &str, max: usize) -> AppResult<()> {
    if value.is_empty() || value.len() > max || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::validation(
            field,
            format!("{field} must be 1-{max} printable ASCII characters without spaces."),
        ));
    }
    Ok(())
}

/// Free text without control characters, 1..=max characters.
pub fn text(value: &str, field: &str, max: usize) -> AppResult<()> {
    let n = value.chars().count();
    if n == 0 || n > max || value.chars().any(char::is_control) {
        return Err(AppError::validation(
            field,
            format!("{field} must be 1-{max} characters without control characters."),
        ));
    }
    Ok(())
}

/// Free text as `text`, after trimming white space from both ends; the trimmed text.
pub fn trimmed(value: &str, field: &str, max: usize) -> AppResult<String> {
    let value = value.trim();
    text(value, field, max)?;
    Ok(value.to_string())
}

/// A tag must be a JSON object of modest size.
pub fn tag(value: Option<serde_json::Value>) -> AppResult<serde_json::Value> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(serde_json::json!({})),
        Some(v @ serde_json::Value::Object(_)) => {
            if v.to_string().len() > 4096 {
                return Err(AppError::validation(
                    "tag",
                    "tag may be at most 4096 bytes of JSON.",
                ));
            }
            Ok(v)
        }
        Some(_) => Err(AppError::validation("tag", "tag must be a JSON object.")),
    }
}

/// Resolves the idempotency key from the body and the `Idempotency-Key` header.
pub fn idempotency_key(body: Option<String>, header: Option<&str>) -> AppResult<Option<String>> {
    let key = match (body, header) {
        (Some(b), Some(h)) if b != h => {
            // Each well formed, together contradictory: 422, not 400.
            return Err(AppError::new(ErrorCode::IdempotencyKeyMismatch)
                .with_details(serde_json::json!({"field": "idempotency_key"})));
        }
        (Some(b), _) => Some(b),
        (None, Some(h)) => Some(h.to_string()),
        (None, None) => None,
    };
    if let Some(k) = &key {
        self::key(k, "idempotency_key", 128)?;
    }
    Ok(key)
}

/// `limit` (1..=200, default `default`) and `offset` (0..=10,000,000, default 0) of a page.
pub fn paging(limit: Option<i64>, offset: Option<i64>, default: i64) -> AppResult<(i64, i64)> {
    let limit = limit.unwrap_or(default);
    if !(1..=200).contains(&limit) {
        return Err(AppError::validation(
            "limit",
            "limit must be between 1 and 200.",
        ));
    }
    let offset = offset.unwrap_or(0);
    if !(0..=10_000_000).contains(&offset) {
        return Err(AppError::validation("offset", "offset must be 0 or more."));
    }
    Ok((limit, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_key_sources() {
        assert_eq!(idempotency_key(None, None).unwrap(), None);
        assert_eq!(
            idempotency_key(Some("a".into()), None).unwrap(),
            Some("a".into())
        );
        assert_eq!(idempotency_key(None, Some("b")).unwrap(), Some("b".into()));
        assert!(idempotency_key(Some("a".into()), Some("b")).is_err());
        assert!(idempotency_key(Some("has space".into()), None).is_err());
        assert!(idempotency_key(Some("x".repeat(129)), None).is_err());
    }

    #[test]
    fn tags() {
        assert_eq!(tag(None).unwrap(), serde_json::json!({}));
        assert!(tag(Some(serde_json::json!([1]))).is_err());
        assert!(tag(Some(serde_json::json!({"a": "x".repeat(5000)}))).is_err());
    }
}
