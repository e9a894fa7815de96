//! Sign-in, token refresh and rotation, sign-out, and checking a bearer token.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::json;

use crate::auth::{dummy_hash, random_token, sha256_hex, verify_password, Claims, TokenError};
use crate::db::users::{self, audit, Actor};
use crate::domain::Role;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::model::UserInfo;
use crate::service::state::AppState;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    #[schema(value_type = String)]
    pub token_type: &'static str,
    pub expires_at: String,
    pub expires_in: i64,
    pub user: UserInfo,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub family: String,
    pub device_id: Option<String>,
    pub ip: Option<IpAddr>,
}

impl AuthUser {
    pub fn require(&self, permission: &str) -> AppResult<()> {
        if self.role.has(permission) {
            Ok(())
        } else {
            Err(AppError::msg(
                ErrorCode::PermissionDenied,
                format!(
                    "Your role ({}) does not have {permission}.",
                    self.role.as_str()
                ),
            )
            .with_details(json!({"required": permission, "role": self.role.as_str()})))
        }
    }

    /// Owner or manager pages and actions.
    pub fn require_manager(&self) -> AppResult<()> {
        match self.role {
            Role::Owner | Role::Manager => Ok(()),
            Role::Cashier => Err(AppError::msg(
                ErrorCode::PermissionDenied,
                "Only a manager or the owner may do this.",
            )
            .with_details(json!({"role": self.role.as_str()}))),
        }
    }

    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.id.clone()),
            username: Some(self.username.clone()),
            ip: self.ip.map(|i| i.to_string()),
            device_id: self.device_id.clone(),
        }
    }

    pub fn info(&self) -> UserInfo {
        user_info(&self.id, &self.username, self.role)
    }
}

pub fn user_info(id: &str, username: &str, role: Role) -> UserInfo {
    UserInfo {
        id: id.to_string(),
        username: username.to_string(),
        role: role.as_str().to_string(),
        permissions: role.permissions().iter().map(|p| p.to_string()).collect(),
    }
}

fn issue_pair(
    state: &AppState,
    user: &users::UserRow,
    family: &str,
    refresh: String,
    device: Option<String>,
) -> AppResult<TokenPair> {
    let now = chrono::Utc::now().timestamp();
    let exp = now + state.cfg.auth.access_ttl_secs;
    let claims = Claims {
        sub: user.id.clone(),
        username: user.username.clone(),
        role: user.role.as_str().into(),
        permissions: user
            .role
            .permissions()
            .iter()
            .map(|p| p.to_string())
            .collect(),
        iat: now,
        exp,
        jti: uuid::Uuid::new_v4().to_string(),
        fam: family.to_string(),
        epoch: user.token_epoch,
        dev: device,
    };
    let access = state.keys.sign(&claims)?;
    Ok(TokenPair {
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer",
        expires_at: chrono::DateTime::from_timestamp(exp, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
        expires_in: state.cfg.auth.access_ttl_secs,
        user: user_info(&user.id, &user.username, user.role),
    })
}

enum LoginOutcome {
    Ok(Box<users::UserRow>, String, String),
    Failed(Option<i64>),
}

pub async fn login(
    state: &AppState,
    username: String,
    password: String,
    ip: Option<IpAddr>,
) -> AppResult<TokenPair> {
    login_device(state, username, password, ip, None).await
}

/// Sign-in bound to an enrolled device (already verified by the caller): the access
/// token's `dev` claim and the refresh token row carry it.
pub async fn login_device(
    state: &AppState,
    username: String,
    password: String,
    ip: Option<IpAddr>,
    device: Option<String>,
) -> AppResult<TokenPair> {
    let now = chrono::Utc::now().timestamp();
    state.throttle.check(ip, now)?;
    let lookup = username.clone();
    let user = state
        .db
        .read(move |c| users::find_by_username(c, &lookup))
        .await?;
    if let Some(u) = &user {
        if let Some(until) = u.locked_until.filter(|until| *until > now) {
            return Err(locked(until - now));
        }
    }
    let hash = user
        .as_ref()
        .map_or_else(|| dummy_hash().to_string(), |u| u.password_hash.clone());
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| AppError::internal(e.to_string()))?;
    let Some(user) = user else {
        state.throttle.fail(ip, now);
        return Err(ErrorCode::InvalidCredentials.into());
    };
    if ok && user.disabled {
        return Err(AppError::msg(
            ErrorCode::InvalidCredentials,
            "This account is disabled; ask the store owner.",
        ));
    }
    let cfg = state.cfg.clone();
    let ip_text = ip.map(|i| i.to_string());
    let device_row = device.clone();
    let outcome = state
        .db
        .write(move |c| {
            let actor = Actor {
                user_id: Some(user.id.clone()),
                username: Some(user.username.clone()),
                ip: ip_text,
                device_id: device_row.clone(),
            };
            if !ok {
                let locked = users::record_failed_login(
                    c,
                    &user.id,
                    cfg.auth.max_failed_logins,
                    cfg.auth.lockout_secs,
                    now,
                )?;
                audit(
                    c,
                    &actor,
                    "login.failed",
                    Some(("user", &user.id)),
                    json!({"locked": locked.is_some()}),
                )?;
                return Ok(LoginOutcome::Failed(locked));
            }
            users::record_successful_login(c, &user.id)?;
            let family = uuid::Uuid::new_v4().to_string();
            let refresh = random_token();
            users::insert_refresh(
                c,
                &user.id,
                &family,
                &sha256_hex(&refresh),
                device_row.as_deref(),
                now + cfg.auth.refresh_ttl_secs,
            )?;
            audit(c, &actor, "login", Some(("user", &user.id)), json!({}))?;
            Ok(LoginOutcome::Ok(Box::new(user), family, refresh))
        })
        .await?;
    match outcome {
        LoginOutcome::Ok(user, family, refresh) => {
            issue_pair(state, &user, &family, refresh, device)
        }
        LoginOutcome::Failed(Some(until)) => {
            state.throttle.fail(ip, now);
            Err(locked(until - now))
        }
        LoginOutcome::Failed(None) => {
            state.throttle.fail(ip, now);
            Err(ErrorCode::InvalidCredentials.into())
        }
    }
}

