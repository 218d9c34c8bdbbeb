//! Who may read what: the `[http] token` that every path but the open ones requires (as
//! `Authorization: Bearer <token>`, their SHA-256 digests compared in constant time), and the
//! limits on taps (how many stream at once, how fast).

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ecomflow_runtime::HttpConfig;
use ecomflow_runtime::http_config::Token;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The server's rules, from `[http]`.
#[derive(Clone)]
pub struct Access {
    token: Option<Arc<Token>>,
    /// Tap streams open now: a permit each, held while it streams.
    taps: Arc<Semaphore>,
    /// How many taps may stream at once.
    pub max_taps: u32,
    /// The highest rate a tap may ask for.
    pub max_tap_rate: u32,
}

impl Access {
    /// The rules `config` gives.
    pub fn new(config: &HttpConfig) -> Access {
        Access {
            token: config.token.clone().map(Arc::new),
            taps: Arc::new(Semaphore::new(config.max_taps as usize)),
            max_taps: config.max_taps,
            max_tap_rate: config.max_tap_rate,
        }
    }

    /// Whether `request` carries the token (always, when there is none).
    fn allows(&self, request: &Request) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .unwrap_or_default();
        // Digests of equal length, compared in constant time: neither the token's bytes nor
        // its length show in how long a refusal takes.
        let digest = |t: &str| Sha256::digest(t.as_bytes());
        digest(given).ct_eq(&digest(token.expose())).into()
    }

    /// A place for one more tap, held while it streams; none when `max_taps` stream already.
    pub fn tap_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.taps.clone().try_acquire_owned().ok()
    }
}

/// Answers 401 to a request without the token; passes the others on.
pub async fn require_token(access: Access, request: Request, next: Next) -> Response {
    if access.allows(&request) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "this path needs the run's token: `Authorization: Bearer <token>` ([http] token)\n",
    )
        .into_response()
}
