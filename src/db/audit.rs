//! Reading the audit log (entries are written by `users::audit`).

use crate::db::CachedExt;
use rusqlite::types::ToSql;
use rusqlite::Connection;
use serde::Serialize;

use crate::error::AppResult;
use crate::model::Pagination;

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact action, or a prefix when it ends with '.' or '*' ("user." / "device.*").
    pub action: Option<String>,
    /// Action prefixes, any of which matches (a family, see `domain::audit`).
    pub prefixes: &'static [&'static str],
    /// Username (case-insensitive) or user id.
    pub actor: Option<String>,
    /// RFC 3339 UTC bounds, [from, to).
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditView {
    pub id: i64,
    pub at: String,
    pub actor_user_id: Option<String>,
    pub actor: Option<String>,
    pub action: String,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub ip: Option<String>,
    pub device_id: Option<String>,
    /// What the action recorded (free-form per action).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

pub fn list_audit(
    conn: &Connection,
    f: &AuditFilter,
    limit: i64,
    offset: i64,
) -> AppResult<(Vec<AuditView>, Pagination)> {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    if let Some(a) = &f.action {
        if let Some(prefix) = a
            .strip_suffix('*')
            .or_else(|| a.ends_with('.').then_some(a))
        {
            clauses.push("substr(action, 1, length(?)) = ?".into());
            args.push(Box::new(prefix.to_string()));
            args.push(Box::new(prefix.to_string()));
        } else {
            clauses.push("action = ?".into());
            args.push(Box::new(a.clone()));
        }
    }
    if !f.prefixes.is_empty() {
        // domain::audit::in_prefix in SQL: the prefix itself, or the prefix and a dot.
        let any: Vec<&str> = f
            .prefixes
            .iter()
            .map(|_| "(action = ? OR substr(action, 1, length(?) + 1) = ? || '.')")
            .collect();
        let joined = format!("({})", any.join(" OR "));
        clauses.push(joined);
        for p in f.prefixes {
            for _ in 0..3 {
                args.push(Box::new(p.to_string()));
            }
        }
    }
    if let Some(a) = &f.actor {
        clauses.push("(actor = ? COLLATE NOCASE OR actor_user_id = ?)".into());
        args.push(Box::new(a.clone()));
        args.push(Box::new(a.clone()));
    }
    if let Some(t) = &f.from {
        clauses.push("at >= ?".into());
        args.push(Box::new(t.clone()));
    }
    if let Some(t) = &f.to {
        clauses.push("at < ?".into());
        args.push(Box::new(t.clone()));
    }
    let where_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let total: i64 = conn.row_cached(
        &format!("SELECT COUNT(*) FROM audit_log {where_sql}"),
        rusqlite::params_from_iter(args.iter().map(|a| a.as_ref())),
        |r| r.get(0),
    )?;
    args.push(Box::new(limit));
    args.push(Box::new(offset));
    let mut stmt = conn.prepare(&format!(
        "SELECT id, at, actor_user_id, actor, action, object_type, object_id, ip, device_id, details
         FROM audit_log {where_sql} ORDER BY id DESC LIMIT ? OFFSET ?"
    ))?;
    let rows = stmt
        .query_map(
            rusqlite::params_from_iter(args.iter().map(|a| a.as_ref())),
            |r| {
                let details: String = r.get(9)?;
                Ok(AuditView {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor_user_id: r.get(2)?,
                    actor: r.get(3)?,
                    action: r.get(4)?,
                    object_type: r.get(5)?,
                    object_id: r.get(6)?,
                    ip: r.get(7)?,
                    device_id: r.get(8)?,
                    details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, Pagination::new(limit, offset, total)))
}