fn locked(retry_after: i64) -> AppError {
    AppError::msg(
        ErrorCode::LoginLocked,
        format!(
            "Too many failed sign-ins. Try again in {} minute(s).",
            (retry_after + 59) / 60
        ),
    )
    .with_details(json!({"retry_after_secs": retry_after}))
}

enum RefreshOutcome {
    Ok(Box<users::UserRow>, String, String, Option<String>),
    Err(ErrorCode),
}

pub async fn refresh(state: &AppState, token: String) -> AppResult<TokenPair> {
    let hash = sha256_hex(&token);
    let ttl = state.cfg.auth.refresh_ttl_secs;
    let outcome = state
        .db
        .write(move |c| {
            let now = chrono::Utc::now().timestamp();
            let Some(row) = users::find_refresh(c, &hash)? else {
                return Ok(RefreshOutcome::Err(ErrorCode::InvalidToken));
            };
            if row.revoked {
                return Ok(RefreshOutcome::Err(ErrorCode::InvalidToken));
            }
            if row.used {
                // A rotated token came back: someone copied it. End the whole family.
                users::revoke_family(c, &row.family_id)?;
                audit(
                    c,
                    &Actor::system("auth"),
                    "refresh.reuse_detected",
                    Some(("user", &row.user_id)),
                    json!({"family": row.family_id}),
                )?;
                return Ok(RefreshOutcome::Err(ErrorCode::InvalidToken));
            }
            if row.expires_unix <= now {
                return Ok(RefreshOutcome::Err(ErrorCode::TokenExpired));
            }
            let user = match users::find_by_id(c, &row.user_id)? {
                Some(u) if !u.disabled => u,
                _ => return Ok(RefreshOutcome::Err(ErrorCode::InvalidToken)),
            };
            if !users::mark_refresh_used(c, &row.id)? {
                return Ok(RefreshOutcome::Err(ErrorCode::InvalidToken));
            }
            let next = random_token();
            users::insert_refresh(
                c,
                &user.id,
                &row.family_id,
                &sha256_hex(&next),
                row.device_id.as_deref(),
                now + ttl,
            )?;
            Ok(RefreshOutcome::Ok(
                Box::new(user),
                row.family_id,
                next,
                row.device_id,
            ))
        })
        .await?;
    match outcome {
        RefreshOutcome::Ok(user, family, next, device) => {
            issue_pair(state, &user, &family, next, device)
        }
        RefreshOutcome::Err(code) => Err(code.into()),
    }
}

pub async fn logout(state: &AppState, user: &AuthUser) -> AppResult<()> {
    let family = user.family.clone();
    let actor = user.actor();
    state
        .db
        .write(move |c| {
            users::revoke_family(c, &family)?;
            audit(c, &actor, "logout", None, json!({}))
        })
        .await
}

/// Checks a bearer token: signature, expiry, the user still enabled, the session not
/// ended. The role comes from the database, so a changed role applies at once.
pub async fn authenticate(
    state: &AppState,
    token: &str,
    ip: Option<IpAddr>,
) -> AppResult<AuthUser> {
    let claims = state.keys.verify(token).map_err(|e| match e {
        TokenError::Expired => AppError::new(ErrorCode::TokenExpired),
        TokenError::Invalid => AppError::new(ErrorCode::InvalidToken),
    })?;
    let fam = claims.fam.clone();
    let sub = claims.sub.clone();
    let dev = claims.dev.clone();
    let (user, revoked) = state
        .db
        .read(move |c| {
            // A revoked device's tokens stop working at once.
            let device_revoked = match &dev {
                Some(d) => crate::db::devices::device_revoked(c, d)?,
                None => false,
            };
            Ok((
                users::find_by_id(c, &sub)?,
                users::family_revoked(c, &fam)? || device_revoked,
            ))
        })
        .await?;
    let user = user.ok_or(ErrorCode::InvalidToken)?;
    if user.disabled || revoked || user.token_epoch != claims.epoch {
        return Err(ErrorCode::InvalidToken.into());
    }
    Ok(AuthUser {
        id: user.id,
        username: user.username,
        role: user.role,
        family: claims.fam,
        device_id: claims.dev,
        ip,
    })
}
