//! Sign-in, token refresh and rotation, sign-out, and checking a bearer token.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::json;

use crate::auth::{random_token, sha256_hex, Claims, TokenError};
use crate::db::signin;
use crate::db::users::{self, audit, Actor};
use crate::domain::signin::Verdict;
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
            approved_by: None,
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

/// Signs the access token of a pair. `iat` and `jti` are given so that a refresh retry
/// within the grace window re-signs exactly the token it was first given (HS256 of the
/// same claims is the same text).
fn issue_pair(
    state: &AppState,
    user: &users::UserRow,
    family: &str,
    refresh: String,
    device: Option<String>,
    (iat, jti): (i64, String),
) -> AppResult<TokenPair> {
    let exp = iat + state.cfg.auth.access_ttl_secs;
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
        iat,
        exp,
        jti,
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

fn fresh_access() -> (i64, String) {
    (
        chrono::Utc::now().timestamp(),
        uuid::Uuid::new_v4().to_string(),
    )
}

pub async fn login(
    state: &AppState,
    username: String,
    password: String,
    ip: Option<IpAddr>,
) -> AppResult<TokenPair> {
    let ticket = state.passwords.try_admit()?;
    Box::pin(login_device(state, username, password, ip, None, ticket)).await
}

/// Sign-in bound to an enrolled device (already verified by the caller): the access
/// token's `dev` claim and the refresh token row carry it.
///
/// The order is the defence: a place in the password pool (`ticket`, taken by the caller
/// before this future is even built: under a flood the refused requests then cost a few
/// hundred bytes each, not this future's size); the attempt reserved and counted as failed in one writer job (else 429, no
/// hashing); a locked account's turn waited for; one argon2 check (against the dummy
/// hash for an unknown username, and done for a disabled one too); the outcome settled.
/// Every failure — unknown, disabled, locked or wrong — is the same 401 with the same
/// message after the same work.
pub async fn login_device(
    state: &AppState,
    username: String,
    password: String,
    ip: Option<IpAddr>,
    device: Option<String>,
    ticket: crate::service::passwords::Ticket,
) -> AppResult<TokenPair> {
    let policy = state.cfg.auth.signin_policy();
    let ip_key = ip.map(|i| i.to_string()).unwrap_or_default();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let (name, key) = (username.clone(), ip_key.clone());
    let (verdict, user) = state
        .db
        .write(move |c| {
            let verdict = signin::reserve(c, &policy, &name, &key, now_ms)?;
            Ok((verdict, users::find_by_username(c, &name)?))
        })
        .await?;
    let wait_ms = match verdict {
        Verdict::Refuse { retry_after_secs } => {
            crate::metrics::signin_outcome("throttled");
            return Err(throttled(retry_after_secs));
        }
        Verdict::Check { wait_ms, .. } => wait_ms,
    };
    let settle = |outcome: signin::Outcome, user: Option<users::UserRow>| {
        let (name, key, ip_text) = (username.clone(), ip_key.clone(), ip.map(|i| i.to_string()));
        let device_row = device.clone();
        let cfg = state.cfg.clone();
        state.db.write(move |c| {
            let actor = Actor {
                user_id: user.as_ref().map(|u| u.id.clone()),
                username: Some(name.clone()),
                ip: ip_text,
                device_id: device_row.clone(),
                approved_by: None,
            };
            let now = chrono::Utc::now().timestamp();
            signin::settle(c, &policy, &name, &key, outcome, now, &actor)?;
            if outcome != signin::Outcome::Success {
                if let (signin::Outcome::Failure, Some(u)) = (outcome, &user) {
                    audit(c, &actor, "login.failed", Some(("user", &u.id)), json!({}))?;
                }
                return Ok(None);
            }
            let Some(user) = user else { return Ok(None) };
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
            Ok(Some((user, family, refresh)))
        })
    };
    let ticket = if wait_ms > 0 {
        // A locked account's turn: the place in the pool is not held while waiting.
        drop(ticket);
        tokio::time::sleep(std::time::Duration::from_millis(wait_ms.unsigned_abs())).await;
        match state.passwords.try_admit() {
            Ok(t) => t,
            Err(e) => {
                settle(signin::Outcome::Abandoned, None).await?;
                return Err(e);
            }
        }
    } else {
        ticket
    };
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let checked = match ticket.verify(password, hash).await {
        Ok(c) => c,
        Err(e) => {
            settle(signin::Outcome::Abandoned, None).await?;
            return Err(e);
        }
    };
    let accepted = checked.ok && user.as_ref().is_some_and(|u| !u.disabled);
    if !accepted {
        settle(signin::Outcome::Failure, user).await?;
        crate::metrics::signin_outcome("failed");
        return Err(ErrorCode::InvalidCredentials.into());
    }
    if let (Some(new_hash), Some(u)) = (checked.rehashed, &user) {
        let id = u.id.clone();
        state
            .db
            .write(move |c| users::set_password_hash(c, &id, &new_hash))
            .await?;
    }
    let Some((user, family, refresh)) = settle(signin::Outcome::Success, user).await? else {
        return Err(ErrorCode::InvalidCredentials.into());
    };
    crate::metrics::signin_outcome("ok");
    issue_pair(state, &user, &family, refresh, device, fresh_access())
}

/// Refused before any check. The same answer whether the username exists or not.
fn throttled(retry_after: i64) -> AppError {
    AppError::msg(
        ErrorCode::LoginLocked,
        format!("Too many failed sign-ins for this username from this address; try again in {retry_after} second(s)."),
    )
    .with_details(json!({"retry_after_secs": retry_after}))
}

enum RefreshOutcome {
    Ok {
        user: Box<users::UserRow>,
        family: String,
        device: Option<String>,
        access: (i64, String),
    },
    Err(ErrorCode),
}

/// Rotates a refresh token. Presented again within `auth.refresh_grace_secs` (a POS
/// retrying after a lost answer, or parallel retries) it returns the same new pair:
/// the successor token is re-derived from it (`JwtKeys::successor_refresh`) and the
/// access token re-signed from the stored `jti`/`iat`, as long as that successor has
/// not itself been used. Any other reuse of a rotated token revokes the whole family.
pub async fn refresh(state: &AppState, token: String) -> AppResult<TokenPair> {
    let hash = sha256_hex(&token);
    let next = state.keys.successor_refresh(&token);
    let next_hash = sha256_hex(&next);
    let ttl = state.cfg.auth.refresh_ttl_secs;
    let grace = state.cfg.auth.refresh_grace_secs;
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
                if let Some(replay) = replay_within_grace(c, &row, &next_hash, now, grace)? {
                    return Ok(replay);
                }
                // A rotated token came back late: someone copied it. End the whole family.
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
            let (iat, jti) = fresh_access();
            if !users::mark_refresh_used(c, &row.id, now, &jti, iat)? {
                return Ok(RefreshOutcome::Err(ErrorCode::InvalidToken));
            }
            users::insert_refresh(
                c,
                &user.id,
                &row.family_id,
                &next_hash,
                row.device_id.as_deref(),
                now + ttl,
            )?;
            Ok(RefreshOutcome::Ok {
                user: Box::new(user),
                family: row.family_id,
                device: row.device_id,
                access: (iat, jti),
            })
        })
        .await?;
    match outcome {
        RefreshOutcome::Ok {
            user,
            family,
            device,
            access,
        } => issue_pair(state, &user, &family, next, device, access),
        RefreshOutcome::Err(code) => Err(code.into()),
    }
}

