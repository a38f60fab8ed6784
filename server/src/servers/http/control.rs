//! Who may use the control plane — the API (which lists clients and kicks them), and
//! `/metrics` (which names every stream) — and from where.
//!
//! Closed by default: with no token, the control plane answers only requests from this host
//! (`127.0.0.1`, `::1`; other loopback addresses are how containers and namespaces look, so
//! they count as remote). A token (`api.token`; for `/metrics` also `api.metrics_token`)
//! opens it to whoever has it. A listener of its own (`api.listen`), bound on purpose, serves
//! the control plane to whoever reaches it (with the token, if one is set), and the public
//! HTTP port then serves none of it.
//!
//! Browsers: no wildcard CORS on the API; an origin in `api.cors_origins` gets
//! `Access-Control-Allow-Origin` with its own name.

use std::net::IpAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, AUTHORIZATION, CONTENT_TYPE, ORIGIN, VARY, WWW_AUTHENTICATE,
};
use hyper::{HeaderMap, Response, StatusCode};

use super::response::{text, Body};
use crate::config::ApiConfig;

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The public HTTP port: media, and the control plane unless `api.listen` is set.
    Public,
    /// `api.listen`: the control plane alone.
    Control,
}

/// What the control plane is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    Api,
    Metrics,
}

/// Why the control plane refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The public port serves no control plane when it has a listener of its own.
    NotHere,
    /// A token is set and the request did not bring it.
    Unauthorized,
    /// No token is set and the request is not from this host.
    NotLocal,
}

