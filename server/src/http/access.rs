//! Access control for a shared deployment: who a request is, what it may do, and how often.
//!
//! With tokens on (`failscope serve --auth`, and always on a non-loopback address) every request
//! but `/api/health` and the sign-in page is signed in by a token: `Authorization: Bearer …` or the
//! `failscope_token` cookie that the sign-in form sets. Without one, the API answers 401 and a page
//! answers 401 with the sign-in form (which returns to the page after signing in). The middleware
//! [`guard`] then
//! - limits each client (its token, else its address) to a rate, answering 429 beyond it;
//! - refuses every change (`POST`, `DELETE`) to a viewer, except starting a job whose result is
//!   stored already (which `http::latent` checks): 403;
//! - hides the studies outside a token's scope: `/api/studies/{id}/…` answers 404 as for a study
//!   that does not exist.
//!
//! Handlers read the caller as an `Extension<Identity>`; without tokens it is [`local`], an analyst
//! who sees everything.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use failscope_shared::api::{Identity, Role};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

use super::{AppError, AppState};

/// The sign-in cookie.
const COOKIE: &str = "failscope_token";
/// How long the sign-in cookie lasts (30 days).
const COOKIE_MAX_AGE: u32 = 30 * 24 * 3600;
/// Keys the rate limiter remembers before it forgets the idle ones.
const MAX_RATE_KEYS: usize = 10_000;

/// How the server admits requests.
#[derive(Clone)]
pub struct Access {
    /// Whether every request must carry a token.
    pub tokens: bool,
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
}

impl Default for Access {
    fn default() -> Self {
        Self::new(false, Some(DEFAULT_RATE))
    }
}

/// Requests per second each client may make by default (bursts of up to five seconds' worth).
pub const DEFAULT_RATE: NonZeroU32 = NonZeroU32::new(100).expect("non-zero");

impl Access {
    /// Tokens required or not; `rate` requests per second per client (`None`: unlimited).
    pub fn new(tokens: bool, rate: Option<NonZeroU32>) -> Self {
        let limiter = rate.map(|r| {
            let burst = r.saturating_mul(NonZeroU32::new(5).expect("non-zero"));
            Arc::new(RateLimiter::keyed(Quota::per_second(r).allow_burst(burst)))
        });
        Self { tokens, limiter }
    }

    /// Whether a request from `client` may go ahead now.
    fn admit(&self, client: &str) -> bool {
        let Some(limiter) = &self.limiter else {
            return true;
        };
        if limiter.len() > MAX_RATE_KEYS {
            limiter.retain_recent();
        }
        limiter.check_key(&client.to_string()).is_ok()
    }
}

/// The caller when the server runs without tokens: an analyst who sees every study.
pub fn local() -> Identity {
    Identity {
        name: "local".into(),
        role: Role::Analyst,
        studies: None,
        access_control: false,
    }
}

/// The token a request carries: a bearer header, else the sign-in cookie.
fn token(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return v.strip_prefix("Bearer ").map(|t| t.trim().to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE).and_then(|r| r.strip_prefix('=')))
        .map(str::to_string)
}

/// Who `token` is, from the store.
async fn identify(state: &AppState, token: Option<String>) -> Result<Option<Identity>, AppError> {
    match token {
        None => Ok(None),
        Some(t) => super::with_store(state, move |s| s.authenticate(&t)).await,
    }
}

/// Paths open to everyone: the health check and signing in or out.
fn public(path: &str) -> bool {
    matches!(path, "/api/health" | "/signin" | "/signout")
}

/// `POST` routes a viewer may call: starting a job, allowed when its result is stored already.
fn viewer_may_post(path: &str) -> bool {
    path.starts_with("/api/studies/") && (path.ends_with("/embeddings") || path.ends_with("/clusterings"))
}

/// The study id a path names (`/api/studies/{id}/…`), if any.
fn studies_of(path: &str) -> Vec<i64> {
    let Some(rest) = path.strip_prefix("/api/studies/") else {
        return Vec::new();
    };
    let mut parts = rest.split('/');
    let mut ids: Vec<i64> = parts.next().and_then(|p| p.parse().ok()).into_iter().collect();
    // `/api/studies/{id}/matches/{other}` reads both studies.
    if parts.next() == Some("matches") {
        ids.extend(parts.next().and_then(|p| p.parse::<i64>().ok()));
    }
    ids
}