/// The pair first handed out for `row`, if `row` was rotated less than `grace` seconds
/// ago, its successor is still unused and the session and user are still good.
fn replay_within_grace(
    c: &rusqlite::Connection,
    row: &users::RefreshRow,
    next_hash: &str,
    now: i64,
    grace: i64,
) -> AppResult<Option<RefreshOutcome>> {
    let (Some(used), Some(jti), Some(iat)) = (row.used_unix, row.next_jti.clone(), row.next_iat)
    else {
        return Ok(None);
    };
    if !refresh_retry_allowed(now, used, grace) {
        return Ok(None);
    }
    let successor = users::find_refresh(c, next_hash)?;
    let Some(successor) = successor
        .filter(|s| !s.used && !s.revoked && s.family_id == row.family_id && s.expires_unix > now)
    else {
        return Ok(None);
    };
    let Some(user) = users::find_by_id(c, &row.user_id)?.filter(|u| !u.disabled) else {
        return Ok(None);
    };
    Ok(Some(RefreshOutcome::Ok {
        user: Box::new(user),
        family: successor.family_id,
        device: successor.device_id,
        access: (iat, jti),
    }))
}

/// A rotated refresh token may be presented again for `grace` seconds after it was used
/// (and as long before, should the clock have stepped back: a retry then must not end
/// the session either).
pub fn refresh_retry_allowed(now: i64, used_unix: i64, grace: i64) -> bool {
    (-grace..=grace).contains(&(now - used_unix))
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
            // A family no sign-in made (None) is refused like a revoked one: a token is
            // only good for a session this server started.
            let family_ended = users::family_revoked_or_unknown(c, &fam)?.unwrap_or(true);
            Ok((users::find_by_id(c, &sub)?, family_ended || device_revoked))
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

#[cfg(test)]
mod tests {
    use super::refresh_retry_allowed;

    #[test]
    fn a_refresh_retry_is_allowed_within_the_grace_window_only() {
        let used = 1_800_000_000;
        let cases = [
            (used, 30, true),
            (used + 30, 30, true),
            (used + 31, 30, false),
            (used - 1, 30, true), // the clock stepped back a little
            (used - 31, 30, false),
            (used, 0, true),
            (used + 1, 0, false),
        ];
        for (now, grace, allowed) in cases {
            assert_eq!(
                refresh_retry_allowed(now, used, grace),
                allowed,
                "now {now} grace {grace}"
            );
        }
    }
}
