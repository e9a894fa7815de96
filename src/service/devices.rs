//! POS device enrollment: one-time codes a manager issues, redeemed by a terminal for its
//! device secret; verification and revocation.

use std::net::IpAddr;

use rand::Rng;
use serde::Serialize;

use crate::auth::{random_token, sha256_hex};
use crate::db::devices as store;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::auth::AuthUser;
use crate::service::state::AppState;

/// Enrollment codes are short-lived and single use.
pub const ENROLLMENT_TTL_SECS: i64 = 15 * 60;

/// No look-alike characters: codes are read off one screen and typed on another.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const CODE_LEN: usize = 10;

fn new_code() -> String {
    let mut rng = rand::thread_rng();
    (0..CODE_LEN)
        .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

/// Codes may be typed with spaces, dashes or in lower case.
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EnrollmentCode {
    pub code: String,
    pub name: String,
    pub expires_at: String,
    /// The code as a QR (SVG), for a terminal's camera: what the console shows.
    pub qr_svg: String,
}

/// `text` as a QR code in SVG, quiet zone included.
fn qr_svg(text: &str) -> AppResult<String> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| AppError::internal(format!("QR of an enrolment code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(160, 160)
        .build())
}

pub async fn create_enrollment_code(
    state: &AppState,
    user: &AuthUser,
    name: String,
) -> AppResult<EnrollmentCode> {
    user.require_manager()?;
    let code = new_code();
    let expires = chrono::Utc::now().timestamp() + ENROLLMENT_TTL_SECS;
    let (hash, name2, actor) = (sha256_hex(&code), name.clone(), user.actor());
    state
        .db
        .write(move |c| store::insert_enrollment_code(c, &hash, &name2, expires, &actor))
        .await?;
    Ok(EnrollmentCode {
        qr_svg: qr_svg(&code)?,
        code,
        name,
        expires_at: chrono::DateTime::from_timestamp(expires, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
    })
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Enrollment {
    pub device_id: String,
    pub device_secret: String,
    pub name: String,
}

/// Exchanges a one-time code for a device id and secret (throttled per address).
pub async fn enroll(state: &AppState, code: &str, ip: Option<IpAddr>) -> AppResult<Enrollment> {
    let now = chrono::Utc::now().timestamp();
    state.throttle.check(ip, now)?;
    let code = normalize_code(code);
    let secret = random_token();
    let (code_hash, secret_hash, ip_text) = (
        sha256_hex(&code),
        sha256_hex(&secret),
        ip.map(|i| i.to_string()),
    );
    let device = state
        .db
        .write(move |c| store::redeem_code(c, &code_hash, &secret_hash, ip_text))
        .await?;
    match device {
        Some(d) => Ok(Enrollment {
            device_id: d.device_id,
            device_secret: secret,
            name: d.name,
        }),
        None => {
            state.throttle.fail(ip, now);
            Err(ErrorCode::EnrollmentCodeInvalid.into())
        }
    }
}

/// A device presented at sign-in must be enrolled, not revoked, with its secret.
pub async fn verify_device(
    state: &AppState,
    device_id: &str,
    secret: &str,
    ip: Option<IpAddr>,
) -> AppResult<()> {
    let now = chrono::Utc::now().timestamp();
    state.throttle.check(ip, now)?;
    let id = device_id.to_string();
    let row = state.db.read(move |c| store::device_secret(c, &id)).await?;
    let given = sha256_hex(secret);
    match row {
        Some((hash, false))
            if bool::from(subtle::ConstantTimeEq::ct_eq(
                hash.as_bytes(),
                given.as_bytes(),
            )) =>
        {
            Ok(())
        }
        _ => {
            state.throttle.fail(ip, now);
            Err(AppError::msg(
                ErrorCode::InvalidCredentials,
                "This device is not enrolled or was revoked; enroll it again with a new code.",
            ))
        }
    }
}

pub async fn cancel_enrollment_code(state: &AppState, user: &AuthUser, id: i64) -> AppResult<()> {
    user.require_manager()?;
    let actor = user.actor();
    let cancelled = state
        .db
        .write(move |c| store::cancel_enrollment_code(c, id, &actor))
        .await?;
    if cancelled {
        Ok(())
    } else {
        Err(AppError::msg(
            ErrorCode::NotFound,
            "No such pending enrolment code (used, expired or cancelled).",
        ))
    }
}

pub async fn revoke_device(state: &AppState, user: &AuthUser, id: String) -> AppResult<()> {
    user.require_manager()?;
    let actor = user.actor();
    state
        .db
        .write(move |c| store::revoke_device(c, &id, &actor))
        .await
}

/// The enrolled devices (revoked last) and the codes not yet redeemed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceList {
    pub devices: Vec<store::DeviceView>,
    pub pending_codes: Vec<store::PendingCode>,
}

pub async fn list_devices(state: &AppState, user: &AuthUser) -> AppResult<DeviceList> {
    user.require_manager()?;
    let (devices, pending_codes) = state.db.read(store::list_devices).await?;
    Ok(DeviceList {
        devices,
        pending_codes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let c = new_code();
        assert_eq!(c.len(), CODE_LEN);
        assert!(c.bytes().all(|b| CODE_ALPHABET.contains(&b)));
        assert_eq!(normalize_code(" abcd-efgh 23 "), "ABCDEFGH23");
    }
}