/// The middleware: signs the request in, limits its rate, checks its role and scope (see the
/// module's documentation).
pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let me = if state.access.tokens && !public(&path) {
        match identify(&state, token(req.headers())).await {
            Ok(found) => found,
            Err(e) => return e.into_response(),
        }
    } else {
        Some(local())
    };
    let client = match (&me, req.extensions().get::<ConnectInfo<SocketAddr>>()) {
        (Some(me), _) if me.access_control => format!("token:{}", me.name),
        (_, Some(ConnectInfo(addr))) => format!("ip:{}", addr.ip()),
        _ => "local".to_string(),
    };
    if !state.access.admit(&client) {
        let mut resp = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(failscope_shared::api::ApiError {
                error: "too many requests: slow down and retry in a second".into(),
            }),
        )
            .into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    }
    let Some(me) = me else {
        return unauthorised(&path, req.uri().query());
    };
    let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !reads && !public(&path) && !me.role.allows(Role::Analyst) && !viewer_may_post(&path) {
        return AppError::Forbidden(format!(
            "{} is a viewer: starting jobs, cancelling them and creating links need an analyst token",
            me.name
        ))
        .into_response();
    }
    if let Some(id) = studies_of(&path).into_iter().find(|&id| !me.sees(id)) {
        return AppError::NotFound(format!("no study with id {id}")).into_response();
    }
    req.extensions_mut().insert(me);
    next.run(req).await
}

/// 401: JSON for the API, the sign-in page for anything else (returning to `path` after).
fn unauthorised(path: &str, query: Option<&str>) -> Response {
    if path.starts_with("/api/") {
        let mut resp = AppError::Unauthorised("sign in: this server needs an access token".into()).into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"failscope\""),
        );
        return resp;
    }
    let next = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    (StatusCode::UNAUTHORIZED, signin_page(&next, "")).into_response()
}

/// The sign-in form, returning to `next`, with `message` above it.
fn signin_page(next: &str, message: &str) -> Html<String> {
    Html(
        include_str!("../../../assets/signin.html")
            .replace("{{next}}", &escape(safe_next(next)))
            .replace("{{message}}", &escape(message)),
    )
}

/// HTML-escapes text for an element or a quoted attribute.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Where signing in may return to: a path on this server, never another site (`//host`, `/\host`).
fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.starts_with("/signin")
        && next.bytes().all(|b| b.is_ascii_graphic());
    if local {
        next
    } else {
        "/"
    }
}

/// The sign-in page's query.
#[derive(Deserialize)]
pub struct SigninQuery {
    next: Option<String>,
}

/// `GET /signin`.
pub async fn signin_form(Query(q): Query<SigninQuery>) -> Html<String> {
    signin_page(q.next.as_deref().unwrap_or("/"), "")
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct Signin {
    token: String,
    #[serde(default)]
    next: String,
}

/// `POST /signin`: a valid token sets the cookie and returns to `next` (303); a wrong one shows
/// the form again (401).
pub async fn signin(State(state): State<AppState>, Form(form): Form<Signin>) -> Result<Response, AppError> {
    let token = form.token.trim().to_string();
    if !state.access.tokens {
        return Ok(Redirect::to(safe_next(&form.next)).into_response());
    }
    let Some(me) = identify(&state, Some(token.clone())).await? else {
        return Ok((
            StatusCode::UNAUTHORIZED,
            signin_page(&form.next, "That token is not valid: it may be mistyped or revoked."),
        )
            .into_response());
    };
    tracing::info!(name = %me.name, "signed in");
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={COOKIE_MAX_AGE}");
    let mut resp = Redirect::to(safe_next(&form.next)).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| AppError::BadRequest(format!("token: {e}")))?,
    );
    Ok(resp)
}

/// `POST /signout`: clears the cookie and shows the sign-in page.
pub async fn signout() -> Response {
    let mut resp = Redirect::to("/signin").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("failscope_token=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    resp
}

/// `GET /api/me`: who the request is signed in as.
pub async fn me(Extension(me): Extension<Identity>) -> Json<Identity> {
    Json(me)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        for ok in ["/", "/s/abc", "/?study=1&color=shift"] {
            assert_eq!(safe_next(ok), ok);
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "",
            "/a b",
            "/signin",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad}");
        }
    }

    #[test]
    fn the_token_comes_from_the_bearer_header_or_the_cookie() {
        let mut h = HeaderMap::new();
        assert_eq!(token(&h), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; failscope_token=fst_x; b=2"),
        );
        assert_eq!(token(&h).as_deref(), Some("fst_x"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer fst_y"));
        assert_eq!(token(&h).as_deref(), Some("fst_y"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(token(&h), None, "another scheme is no token");
    }

    #[test]
    fn study_paths_name_their_study() {
        assert_eq!(studies_of("/api/studies/12/samples/3"), [12]);
        assert_eq!(studies_of("/api/studies/12"), [12]);
        assert_eq!(studies_of("/api/studies/12/matches/4"), [12, 4]);
        assert_eq!(studies_of("/api/studies"), [0i64; 0]);
        assert_eq!(studies_of("/api/studies/x"), [0i64; 0]);
        assert!(viewer_may_post("/api/studies/1/embeddings"));
        assert!(!viewer_may_post("/api/links"));
    }

    #[test]
    fn the_rate_limit_admits_a_burst_then_refuses() {
        let access = Access::new(false, NonZeroU32::new(2));
        let admitted = (0..20).filter(|_| access.admit("a")).count();
        assert_eq!(admitted, 10, "a burst of five seconds' worth");
        assert!(access.admit("b"), "each client has its own budget");
        assert!((0..100).all(|_| Access::new(false, None).admit("a")));
    }
}
