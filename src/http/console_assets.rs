//! The console's files, embedded from `static/` with rust-embed.
//!
//! Caching scheme: one build id, a hash of every embedded file (names and bytes), is
//! computed at first use. Assets are served under `/console/assets/<build>/<file>` with
//! `max-age=31536000, immutable`; the page shell (`index.html`, `no-cache`) names that
//! directory. The JS modules import each other by relative paths, so they need no
//! rewriting: any change to any file gives every asset a new URL. A whole-console hash
//! instead of one per file costs a full re-download after an upgrade — a few tens of
//! kilobytes on a LAN — and keeps the files free of a build step.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::{AppError, ErrorCode};

#[derive(rust_embed::RustEmbed)]
#[folder = "static/"]
#[exclude = "*.md"]
#[exclude = "vendor/*"]
struct Files;

/// The console's Content-Security-Policy: nothing inline, nothing from elsewhere;
/// `connect-src 'self'` covers the same-origin WebSocket too.
pub const CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

struct Built {
    build: String,
    shell: String,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut names: Vec<String> = Files::iter().map(|n| n.to_string()).collect();
        names.sort();
        let mut hasher = Sha256::new();
        for name in &names {
            if let Some(f) = Files::get(name) {
                hasher.update(name.as_bytes());
                hasher.update([0]);
                hasher.update(&f.data);
                hasher.update([0]);
            }
        }
        let build = hex::encode(hasher.finalize())[..12].to_string();
        let template = Files::get("index.html")
            .map(|f| String::from_utf8_lossy(&f.data).into_owned())
            .unwrap_or_default();
        let shell = template.replace("{{ASSETS}}", &format!("/console/assets/{build}"));
        Built { build, shell }
    })
}

/// The build id of the embedded console (also shown in the page).
pub fn build_id() -> &'static str {
    &built().build
}

/// The type rust-embed's `mime-guess` gives the file; text gets `charset=utf-8` (the
/// console's files are UTF-8, and the browser must not guess).
fn content_type(file: &rust_embed::EmbeddedFile) -> HeaderValue {
    let mime = file.metadata.mimetype();
    let text = mime.starts_with("text/") || mime == "application/javascript";
    let value = if text && !mime.contains("charset") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

fn with_headers(body: Vec<u8>, ctype: HeaderValue, cache: &'static str) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, ctype);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// The page shell; the console routes in the browser (`/console/transactions`, …).
pub async fn shell() -> Response {
    with_headers(
        built().shell.clone().into_bytes(),
        HeaderValue::from_static("text/html; charset=utf-8"),
        "no-cache",
    )
}

/// `/console/assets/<build>/<file>`, or the shell for any other console path.
pub async fn page_or_asset(Path(path): Path<String>) -> Response {
    let Some(rest) = path.strip_prefix("assets/") else {
        return shell().await;
    };
    let not_found = || AppError::msg(ErrorCode::NotFound, "No such console file.").into_response();
    let Some((build, file)) = rest.split_once('/') else {
        return not_found();
    };
    // An old build's files are gone; a stale page must reload rather than mix versions.
    if build != built().build || file.contains("..") {
        return not_found();
    }
    match Files::get(&format!("assets/{file}")) {
        Some(f) => with_headers(
            f.data.clone().into_owned(),
            content_type(&f),
            "public, max-age=31536000, immutable",
        ),
        None => not_found(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn embedded_files_get_their_types_and_text_is_utf8() {
        let ct = |name: &str| content_type(&Files::get(name).unwrap());
        assert_eq!(ct("assets/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(ct("assets/app.css"), "text/css; charset=utf-8");
        assert_eq!(ct("index.html"), "text/html; charset=utf-8");
        assert_eq!(ct("assets/favicon.svg"), "image/svg+xml");
    }
}
