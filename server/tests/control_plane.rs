//! End-to-end: the control plane (the API, which lists clients and kicks them, and
//! `/metrics`, which names every stream) is closed to other hosts until the operator opens it
//! (issue 11, item 1). Another host is played by `127.0.0.2`: a loopback address, but not
//! this host's own (`127.0.0.1`), as a container or a namespace would look.

mod support;

use serde_json::Value;
use support::{request, request_from, wait_for, Server, LIMIT};

const OTHER_HOST: [u8; 4] = [127, 0, 0, 2];

fn status_from(source: [u8; 4], port: u16, path: &str, token: &str) -> u16 {
    request_from(source, port, "GET", path, token, &[])
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .status
}

#[test]
fn with_no_token_the_api_and_metrics_answer_this_host_only() {
    let server = Server::start("control-closed", "");
    for path in ["/api/v1/versions", "/api/v1/clients", "/metrics"] {
        assert_eq!(
            status_from([127, 0, 0, 1], server.http, path, ""),
            200,
            "{path} from this host"
        );
        assert_eq!(
            status_from(OTHER_HOST, server.http, path, ""),
            403,
            "{path} from another host"
        );
    }
    // A kick from another host is refused too.
    let kick = request_from(OTHER_HOST, server.http, "DELETE", "/api/v1/clients/1", "", &[]).expect("request");
    assert_eq!(kick.status, 403);
    let body: Value = serde_json::from_slice(&kick.body).expect("SRS-shaped error");
    assert_eq!(body["code"], 403);
    // Media stays open to everyone.
    assert_eq!(status_from(OTHER_HOST, server.http, "/healthz", ""), 200);
}

#[test]
fn a_token_opens_the_control_plane_to_whoever_has_it_and_metrics_take_their_own() {
    let server = Server::start(
        "control-token",
        "[api]\ntoken = \"api-s3cret\"\nmetrics_token = \"scrape-s3cret\"\n",
    );
    assert_eq!(
        status_from(OTHER_HOST, server.http, "/api/v1/versions", "api-s3cret"),
        200
    );
    assert_eq!(status_from(OTHER_HOST, server.http, "/api/v1/versions", ""), 401);
    assert_eq!(
        status_from(OTHER_HOST, server.http, "/api/v1/versions", "scrape-s3cret"),
        401
    );
    // With a token set, this host needs it too.
    assert_eq!(status_from([127, 0, 0, 1], server.http, "/api/v1/versions", ""), 401);
    // /metrics without the token is refused; either token opens it.
    assert_eq!(status_from(OTHER_HOST, server.http, "/metrics", ""), 401);
    assert_eq!(status_from([127, 0, 0, 1], server.http, "/metrics", ""), 401);
    assert_eq!(status_from(OTHER_HOST, server.http, "/metrics", "scrape-s3cret"), 200);
    assert_eq!(status_from(OTHER_HOST, server.http, "/metrics", "api-s3cret"), 200);
}

#[test]
fn a_listener_of_its_own_serves_the_control_plane_and_the_public_port_none() {
    let port = support::free_port();
    let server = Server::start("control-listen", &format!("[api]\nlisten = \"127.0.0.1:{port}\"\n"));
    let up = wait_for(LIMIT, || request(port, "GET", "/healthz", "").ok());
    assert!(up.is_some(), "api.listen is not served; log:\n{}", server.log());
    assert_eq!(
        status_from(OTHER_HOST, port, "/api/v1/versions", ""),
        200,
        "bound on purpose"
    );
    assert_eq!(status_from(OTHER_HOST, port, "/metrics", ""), 200);
    assert_eq!(status_from([127, 0, 0, 1], server.http, "/api/v1/versions", ""), 404);
    assert_eq!(status_from([127, 0, 0, 1], server.http, "/metrics", ""), 404);
    // The control listener serves no media.
    assert_eq!(status_from([127, 0, 0, 1], port, "/live/cam.m3u8", ""), 404);
}

#[test]
fn browsers_reach_the_api_only_from_the_origins_the_operator_lists() {
    let server = Server::start(
        "control-cors",
        "[http]\ncors_allow_origin = \"*\"\n[api]\ncors_origins = [\"https://console.example.com\"]\n",
    );
    let from = |origin: &str| {
        request_from(
            [127, 0, 0, 1],
            server.http,
            "GET",
            "/api/v1/versions",
            "",
            &[("Origin", origin)],
        )
        .expect("request")
    };
    let header =
        |r: &support::HttpResponse, name: &str| r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let allowed = from("https://console.example.com");
    assert_eq!(
        header(&allowed, "access-control-allow-origin").as_deref(),
        Some("https://console.example.com")
    );
    let other = from("https://evil.example.net");
    assert_eq!(
        header(&other, "access-control-allow-origin"),
        None,
        "no wildcard CORS on the API"
    );
    // Media keeps the operator's media CORS.
    let media = request_from(
        [127, 0, 0, 1],
        server.http,
        "GET",
        "/healthz",
        "",
        &[("Origin", "https://x")],
    )
    .expect("request");
    assert_eq!(header(&media, "access-control-allow-origin").as_deref(), Some("*"));
}

/// Tokens in publish and play URLs are shown as `***` in listings (the signing schemes'
/// parameters and the usual token names), other parameters as they are; the log shows none.
#[test]
fn listings_and_logs_show_no_token() {
    let server = Server::start("control-redact", "");
    let publisher = server.publish("live/cam?token=pub-s3cret&channel=7", "publisher.log");
    server.wait_live("live", "cam");
    let viewer = support::FlvViewer::open(server.http, "/live/cam.flv?txSecret=flv-s3cret&txTime=ff&x=1");
    assert_eq!(viewer.status, 200);
    let listed = support::wait_for(support::LIMIT, || {
        let flv = server.clients_of("flv-play");
        (!flv.is_empty()).then(|| flv[0]["request_url"].as_str().unwrap_or_default().to_string())
    });
    assert_eq!(
        listed.as_deref(),
        Some(
            format!(
                "http://127.0.0.1:{}/live/cam.flv?txSecret=***&txTime=ff&x=1",
                server.http
            )
            .as_str()
        )
    );
    let publisher_url = server.clients_of("publisher")[0]["request_url"].clone();
    assert_eq!(
        publisher_url,
        format!("rtmp://127.0.0.1:{}/live/cam?token=***&channel=7", server.rtmp).as_str()
    );
    let (_, clients) = server.api("/api/v1/clients");
    let (_, streams) = server.api("/api/v1/streams");
    for listing in [clients.to_string(), streams.to_string()] {
        assert!(
            !listing.contains("pub-s3cret") && !listing.contains("flv-s3cret"),
            "a token in a listing: {listing}"
        );
    }
    drop(viewer);
    drop(publisher);
    assert!(
        !server.log().contains("pub-s3cret"),
        "a token in the log:\n{}",
        server.log()
    );
}
