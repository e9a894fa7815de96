//! The one error type of the server and its JSON envelope
//! `{"error":{"code","message","details"}}`.
//!
//! Status rule (documented in the README): 400 = the request itself is malformed;
//! 401/403 = identity and permission; 404 = a referenced thing does not exist;
//! 409 = conflicts with an earlier request (idempotency); 422 = a well-formed request
//! declined by a business rule; 429 = throttled; 503 = central needed but unreachable,
//! or the server too busy to take the request now (sign-in: with `Retry-After`);
//! 500 = a bug, logged once here and never described to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Every error code the API can return. Codes shared with central keep central's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    // 400
    ValidationError,
    InvalidJson,
    InvalidAmount,
    InvalidPrice,
    InvalidRefundAmount,
    InvalidRechargeAmount,
    InvalidQr,
    PayloadTooLarge,
    BodyAborted,
    UnsupportedMediaType,
    // 401 / 403
    NotAuthenticated,
    InvalidCredentials,
    TokenExpired,
    InvalidToken,
    PermissionDenied,
    CsrfTokenInvalid,
    ApprovalRequired,
    ApprovalInvalid,
    EnrollmentCodeInvalid,
    DaemonSignatureMissing,
    DaemonSignatureMalformed,
    DaemonSignatureStale,
    DaemonSignatureInvalid,
    DaemonSignatureReplayed,
    // 404 / 405
    NotFound,
    TxNotFound,
    OriginalTxNotFound,
    CardNotFound,
    UserNotFound,
    MethodNotAllowed,
    // 409
    IdempotencyKeyReused,
    Conflict,
    UsernameTaken,
    SettlementOverlap,
    SettlementVoided,
    CardAlreadyFrozen,
    CardNotFrozen,
    CardFrozenCentrally,
    ShiftAlreadyOpen,
    ShiftClosed,
    NoCentral,
    // 422 business declines
    QrExpiredOrInvalid,
    QrAlreadyUsed,
    QrChainRevoked,
    QrClockSkew,
    CardNotActive,
    CardExpired,
    CorporateCardCannotPay,
    UnsupportedCardTypeForPayment,
    UnsupportedCardTypeForRecharge,
    InsufficientBalance,
    OfflineLimitExceeded,
    OnlyCompletedPaymentRefundable,
    RefundExceedsRemaining,
    MerchantNotFoundOrInactive,
    DemoModeOnly,
    // 422: each field well formed, together refused
    IdempotencyKeyMismatch,
    InconsistentFields,
    PeriodInvalid,
    PeriodNotEnded,
    SettlementEmpty,
    AmountRangeInvalid,
    LimitAboveCeiling,
    // 429
    TooManyRequests,
    LoginLocked,
    // 503
    Unavailable,
    // 500
    Internal,
}

// Checked when the crate builds: `ALL[i]` is the code whose position is `i` (so no code
// is listed twice, and none sits where `position` does not put it).
const _: () = {
    let mut i = 0;
    while i < ErrorCode::ALL.len() {
        assert!(
            ErrorCode::ALL[i].position() == i,
            "ErrorCode::ALL disagrees with ErrorCode::position"
        );
        i += 1;
    }
};