impl Refused {
    /// The `reason` label of `estuary_connections_rejected_total{protocol="api"}`.
    pub fn reason(self) -> &'static str {
        match self {
            Refused::NotHere => "not_here",
            Refused::Unauthorized => "auth",
            Refused::NotLocal => "not_local",
        }
    }

    /// The answer: the API's in SRS's shape (`{"code":N,"message":"…"}`), `/metrics`' in
    /// plain text.
    pub fn response(self, plane: Plane) -> Response<Body> {
        let (status, message) = match self {
            Refused::NotHere => return text(StatusCode::NOT_FOUND, "not found\n"),
            Refused::Unauthorized => (StatusCode::UNAUTHORIZED, "missing or wrong bearer token"),
            Refused::NotLocal => (
                StatusCode::FORBIDDEN,
                "the control plane answers this host only; set api.token or api.listen to open it",
            ),
        };
        let mut r = match plane {
            Plane::Api => {
                let body = serde_json::json!({ "code": status.as_u16(), "message": message }).to_string();
                let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
                *r.status_mut() = status;
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                r
            }
            Plane::Metrics => text(status, message),
        };
        if self == Refused::Unauthorized {
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// Whether the request may go on. `query` is the request's query string: with
/// `api.srs_compat`, the API's token may come as `token=…` there (SRS's console sends it so,
/// as JSONP cannot send a header); `/metrics` takes the header only.
pub fn admit(
    config: &ApiConfig,
    plane: Plane,
    surface: Surface,
    peer: IpAddr,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), Refused> {
    if surface == Surface::Public && !config.listen.is_empty() {
        return Err(Refused::NotHere);
    }
    let tokens: Vec<&str> = match plane {
        Plane::Api => vec![config.token.as_str()],
        Plane::Metrics => vec![config.token.as_str(), config.metrics_token.as_str()],
    };
    let tokens: Vec<&str> = tokens.into_iter().filter(|t| !t.is_empty()).collect();
    if !tokens.is_empty() {
        let matches = |given: &str| tokens.iter().any(|t| same(given, t));
        if bearer(headers).is_some_and(matches) {
            return Ok(());
        }
        if plane == Plane::Api && config.srs_compat && query_tokens(query).any(matches) {
            return Ok(());
        }
        return Err(Refused::Unauthorized);
    }
    if surface == Surface::Control || is_this_host(peer) {
        return Ok(());
    }
    Err(Refused::NotLocal)
}

/// The peer is this host: `127.0.0.1` or `::1` (IPv4-mapped too).
pub fn is_this_host(peer: IpAddr) -> bool {
    match peer {
        IpAddr::V4(v4) => v4 == std::net::Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => {
            v6 == std::net::Ipv6Addr::LOCALHOST || v6.to_ipv4_mapped() == Some(std::net::Ipv4Addr::LOCALHOST)
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The `token` parameters of a query string, as sent (not percent-decoded: a token for
/// the console is made of URL-safe characters).
fn query_tokens(query: Option<&str>) -> impl Iterator<Item = &str> {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("token="))
}

/// Compares every byte, so the time taken does not tell how much of a token matched.
fn same(given: &str, token: &str) -> bool {
    given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// CORS for an API answer: the request's origin, if the operator allows it.
pub fn cors(config: &ApiConfig, request: &HeaderMap, response: &mut Response<Body>) {
    let headers = response.headers_mut();
    headers.remove(ACCESS_CONTROL_ALLOW_ORIGIN);
    headers.insert(VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = request.get(ORIGIN).and_then(|o| o.to_str().ok()) else {
        return;
    };
    if config.cors_origins.iter().any(|allowed| allowed == origin) {
        if let Ok(value) = HeaderValue::from_str(origin) {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn closed_by_default_to_other_hosts() {
        let c = ApiConfig::default();
        assert!(admit(&c, Plane::Api, Surface::Public, ip("127.0.0.1"), &headers(None), None).is_ok());
        assert!(admit(&c, Plane::Api, Surface::Public, ip("::1"), &headers(None), None).is_ok());
        assert!(admit(
            &c,
            Plane::Api,
            Surface::Public,
            ip("::ffff:127.0.0.1"),
            &headers(None),
            None
        )
        .is_ok());
        for other in ["127.0.0.2", "10.0.0.1", "::ffff:10.0.0.1", "2001:db8::1"] {
            let refused = admit(&c, Plane::Metrics, Surface::Public, ip(other), &headers(None), None).unwrap_err();
            assert_eq!(refused, Refused::NotLocal, "{other}");
            assert_eq!(refused.response(Plane::Metrics).status(), StatusCode::FORBIDDEN);
        }
    }

    #[test]
    fn a_token_opens_it_to_whoever_has_it() {
        let c = ApiConfig {
            token: "s3cret".into(),
            metrics_token: "m3trics".into(),
            ..ApiConfig::default()
        };
        let remote = ip("10.0.0.1");
        assert!(admit(
            &c,
            Plane::Api,
            Surface::Public,
            remote,
            &headers(Some("Bearer s3cret")),
            None
        )
        .is_ok());
        let wrong = admit(
            &c,
            Plane::Api,
            Surface::Public,
            remote,
            &headers(Some("Bearer s3cre")),
            None,
        )
        .unwrap_err();
        assert_eq!(wrong.response(Plane::Api).status(), StatusCode::UNAUTHORIZED);
        let local_without = admit(&c, Plane::Api, Surface::Public, ip("127.0.0.1"), &headers(None), None).unwrap_err();
        assert_eq!(local_without, Refused::Unauthorized, "a token is asked of everyone");
        assert!(admit(
            &c,
            Plane::Metrics,
            Surface::Public,
            remote,
            &headers(Some("Bearer m3trics")),
            None
        )
        .is_ok());
        assert!(admit(
            &c,
            Plane::Api,
            Surface::Public,
            remote,
            &headers(Some("Bearer m3trics")),
            None
        )
        .is_err());
    }

    #[test]
    fn a_listener_of_its_own_serves_the_control_plane_and_the_public_port_none() {
        let c = ApiConfig {
            listen: "127.0.0.1:0".into(),
            ..ApiConfig::default()
        };
        assert!(admit(&c, Plane::Api, Surface::Control, ip("10.0.0.1"), &headers(None), None).is_ok());
        let public = admit(&c, Plane::Api, Surface::Public, ip("127.0.0.1"), &headers(None), None).unwrap_err();
        assert_eq!(public.response(Plane::Api).status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn srs_compat_takes_the_api_token_from_the_query() {
        let mut c = ApiConfig {
            token: "s3cret".into(),
            metrics_token: "m3trics".into(),
            ..ApiConfig::default()
        };
        let remote = ip("10.0.0.1");
        let query = Some("callback=cb&token=s3cret");
        let api = |c: &ApiConfig, q| admit(c, Plane::Api, Surface::Public, remote, &headers(None), q);
        assert_eq!(api(&c, query), Err(Refused::Unauthorized), "only with srs_compat");
        c.srs_compat = true;
        assert!(api(&c, query).is_ok());
        assert!(api(&c, Some("token=s3cret&method=DELETE")).is_ok());
        assert_eq!(api(&c, Some("token=s3cre")), Err(Refused::Unauthorized));
        assert_eq!(api(&c, Some("xtoken=s3cret")), Err(Refused::Unauthorized));
        assert_eq!(api(&c, Some("token=m3trics")), Err(Refused::Unauthorized));
        let metrics = admit(
            &c,
            Plane::Metrics,
            Surface::Public,
            remote,
            &headers(None),
            Some("token=m3trics"),
        );
        assert_eq!(metrics, Err(Refused::Unauthorized), "/metrics takes the header only");
    }
}
