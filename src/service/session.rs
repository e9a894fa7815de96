//! The console's cookie sessions: sign-in, the CSRF token each session carries, sign-out
//! (here or everywhere), the session's locale.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::json;

use crate::auth::{random_token, sha256_hex};
use crate::db::sessions::{self as store, NewSession, SessionRow};
use crate::db::users::{self, audit, Actor};
use crate::domain::LOCALES;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::model::UserInfo;
use crate::service::auth::{self as auth_service, AuthUser};
use crate::service::state::AppState;

/// The console's session cookie.
pub const SESSION_COOKIE: &str = "mps_session";
/// A console sign-in lasts a working day.
pub const SESSION_TTL_SECS: i64 = 12 * 3600;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoreInfo {
    pub name: String,
    pub site_code: String,
    pub timezone: String,
    /// The label the console shows with amounts ("NT$").
    pub currency: String,
    /// `standalone` (no central) or `central`.
    #[schema(value_type = String)]
    pub mode: &'static str,
    pub demo: bool,
}

/// What the console needs after sign-in or a page reload.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionPayload {
    pub csrf_token: String,
    pub user: UserInfo,
    pub locale: String,
    pub store: StoreInfo,
    pub expires_at: String,
}

async fn payload(
    state: &AppState,
    user: UserInfo,
    csrf_token: String,
    expires_unix: i64,
) -> AppResult<SessionPayload> {
    let uid = user.id.clone();
    let (locale, demo) = state
        .db
        .read(move |c| Ok((store::user_locale(c, &uid)?, crate::db::demo::is_loaded(c)?)))
        .await?;
    Ok(SessionPayload {
        csrf_token,
        user,
        locale: locale
            .filter(|l| LOCALES.contains(&l.as_str()))
            .unwrap_or_else(|| LOCALES[0].to_string()),
        store: StoreInfo {
            name: state.settings.read().settings.store_name.clone(),
            site_code: state.cfg.site.code.clone(),
            timezone: crate::service::settings::store_timezone(state)
                .name()
                .to_string(),
            currency: crate::service::settings::store_currency(state),
            mode: if state.cfg.standalone() {
                "standalone"
            } else {
                "central"
            },
            demo,
        },
        expires_at: chrono::DateTime::from_timestamp(expires_unix, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
    })
}

/// Signs in with the POS sign-in rules (lockout, per-address throttle, audit) and opens a
/// console session. Returns the cookie token (given to the browser only) and the payload.
pub async fn login(
    state: &AppState,
    username: String,
    password: String,
    ip: Option<IpAddr>,
    user_agent: Option<String>,
) -> AppResult<(String, SessionPayload)> {
    let pair = auth_service::login(state, username, password, ip).await?;
    // The console session joins the sign-in family just created (its refresh token is
    // never handed out), so bearer logout, token epochs and family revocation apply.
    let claims = state
        .keys
        .verify(&pair.access_token)
        .map_err(|_| AppError::internal("a token just issued does not verify"))?;
    let token = random_token();
    let csrf = random_token();
    let expires = chrono::Utc::now().timestamp() + SESSION_TTL_SECS;
    let (token_hash, csrf2, ip_text) =
        (sha256_hex(&token), csrf.clone(), ip.map(|i| i.to_string()));
    let user = pair.user.clone();
    let actor = Actor {
        user_id: Some(user.id.clone()),
        username: Some(user.username.clone()),
        ip: ip_text.clone(),
        device_id: None,
        approved_by: None,
    };
    let ua: Option<String> = user_agent.map(|u| u.chars().take(300).collect());
    state
        .db
        .write(move |c| {
            let id = store::insert_session(
                c,
                &NewSession {
                    token_hash: &token_hash,
                    user_id: &claims.sub,
                    family_id: &claims.fam,
                    token_epoch: claims.epoch,
                    csrf_token: &csrf2,
                    ip: ip_text.as_deref(),
                    user_agent: ua.as_deref(),
                    expires_unix: expires,
                },
            )?;
            audit(
                c,
                &actor,
                "console.login",
                Some(("console_session", &id)),
                json!({"user_agent": ua}),
            )
        })
        .await?;
    let body = payload(state, user, csrf, expires).await?;
    Ok((token, body))
}

/// Whether a request must prove it came from the console page.
pub enum Csrf<'a> {
    NotNeeded,
    Header(Option<&'a str>),
}

/// Checks a console cookie: the session exists, is neither expired nor revoked, its user
/// is enabled with the same token epoch, its family is not revoked; then the CSRF token.
pub async fn authenticate_session(
    state: &AppState,
    token: &str,
    csrf: Csrf<'_>,
    ip: Option<IpAddr>,
) -> AppResult<(AuthUser, SessionRow)> {
    let hash = sha256_hex(token);
    let found = state
        .db
        .read(move |c| {
            let Some(s) = store::find_session(c, &hash)? else {
                return Ok(None);
            };
            let user = users::find_by_id(c, &s.user_id)?;
            let family_revoked = users::family_revoked(c, &s.family_id)?;
            Ok(Some((s, user, family_revoked)))
        })
        .await?;
    let expired = || {
        AppError::msg(
            ErrorCode::NotAuthenticated,
            "Your console session has ended; sign in again.",
        )
    };
    let Some((session, Some(user), family_revoked)) = found else {
        return Err(expired());
    };
    let now = chrono::Utc::now().timestamp();
    if session.revoked
        || session.expires_unix <= now
        || family_revoked
        || user.disabled
        || user.token_epoch != session.token_epoch
    {
        return Err(expired());
    }
    if let Csrf::Header(given) = csrf {
        let ok = given.is_some_and(|g| {
            // Constant time: the comparison time says nothing about the token.
            subtle::ConstantTimeEq::ct_eq(g.as_bytes(), session.csrf_token.as_bytes()).into()
        });
        if !ok {
            return Err(AppError::msg(
                ErrorCode::CsrfTokenInvalid,
                "This request needs the X-CSRF-Token header of your console session.",
            ));
        }
    }
    Ok((
        AuthUser {
            id: user.id,
            username: user.username,
            role: user.role,
            family: session.family_id.clone(),
            device_id: None,
            ip,
        },
        session,
    ))
}

pub async fn session_payload(
    state: &AppState,
    user: &AuthUser,
    session: &SessionRow,
) -> AppResult<SessionPayload> {
    payload(
        state,
        user.info(),
        session.csrf_token.clone(),
        session.expires_unix,
    )
    .await
}

pub async fn logout(state: &AppState, user: &AuthUser, session_id: String) -> AppResult<()> {
    let actor = user.actor();
    let family = user.family.clone();
    state
        .db
        .write(move |c| {
            store::revoke_session(c, &session_id)?;
            users::revoke_family(c, &family)?;
            audit(
                c,
                &actor,
                "console.logout",
                Some(("console_session", &session_id)),
                json!({}),
            )
        })
        .await
}

/// Ends every console session and bearer token of the caller.
pub async fn logout_everywhere(state: &AppState, user: &AuthUser) -> AppResult<()> {
    let actor = user.actor();
    let id = user.id.clone();
    state
        .db
        .write(move |c| {
            store::end_all_sessions(c, &id)?;
            audit(
                c,
                &actor,
                "user.sign_out_everywhere",
                Some(("user", &id)),
                json!({}),
            )
        })
        .await
}

pub async fn set_locale(state: &AppState, user: &AuthUser, locale: String) -> AppResult<()> {
    if !LOCALES.contains(&locale.as_str()) {
        return Err(AppError::validation(
            "locale",
            format!("locale must be one of: {}.", LOCALES.join(", ")),
        ));
    }
    let id = user.id.clone();
    state
        .db
        .write(move |c| store::set_locale(c, &id, &locale))
        .await
}