impl ErrorCode {
    /// Every code, in declaration order: for tests that must cover them all (the
    /// console's messages, `tests/console_i18n.rs`). A new variant does not compile
    /// until `position` gives it its index here; the build checks that each listed code
    /// sits at its position, and a unit test that the list is as long as the enum.
    pub const ALL: &[ErrorCode] = {
        use ErrorCode::*;
        &[
            ValidationError,
            InvalidJson,
            InvalidAmount,
            InvalidPrice,
            InvalidRefundAmount,
            InvalidRechargeAmount,
            InvalidQr,
            PayloadTooLarge,
            BodyAborted,
            UnsupportedMediaType,
            NotAuthenticated,
            InvalidCredentials,
            TokenExpired,
            InvalidToken,
            PermissionDenied,
            CsrfTokenInvalid,
            ApprovalRequired,
            ApprovalInvalid,
            EnrollmentCodeInvalid,
            DaemonSignatureMissing,
            DaemonSignatureMalformed,
            DaemonSignatureStale,
            DaemonSignatureInvalid,
            DaemonSignatureReplayed,
            NotFound,
            TxNotFound,
            OriginalTxNotFound,
            CardNotFound,
            UserNotFound,
            MethodNotAllowed,
            IdempotencyKeyReused,
            Conflict,
            UsernameTaken,
            SettlementOverlap,
            SettlementVoided,
            CardAlreadyFrozen,
            CardNotFrozen,
            CardFrozenCentrally,
            ShiftAlreadyOpen,
            ShiftClosed,
            NoCentral,
            QrExpiredOrInvalid,
            QrAlreadyUsed,
            QrChainRevoked,
            QrClockSkew,
            CardNotActive,
            CardExpired,
            CorporateCardCannotPay,
            UnsupportedCardTypeForPayment,
            UnsupportedCardTypeForRecharge,
            InsufficientBalance,
            OfflineLimitExceeded,
            OnlyCompletedPaymentRefundable,
            RefundExceedsRemaining,
            MerchantNotFoundOrInactive,
            DemoModeOnly,
            IdempotencyKeyMismatch,
            InconsistentFields,
            PeriodInvalid,
            PeriodNotEnded,
            SettlementEmpty,
            AmountRangeInvalid,
            LimitAboveCeiling,
            TooManyRequests,
            LoginLocked,
            Unavailable,
            Internal,
        ]
    };

