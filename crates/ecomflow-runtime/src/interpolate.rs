//! `${VAR}` and `${VAR:-default}` in string values; `$${` writes a literal `${`.

/// Why a string could not be interpolated.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum InterpolateError {
    /// The variable is not set and has no default.
    #[error("environment variable `{0}` is not set")]
    Unset(String),
    /// A `${` without its closing `}`.
    #[error("`${{` without a closing `}}`")]
    Unclosed,
}

/// Replaces variables in `s`, looking each up with `lookup`. Returns `None` when `s` has no
/// `$` at all (the common case, so nothing is copied).
pub fn interpolate(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, InterpolateError> {
    if !s.contains('$') {
        return Ok(None);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail.find('}').ok_or(InterpolateError::Unclosed)?;
            let inner = &tail[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            match (lookup(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(InterpolateError::Unset(name.to_string())),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "HOST").then(|| "db.local".to_string())
    }

    #[test]
    fn replaces_set_and_default_values() {
        assert_eq!(interpolate("plain", &env), Ok(None));
        assert_eq!(
            interpolate("pg://${HOST}:${PORT:-5433}/x", &env),
            Ok(Some("pg://db.local:5433/x".into()))
        );
        assert_eq!(
            interpolate("$${HOST} $5", &env),
            Ok(Some("${HOST} $5".into()))
        );
        assert_eq!(interpolate("${EMPTY:-}", &env), Ok(Some(String::new())));
    }

    #[test]
    fn unset_without_default_and_unclosed_are_errors() {
        assert_eq!(
            interpolate("${NOPE}", &env),
            Err(InterpolateError::Unset("NOPE".into()))
        );
        assert_eq!(interpolate("${HOST", &env), Err(InterpolateError::Unclosed));
    }
}
