//! `api.srs_compat`: the API as SRS's web console (`trunk/research/console`) calls it.
//!
//! The console reads the API with JSONP (`$http.jsonp`, a `<script>` tag): `?callback=NAME`
//! must answer `NAME(json)` as `text/javascript`, and a kick is a GET with `&method=DELETE`
//! (SRS's `SrsHttpMessage::method()` takes the `method` parameter of a JSONP request for the
//! request's method). A script is not run when its status is an error, so SRS answers its
//! own errors (stream, client, vhost not found) with HTTP 200 and the code in the body
//! (`srs_api_response_code`); with the key on, so do we, JSONP or not. HTTP-level errors (an
//! unknown path, a method not allowed) keep their status, as SRS's `srs_go_http_error` does.
//!
//! With the key off, none of this happens: `callback` and `method` are ignored parameters.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};

use super::super::response::Body;
use super::envelope::{error, SrsError};

/// SRS `ERROR_HTTP_JSONP`: a callback name with characters SRS refuses.
const CODE_BAD_CALLBACK: u32 = 4058;
/// Longest callback name accepted (angular's are `angular.callbacks._0`).
const MAX_CALLBACK: usize = 128;

/// A `callback` that is not a name SRS accepts: refused, never echoed into a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSONP callback: letters, digits, '.', '_' and '-' only")]
pub struct BadCallback;

impl BadCallback {
    /// 400 with SRS's code.
    pub fn response(self) -> Response<Body> {
        error(StatusCode::BAD_REQUEST, CODE_BAD_CALLBACK, &self.to_string())
    }
}

/// What an SRS-style request asks beyond its path.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SrsCall {
    /// Answer as SRS does (the key is on).
    pub on: bool,
    /// JSONP: the function to call with the answer.
    pub callback: Option<String>,
    /// JSONP's `method` parameter, which stands for the request's method.
    pub method: Option<Method>,
}

impl SrsCall {
    /// Reads `callback` and `method` from the query when the key is on; a callback name with
    /// characters other than SRS's (`[A-Za-z0-9_.-]`) is refused with SRS's code.
    pub fn parse(srs_compat: bool, query: Option<&str>) -> Result<SrsCall, BadCallback> {
        if !srs_compat {
            return Ok(SrsCall::default());
        }
        let param = |name: &str| {
            query
                .unwrap_or_default()
                .split('&')
                .find_map(|pair| pair.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                .filter(|v| !v.is_empty())
        };
        let Some(callback) = param("callback") else {
            return Ok(SrsCall {
                on: true,
                ..SrsCall::default()
            });
        };
        let valid = callback.len() <= MAX_CALLBACK
            && callback
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid {
            return Err(BadCallback);
        }
        let method = match param("method") {
            Some("GET") => Some(Method::GET),
            Some("PUT") => Some(Method::PUT),
            Some("POST") => Some(Method::POST),
            Some("DELETE") => Some(Method::DELETE),
            _ => None,
        };
        Ok(SrsCall {
            on: true,
            callback: Some(callback.to_string()),
            method,
        })
    }

    /// The method a JSONP request stands for on `path`. SRS's endpoints take it (the kick
    /// is the one the console sends); Estuary's own (`recordings`, `schedules`, where a DELETE
    /// removes files) do not: a page that includes a script must not reach them.
    pub fn method_for(&self, path: &str) -> Option<Method> {
        let estuarys_own = ["/api/v1/recordings", "/api/v1/schedules"].iter().any(|own| {
            path.strip_prefix(own)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        });
        if estuarys_own {
            return None;
        }
        self.method.clone()
    }

    /// The answer as SRS gives it: an SRS error at 200, and wrapped in the callback.
    pub async fn answer(&self, mut response: Response<Body>) -> Response<Body> {
        if !self.on {
            return response;
        }
        if response.extensions().get::<SrsError>().is_some() {
            *response.status_mut() = StatusCode::OK;
        }
        let Some(callback) = &self.callback else {
            return response;
        };
        let (mut parts, body) = response.into_parts();
        // Every API answer is one in-memory JSON document.
        let json = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        let mut script = Vec::with_capacity(callback.len() + json.len() + 2);
        script.extend_from_slice(callback.as_bytes());
        script.push(b'(');
        script.extend_from_slice(&json);
        script.push(b')');
        parts
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/javascript"));
        parts.headers.remove(CONTENT_LENGTH);
        Response::from_parts(parts, Full::new(Bytes::from(script)).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_ignores_callback_and_method() {
        let call = SrsCall::parse(false, Some("callback=cb&method=DELETE")).unwrap();
        assert_eq!(call, SrsCall::default());
    }

    #[test]
    fn reads_angulars_callback_and_the_method() {
        let call = SrsCall::parse(true, Some("callback=angular.callbacks._0&method=DELETE&token=x")).unwrap();
        assert_eq!(call.callback.as_deref(), Some("angular.callbacks._0"));
        assert_eq!(call.method, Some(Method::DELETE));
        let plain = SrsCall::parse(true, Some("method=DELETE")).unwrap();
        assert_eq!(plain.method, None, "method stands for the request's only with JSONP");
        assert!(plain.on);
    }

    #[test]
    fn the_method_stands_only_on_srss_endpoints() {
        let call = SrsCall::parse(true, Some("callback=cb&method=DELETE")).unwrap();
        assert_eq!(call.method_for("/api/v1/clients/7"), Some(Method::DELETE));
        assert_eq!(call.method_for("/api/v1/recordings/7"), None);
        assert_eq!(call.method_for("/api/v1/schedules"), None);
    }

    #[test]
    fn refuses_a_callback_that_is_not_a_name() {
        for bad in ["alert(1)//", "a%3Bb", "x<y"] {
            let refused = SrsCall::parse(true, Some(&format!("callback={bad}"))).unwrap_err();
            assert_eq!(refused.response().status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