    /// The index of this code in [`ErrorCode::ALL`] (exhaustive on purpose: no `_` arm).
    const fn position(self) -> usize {
        use ErrorCode::*;
        match self {
            ValidationError => 0,
            InvalidJson => 1,
            InvalidAmount => 2,
            InvalidPrice => 3,
            InvalidRefundAmount => 4,
            InvalidRechargeAmount => 5,
            InvalidQr => 6,
            PayloadTooLarge => 7,
            BodyAborted => 8,
            UnsupportedMediaType => 9,
            NotAuthenticated => 10,
            InvalidCredentials => 11,
            TokenExpired => 12,
            InvalidToken => 13,
            PermissionDenied => 14,
            CsrfTokenInvalid => 15,
            ApprovalRequired => 16,
            ApprovalInvalid => 17,
            EnrollmentCodeInvalid => 18,
            DaemonSignatureMissing => 19,
            DaemonSignatureMalformed => 20,
            DaemonSignatureStale => 21,
            DaemonSignatureInvalid => 22,
            DaemonSignatureReplayed => 23,
            NotFound => 24,
            TxNotFound => 25,
            OriginalTxNotFound => 26,
            CardNotFound => 27,
            UserNotFound => 28,
            MethodNotAllowed => 29,
            IdempotencyKeyReused => 30,
            Conflict => 31,
            UsernameTaken => 32,
            SettlementOverlap => 33,
            SettlementVoided => 34,
            CardAlreadyFrozen => 35,
            CardNotFrozen => 36,
            CardFrozenCentrally => 37,
            ShiftAlreadyOpen => 38,
            ShiftClosed => 39,
            NoCentral => 40,
            QrExpiredOrInvalid => 41,
            QrAlreadyUsed => 42,
            QrChainRevoked => 43,
            QrClockSkew => 44,
            CardNotActive => 45,
            CardExpired => 46,
            CorporateCardCannotPay => 47,
            UnsupportedCardTypeForPayment => 48,
            UnsupportedCardTypeForRecharge => 49,
            InsufficientBalance => 50,
            OfflineLimitExceeded => 51,
            OnlyCompletedPaymentRefundable => 52,
            RefundExceedsRemaining => 53,
            MerchantNotFoundOrInactive => 54,
            DemoModeOnly => 55,
            IdempotencyKeyMismatch => 56,
            InconsistentFields => 57,
            PeriodInvalid => 58,
            PeriodNotEnded => 59,
            SettlementEmpty => 60,
            AmountRangeInvalid => 61,
            LimitAboveCeiling => 62,
            TooManyRequests => 63,
            LoginLocked => 64,
            Unavailable => 65,
            Internal => 66,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            ValidationError => "VALIDATION_ERROR",
            InvalidJson => "INVALID_JSON",
            InvalidAmount => "INVALID_AMOUNT",
            InvalidPrice => "INVALID_PRICE",
            InvalidRefundAmount => "INVALID_REFUND_AMOUNT",
            InvalidRechargeAmount => "INVALID_RECHARGE_AMOUNT",
            InvalidQr => "INVALID_QR",
            PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            BodyAborted => "BODY_ABORTED",
            UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            NotAuthenticated => "NOT_AUTHENTICATED",
            InvalidCredentials => "INVALID_CREDENTIALS",
            TokenExpired => "TOKEN_EXPIRED",
            InvalidToken => "INVALID_TOKEN",
            PermissionDenied => "PERMISSION_DENIED",
            CsrfTokenInvalid => "CSRF_TOKEN_INVALID",
            ApprovalRequired => "APPROVAL_REQUIRED",
            ApprovalInvalid => "APPROVAL_INVALID",
            EnrollmentCodeInvalid => "ENROLLMENT_CODE_INVALID",
            DaemonSignatureMissing => "DAEMON_SIGNATURE_MISSING",
            DaemonSignatureMalformed => "DAEMON_SIGNATURE_MALFORMED",
            DaemonSignatureStale => "DAEMON_SIGNATURE_STALE",
            DaemonSignatureInvalid => "DAEMON_SIGNATURE_INVALID",
            DaemonSignatureReplayed => "DAEMON_SIGNATURE_REPLAYED",
            NotFound => "NOT_FOUND",
            TxNotFound => "TX_NOT_FOUND",
            OriginalTxNotFound => "ORIGINAL_TX_NOT_FOUND",
            CardNotFound => "CARD_NOT_FOUND",
            UserNotFound => "USER_NOT_FOUND",
            MethodNotAllowed => "METHOD_NOT_ALLOWED",
            IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Conflict => "CONFLICT",
            UsernameTaken => "USERNAME_TAKEN",
            SettlementOverlap => "SETTLEMENT_OVERLAP",
            SettlementVoided => "SETTLEMENT_VOIDED",
            CardAlreadyFrozen => "CARD_ALREADY_FROZEN",
            CardNotFrozen => "CARD_NOT_FROZEN",
            CardFrozenCentrally => "CARD_FROZEN_CENTRALLY",
            ShiftAlreadyOpen => "SHIFT_ALREADY_OPEN",
            ShiftClosed => "SHIFT_CLOSED",
            NoCentral => "NO_CENTRAL",
            QrExpiredOrInvalid => "QR_EXPIRED_OR_INVALID",
            QrAlreadyUsed => "QR_ALREADY_USED",
            QrChainRevoked => "QR_CHAIN_REVOKED",
            QrClockSkew => "QR_CLOCK_SKEW",
            CardNotActive => "CARD_NOT_ACTIVE",
            CardExpired => "CARD_EXPIRED",
            CorporateCardCannotPay => "CORPORATE_CARD_CANNOT_PAY",
            UnsupportedCardTypeForPayment => "UNSUPPORTED_CARD_TYPE_FOR_PAYMENT",
            UnsupportedCardTypeForRecharge => "UNSUPPORTED_CARD_TYPE_FOR_RECHARGE",
            InsufficientBalance => "INSUFFICIENT_BALANCE",
            OfflineLimitExceeded => "OFFLINE_LIMIT_EXCEEDED",
            OnlyCompletedPaymentRefundable => "ONLY_COMPLETED_PAYMENT_REFUNDABLE",
            RefundExceedsRemaining => "REFUND_EXCEEDS_REMAINING",
            MerchantNotFoundOrInactive => "MERCHANT_NOT_FOUND_OR_INACTIVE",
            DemoModeOnly => "DEMO_MODE_ONLY",
            IdempotencyKeyMismatch => "IDEMPOTENCY_KEY_MISMATCH",
            InconsistentFields => "INCONSISTENT_FIELDS",
            PeriodInvalid => "PERIOD_INVALID",
            PeriodNotEnded => "PERIOD_NOT_ENDED",
            SettlementEmpty => "SETTLEMENT_EMPTY",
            AmountRangeInvalid => "AMOUNT_RANGE_INVALID",
            LimitAboveCeiling => "LIMIT_ABOVE_CEILING",
            TooManyRequests => "TOO_MANY_REQUESTS",
            LoginLocked => "LOGIN_LOCKED",
            Unavailable => "SERVICE_UNAVAILABLE",
            Internal => "INTERNAL_ERROR",
        }
    }

    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            ValidationError
            | InvalidJson
            | InvalidAmount
            | InvalidPrice
            | InvalidRefundAmount
            | InvalidRechargeAmount
            | InvalidQr
            | BodyAborted => StatusCode::BAD_REQUEST,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            NotAuthenticated
            | InvalidCredentials
            | TokenExpired
            | InvalidToken
            | EnrollmentCodeInvalid
            | DaemonSignatureMissing
            | DaemonSignatureMalformed
            | DaemonSignatureStale
            | DaemonSignatureInvalid
            | DaemonSignatureReplayed => StatusCode::UNAUTHORIZED,
            PermissionDenied | CsrfTokenInvalid | ApprovalRequired | ApprovalInvalid => {
                StatusCode::FORBIDDEN
            }
            NotFound | TxNotFound | OriginalTxNotFound | CardNotFound | UserNotFound => {
                StatusCode::NOT_FOUND
            }
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            IdempotencyKeyReused | Conflict | UsernameTaken | SettlementOverlap
            | SettlementVoided | CardAlreadyFrozen | CardNotFrozen | CardFrozenCentrally
            | ShiftAlreadyOpen | ShiftClosed | NoCentral => StatusCode::CONFLICT,
            QrExpiredOrInvalid
            | QrAlreadyUsed
            | QrChainRevoked
            | QrClockSkew
            | CardNotActive
            | CardExpired
            | CorporateCardCannotPay
            | UnsupportedCardTypeForPayment
            | UnsupportedCardTypeForRecharge
            | InsufficientBalance
            | OfflineLimitExceeded
            | OnlyCompletedPaymentRefundable
            | RefundExceedsRemaining
            | MerchantNotFoundOrInactive
            | DemoModeOnly
            | IdempotencyKeyMismatch
            | InconsistentFields
            | PeriodInvalid
            | PeriodNotEnded
            | SettlementEmpty
            | AmountRangeInvalid
            | LimitAboveCeiling => StatusCode::UNPROCESSABLE_ENTITY,
            TooManyRequests | LoginLocked => StatusCode::TOO_MANY_REQUESTS,
            Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn default_message(self) -> &'static str {
        use ErrorCode::*;
        match self {
            ValidationError => "The request is invalid.",
            InvalidJson => "The request body is not valid JSON for this endpoint.",
            InvalidAmount => "Amounts must be positive numbers with at most 2 decimals.",
            InvalidPrice => "The charge amount must be greater than zero.",
            InvalidRefundAmount => "The refund amount must be greater than zero.",
            InvalidRechargeAmount => "The top-up amount must be greater than zero.",
            InvalidQr => "The scanned text is not a payment QR code.",
            PayloadTooLarge => "The request body is too large.",
            BodyAborted => {
                "The request body ended early: the client stopped sending or the connection broke."
            }
            UnsupportedMediaType => "Send the body as application/json.",
            NotAuthenticated => "Sign in first.",
            InvalidCredentials => "Wrong username or password.",
            TokenExpired => "The token has expired; refresh it or sign in again.",
            InvalidToken => "The token is invalid or has been revoked.",
            PermissionDenied => "Your role does not allow this.",
            CsrfTokenInvalid => "The CSRF token is missing or wrong.",
            ApprovalRequired => "This needs a manager's or owner's PIN at the till.",
            ApprovalInvalid => "The approving manager's name or PIN is wrong.",
            EnrollmentCodeInvalid => "The enrollment code is wrong, used or expired.",
            DaemonSignatureMissing => "Sign the request: send X-Ingest-Ts and X-Ingest-Sign.",
            DaemonSignatureMalformed => {
                "X-Ingest-Ts must be unix seconds in decimal digits and X-Ingest-Sign 64 lowercase hex digits."
            }
            DaemonSignatureStale => {
                "X-Ingest-Ts is more than 300 seconds from this store's clock; check both clocks and sign afresh."
            }
            DaemonSignatureInvalid => "The signature does not match this request.",
            DaemonSignatureReplayed => {
                "This signed request was already accepted; sign each request afresh."
            }
            NotFound => "Not found.",
            TxNotFound => "No such transaction.",
            OriginalTxNotFound => "The original transaction was not found for this merchant.",
            CardNotFound => "No such card.",
            UserNotFound => "No such user.",
            MethodNotAllowed => "This route does not accept that method.",
            IdempotencyKeyReused => {
                "This idempotency key was already used for a different request."
            }
            Conflict => "The request conflicts with the current state.",
            UsernameTaken => "That username is already taken.",
            SettlementOverlap => "The period overlaps an existing settlement.",
            SettlementVoided => "This settlement is already voided.",
            CardAlreadyFrozen => "This card is already frozen.",
            CardNotFrozen => "This card is not frozen.",
            CardFrozenCentrally => "This card was frozen by head office or another store; only they can unfreeze it.",
            ShiftAlreadyOpen => "You already have an open shift; close it first.",
            ShiftClosed => "This shift is closed; its report can no longer change.",
            NoCentral => "No central is configured; this store runs standalone.",
            QrExpiredOrInvalid => {
                "The QR code is expired, revoked or unknown; ask for a fresh one."
            }
            QrAlreadyUsed => "This QR code has already been used; ask the member for a fresh one.",
            QrChainRevoked => {
                "The member's offline payment codes were revoked (a lost phone?); ask for a code from the app while online."
            }
            QrClockSkew => {
                "The offline payment code is not for the current minute: check the clock of the phone and of this store."
            }
            CardNotActive => "The card is not active.",
            CardExpired => "The card has expired.",
            CorporateCardCannotPay => "Corporate cards cannot pay.",
            UnsupportedCardTypeForPayment => "This card type cannot pay.",
            UnsupportedCardTypeForRecharge => "Only standard member cards can be topped up.",
            InsufficientBalance => "The card's available balance is too low.",
            OfflineLimitExceeded => "An offline risk limit declines this charge or top-up.",
            OnlyCompletedPaymentRefundable => "Only completed payments can be refunded.",
            RefundExceedsRemaining => "The refund exceeds what remains refundable.",
            MerchantNotFoundOrInactive => "The merchant is missing or inactive.",
            DemoModeOnly => "This is only available in standalone demo mode.",
            IdempotencyKeyMismatch => {
                "The Idempotency-Key header and the body's idempotency_key differ."
            }
            InconsistentFields => "Fields that go together were not sent together.",
            PeriodInvalid => "The period must end after it starts.",
            PeriodNotEnded => {
                "The period has not ended yet: a day can be settled once it is over in the store's time zone."
            }
            SettlementEmpty => "There are no payments or refunds in this period: nothing to settle.",
            AmountRangeInvalid => "The lowest amount is above the highest: no row can match.",
            LimitAboveCeiling => {
                "A limit is above the ceiling this installation allows the console."
            }
            TooManyRequests => "Too many requests; slow down.",
            LoginLocked => "Too many failed sign-ins; the account is locked for a while.",
            Unavailable => "The service is temporarily unavailable.",
            Internal => "Internal error.",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{code:?}: {message}")]
    Api {
        code: ErrorCode,
        message: String,
        details: Value,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(code: ErrorCode) -> Self {
        AppError::Api {
            code,
            message: code.default_message().to_string(),
            details: Value::Null,
        }
    }

    pub fn msg(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError::Api {
            code,
            message: message.into(),
            details: Value::Null,
        }
    }

    pub fn with_details(self, details: Value) -> Self {
        match self {
            AppError::Api { code, message, .. } => AppError::Api {
                code,
                message,
                details,
            },
            other => other,
        }
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        AppError::msg(ErrorCode::ValidationError, message).with_details(json!({ "field": field }))
    }

    pub fn internal(msg: impl std::fmt::Display) -> Self {
        AppError::Internal(anyhow::anyhow!("{msg}"))
    }

    /// The code, or `Internal` for bugs; used by tests and metrics.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::Api { code, .. } => *code,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The details, when the error carries any.
    pub fn details(&self) -> Option<&Value> {
        match self {
            AppError::Api { details, .. } if !details.is_null() => Some(details),
            _ => None,
        }
    }

    /// `details.retry_after_secs`, when the error carries one (at least 1).
    pub fn retry_after_secs(&self) -> Option<i64> {
        match self {
            AppError::Api { details, .. } => details
                .get("retry_after_secs")
                .and_then(Value::as_i64)
                .map(|s| s.max(1)),
            AppError::Internal(_) => None,
        }
    }

    /// The envelope body, without logging.
    pub fn body(&self) -> Value {
        match self {
            AppError::Api {
                code,
                message,
                details,
            } => json!({"error": {"code": code.as_str(), "message": message, "details": details}}),
            AppError::Internal(_) => json!({"error": {
                "code": ErrorCode::Internal.as_str(),
                "message": ErrorCode::Internal.default_message(),
                "details": null
            }}),
        }
    }
}

impl From<ErrorCode> for AppError {
    fn from(code: ErrorCode) -> Self {
        AppError::new(code)
    }
}

impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> Self {
        AppError::Internal(anyhow::Error::new(e).context("sqlite"))
    }
}

impl From<r2d2::Error> for AppError {
    fn from(e: r2d2::Error) -> Self {
        AppError::Internal(anyhow::Error::new(e).context("reader pool"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.code().status();
        if let AppError::Internal(err) = &self {
            tracing::error!(error = ?err, "internal error");
        }
        let retry_after = self.retry_after_secs();
        let mut res = (status, axum::Json(self.body())).into_response();
        // A throttled or busy answer says when to come back in the standard header too.
        if let Some(secs) = retry_after.filter(|_| {
            status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
        }) {
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        res
    }
}
/// The envelope as the OpenAPI document describes it (responses are built by
/// `AppError`'s `IntoResponse`).
/// The error envelope every failure uses: `{"error": {code, message, details}}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine code, e.g. `INSUFFICIENT_BALANCE`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Code-specific details (field names, limits, amounts), or null.
    #[schema(value_type = Option<Object>)]
    pub details: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The variants as declared in this file's `enum ErrorCode`, counted from the source:
    /// the one count that does not go through `ALL` itself.
    fn declared_variants() -> usize {
        let src = include_str!("error.rs");
        let start = src.find("pub enum ErrorCode {").expect("enum ErrorCode") + 20;
        let body = &src[start..start + src[start..].find("\n}").expect("end of enum")];
        body.lines()
            .map(str::trim)
            .filter(|l| {
                l.strip_suffix(',')
                    .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric()))
            })
            .count()
    }

    #[test]
    fn all_lists_every_code_once_in_position_order() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(code.position(), i, "{code:?}");
        }
        let names: HashSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len(), "two codes share a name");
        assert_eq!(
            ErrorCode::ALL.len(),
            declared_variants(),
            "ErrorCode::ALL must list every variant of the enum"
        );
    }
}
