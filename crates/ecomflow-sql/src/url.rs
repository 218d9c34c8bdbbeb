//! Database URLs: which database a URL names, offline syntax checks, and the URL as shown in
//! messages (without its password).

use crate::dialect::Dialect;
use sqlx::sqlite::SqliteConnectOptions;
use std::str::FromStr;

/// The dialect of `url` after checking what can be checked without I/O.
pub fn dialect_of(url: &str) -> Result<Dialect, String> {
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(format!(
            "`{}` is not a database URL: expected `sqlite://path/to/file.db`, `sqlite::memory:` \
             or `postgres://user:password@host:port/database`",
            redact(url)
        ));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => {
            let path = rest.trim_start_matches("//");
            if path.is_empty() || path.starts_with('?') {
                return Err(format!("`{url}` names no database file"));
            }
            SqliteConnectOptions::from_str(url)
                .map_err(|e| format!("`{url}` is not a valid SQLite URL: {e}"))?;
            Ok(Dialect::Sqlite)
        }
        "postgres" | "postgresql" => {
            check_postgres(rest).map_err(|e| format!("`{}` {e}", redact(url)))?;
            Ok(Dialect::Postgres)
        }
        other => Err(format!(
            "unknown database `{other}` in `{}`: the URL must start with `sqlite:`, \
             `postgres:` or `postgresql:`",
            redact(url)
        )),
    }
}

/// Checks the part of a PostgreSQL URL after `postgres:` (authority and port syntax).
fn check_postgres(rest: &str) -> Result<(), String> {
    let Some(after) = rest.strip_prefix("//") else {
        return Err("is not a PostgreSQL URL: expected `postgres://...`".into());
    };
    let authority = after.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // `[::1]:5432` or `host:5432`.
    let port = match host_port.rsplit_once(']') {
        Some((_, tail)) => tail.strip_prefix(':'),
        None => host_port.rsplit_once(':').map(|(_, p)| p),
    };
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!("has an invalid port `{port}`"));
    }
    Ok(())
}

/// `url` without its password and query string, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    if scheme.eq_ignore_ascii_case("sqlite") {
        return url.to_string();
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{user}@{host}")
        }
        None => authority.to_string(),
    };
    let path = path.split('?').next().unwrap_or_default();
    format!("{scheme}://{authority}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_pick_the_dialect() {
        assert_eq!(dialect_of("sqlite://out/a.db"), Ok(Dialect::Sqlite));
        assert_eq!(dialect_of("sqlite::memory:"), Ok(Dialect::Sqlite));
        assert_eq!(dialect_of("sqlite:a.db?mode=rwc"), Ok(Dialect::Sqlite));
        assert_eq!(
            dialect_of("postgres://postgres:postgres@localhost:5433/postgres"),
            Ok(Dialect::Postgres)
        );
        assert_eq!(
            dialect_of("postgresql://u@[::1]:5432/db"),
            Ok(Dialect::Postgres)
        );
        assert_eq!(
            dialect_of("postgres:///db?host=/run/pg"),
            Ok(Dialect::Postgres)
        );
    }

    #[test]
    fn bad_urls_are_explained_without_the_password() {
        let e = dialect_of("mysql://root:hunter2@db/x").expect_err("unknown scheme");
        assert!(e.contains("unknown database `mysql`"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = dialect_of("transactions.db").expect_err("no scheme");
        assert!(e.contains("not a database URL"), "{e}");
        let e = dialect_of("sqlite://").expect_err("no file");
        assert!(e.contains("names no database file"), "{e}");
        let e = dialect_of("sqlite://a.db?mode=sideways").expect_err("bad mode");
        assert!(e.contains("not a valid SQLite URL"), "{e}");
        let e = dialect_of("postgres://u:hunter2@host:54x/db").expect_err("bad port");
        assert!(
            e.contains("invalid port `54x`") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn redaction_drops_password_and_query() {
        assert_eq!(
            redact("postgres://postgres:secret@localhost:5433/postgres?password=secret"),
            "postgres://postgres@localhost:5433/postgres"
        );
        assert_eq!(redact("postgres://localhost/db"), "postgres://localhost/db");
        assert_eq!(redact("sqlite://out/a.db"), "sqlite://out/a.db");
    }
}
