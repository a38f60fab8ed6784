//! End-to-end: the API as SRS shapes it, for SRS's web console and tools written for SRS's API
//! (issue 13, items 1, 2 and 6).
//!
//! The expected shapes below are written from SRS's source (ossrs/srs 7.0,
//! `trunk/src/app/srs_app_http_api.cpp`, `srs_app_statistic.cpp` `…::dumps`,
//! `srs_app_utility.cpp` `srs_api_dump_summaries`): every field SRS sends, with its JSON type.
//! Estuary may send more; it must send these, with these types. The console
//! (`trunk/research/console/js/srs.console.js`) relies on them: it joins streams and clients
//! to vhosts by `vhost` (the vhost's id), reads `summaries` for its charts, and kicks with
//! JSONP `?callback=…&method=DELETE`.

mod support;

use serde_json::Value;
use support::{get, request_from, wait_for, Server, LIMIT};

/// A JSON type as SRS's `SrsJsonAny` writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    /// `SrsJsonAny::str`.
    Str,
    /// `SrsJsonAny::integer`: a number without a fraction.
    Int,
    /// `SrsJsonAny::number`: any number.
    Num,
    /// `SrsJsonAny::boolean`.
    Bool,
}

use Ty::{Bool, Int, Num, Str};

/// Fields under `/api/v1/*`'s envelope (`SrsGoApi*::serve_http`).
const ENVELOPE: &[(&str, Ty)] = &[("code", Int), ("server", Str), ("service", Str), ("pid", Str)];

/// `SrsGoApiVersion`.
const VERSION: &[(&str, Ty)] = &[("major", Int), ("minor", Int), ("revision", Int), ("version", Str)];

/// `srs_api_dump_summaries`: `data`.
const SUMMARIES: &[(&str, Ty)] = &[
    ("ok", Bool),
    ("now_ms", Int),
    ("self/version", Str),
    ("self/pid", Int),
    ("self/ppid", Int),
    ("self/argv", Str),
    ("self/cwd", Str),
    ("self/mem_kbyte", Int),
    ("self/mem_percent", Num),
    ("self/cpu_percent", Num),
    ("self/srs_uptime", Int),
    ("system/cpu_percent", Num),
    ("system/disk_read_KBps", Int),
    ("system/disk_write_KBps", Int),
    ("system/disk_busy_percent", Num),
    ("system/mem_ram_kbyte", Int),
    ("system/mem_ram_percent", Num),
    ("system/mem_swap_kbyte", Int),
    ("system/mem_swap_percent", Num),
    ("system/cpus", Int),
    ("system/cpus_online", Int),
    ("system/uptime", Num),
    ("system/ilde_time", Num),
    ("system/load_1m", Num),
    ("system/load_5m", Num),
    ("system/load_15m", Num),
    ("system/net_sample_time", Int),
    ("system/net_recv_bytes", Int),
    ("system/net_send_bytes", Int),
    ("system/net_recvi_bytes", Int),
    ("system/net_sendi_bytes", Int),
    ("system/srs_sample_time", Int),
    ("system/srs_recv_bytes", Int),
    ("system/srs_send_bytes", Int),
    ("system/conn_sys", Int),
    ("system/conn_sys_et", Int),
    ("system/conn_sys_tw", Int),
    ("system/conn_sys_udp", Int),
    ("system/conn_srs", Int),
];

/// `SrsStatisticVhost::dumps` (`hls/fragment` only when HLS is on).
const VHOST: &[(&str, Ty)] = &[
    ("id", Str),
    ("name", Str),
    ("enabled", Bool),
    ("clients", Int),
    ("streams", Int),
    ("send_bytes", Int),
    ("recv_bytes", Int),
    ("kbps/recv_30s", Int),
    ("kbps/send_30s", Int),
    ("hls/enabled", Bool),
    ("hls/fragment", Num),
];

/// `SrsStatisticStream::dumps` of a published stream with H.264 and AAC (`publish/cid` only
/// while published; `video`, `audio` are `null` without that track).
const STREAM: &[(&str, Ty)] = &[
    ("id", Str),
    ("name", Str),
    ("vhost", Str),
    ("app", Str),
    ("tcUrl", Str),
    ("url", Str),
    ("live_ms", Int),
    ("clients", Int),
    ("frames", Int),
    ("send_bytes", Int),
    ("recv_bytes", Int),
    ("kbps/recv_30s", Int),
    ("kbps/send_30s", Int),
    ("publish/active", Bool),
    ("publish/cid", Str),
    ("video/codec", Str),
    ("video/profile", Str),
    ("video/level", Str),
    ("video/width", Int),
    ("video/height", Int),
    ("audio/codec", Str),
    ("audio/sample_rate", Int),
    ("audio/channel", Int),
    ("audio/profile", Str),
];

/// `SrsStatisticClient::dumps`.
const CLIENT: &[(&str, Ty)] = &[
    ("id", Str),
    ("vhost", Str),
    ("stream", Str),
    ("ip", Str),
    ("pageUrl", Str),
    ("swfUrl", Str),
    ("tcUrl", Str),
    ("url", Str),
    ("name", Str),
    ("type", Str),
    ("publish", Bool),
    ("alive", Num),
    ("send_bytes", Int),
    ("recv_bytes", Int),
    ("kbps/recv_30s", Int),
    ("kbps/send_30s", Int),
];

/// SRS's client types (`srs_client_type_string`), the ones a client over RTMP, HTTP-FLV or
/// HLS can have.
const SRS_TYPES: &[&str] = &[
    "fmle-publish",
    "flash-publish",
    "haivision-publish",
    "rtmp-play",
    "flv-play",
    "hls-play",
];

/// Every field of `shape` is in `v` with its type; the mismatches, named by `what`.
fn mismatches(what: &str, v: &Value, shape: &[(&str, Ty)]) -> Vec<String> {
    shape
        .iter()
        .filter_map(|&(path, ty)| {
            let field = v.pointer(&format!("/{path}"));
            let fits = match (ty, field) {
                (Str, Some(f)) => f.is_string(),
                (Int, Some(f)) => f.is_u64() || f.is_i64(),
                (Num, Some(f)) => f.is_number(),
                (Bool, Some(f)) => f.is_boolean(),
                (_, None) => false,
            };
            (!fits).then(|| format!("{what}.{path}: want {ty:?}, got {field:?}"))
        })
        .collect()
}

fn assert_shape(what: &str, v: &Value, shape: &[(&str, Ty)]) {
    let wrong = mismatches(what, v, shape);
    assert!(wrong.is_empty(), "not SRS's shape:\n{}\nin {v:#}", wrong.join("\n"));
}

/// ffmpeg playing RTMP `path` as a Flash page would, with `pageUrl` and `swfUrl` in its
/// `connect`.
fn play_rtmp_from_a_page(server: &Server, path: &str) -> support::Proc {
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning"])
        .args(["-rtmp_pageurl", "http://example.com/player.html"])
        .args(["-rtmp_swfurl", "http://example.com/player.swf"])
        .arg("-i")
        .arg(server.rtmp_url(path))
        .args(["-c", "copy", "-f", "null", "-"]);
    support::Proc::spawn(&mut cmd, &server.dir.join("player.log"))
}

/// A GET with extra headers, from this host.
fn get_with(server: &Server, path: &str, headers: &[(&str, &str)]) -> support::HttpResponse {
    request_from([127, 0, 0, 1], server.http, "GET", path, &server.token, headers).expect("request")
}

/// One of each client SRS lists (an FMLE publisher, RTMP, HTTP-FLV and HLS players): every
/// endpoint the console reads has SRS's fields and types, and the ids it joins on agree.
#[test]
fn every_endpoint_has_srss_fields_and_types() {
    let server = Server::start("srs-shapes", "");
    let _publisher = server.publish("live/cam", "publisher.log");
    server.wait_live("live", "cam");
    let _player = play_rtmp_from_a_page(&server, "live/cam");
    let flv = support::FlvViewer::open(server.http, "/live/cam.flv");
    assert_eq!(flv.status, 200);
    let playlist = get_with(&server, "/live/cam.m3u8", &[("Referer", "http://example.com/hls.html")]);
    assert_eq!(playlist.status, 200);
    let all_listed = wait_for(LIMIT, || {
        let types: Vec<String> = ["rtmp-play", "flv-play", "hls-play", "fmle-publish"]
            .iter()
            .filter(|t| !server.clients_of(t).is_empty())
            .map(|t| t.to_string())
            .collect();
        (types.len() == 4).then_some(())
    });
    assert!(all_listed.is_some(), "clients: {}", server.api("/api/v1/clients").1);

    let (_, versions) = server.api("/api/v1/versions");
    assert_shape("versions", &versions, ENVELOPE);
    assert_shape("versions.data", &versions["data"], VERSION);

    // Vhosts: one, and the id everything else names.
    let (status, vhosts) = server.api("/api/v1/vhosts/");
    assert_eq!(status, 200);
    assert_shape("vhosts", &vhosts, ENVELOPE);
    let list = vhosts["vhosts"].as_array().expect("vhosts[]");
    assert_eq!(list.len(), 1);
    let vhost = &list[0];
    assert_shape("vhost", vhost, VHOST);
    assert_eq!(vhost["name"], "__defaultVhost__");
    let vid = vhost["id"].as_str().expect("vhost id").to_string();
    assert!(vid.starts_with("vid-"), "SRS's form: {vid}");
    assert_eq!(vhost["streams"], 1);
    assert!(vhost["clients"].as_u64().unwrap_or(0) >= 4, "{vhost}");
    let (status, one) = server.api(&format!("/api/v1/vhosts/{vid}"));
    assert_eq!(status, 200);
    assert_shape("vhost", &one["vhost"], VHOST);
    assert_eq!(one["vhost"]["id"], vid.as_str());

    // Streams: `vhost` is the vhost's id.
    let (_, streams) = server.api("/api/v1/streams/");
    assert_shape("streams", &streams, ENVELOPE);
    let stream = streams["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "cam"))
        .expect("the stream listed")
        .clone();
    assert_shape("stream", &stream, STREAM);
    assert_eq!(stream["vhost"], vid.as_str(), "the console joins on it");
    assert_eq!(stream["url"], "/live/cam");
    assert_eq!(
        stream["tcUrl"],
        format!("rtmp://127.0.0.1:{}/live", server.rtmp).as_str()
    );
    let sid = stream["id"].as_str().expect("stream id").to_string();
    let (_, by_id) = server.api(&format!("/api/v1/streams/{sid}"));
    assert_shape("stream", &by_id["stream"], STREAM);

    // Clients: SRS's types only, ids that join, SRS's urls.
    let (_, clients) = server.api("/api/v1/clients/");
    assert_shape("clients", &clients, ENVELOPE);
    for c in clients["clients"].as_array().expect("clients[]") {
        assert_shape("client", c, CLIENT);
        let ty = c["type"].as_str().unwrap_or_default();
        assert!(SRS_TYPES.contains(&ty), "a type SRS does not send: {c}");
        assert_eq!(c["vhost"], vid.as_str(), "{c}");
        assert_eq!(c["stream"], sid.as_str(), "{c}");
        assert_eq!(c["url"], "/live/cam", "{c}");
        assert_eq!(c["name"], "cam", "{c}");
        assert_eq!(c["publish"], ty.ends_with("-publish"), "{c}");
        let (_, one) = server.api(&format!("/api/v1/clients/{}", c["id"].as_str().unwrap_or_default()));
        assert_shape("client", &one["client"], CLIENT);
    }
    let publisher = &server.clients_of("fmle-publish")[0];
    assert_eq!(publisher["id"], stream["publish"]["cid"]);
    assert_eq!(
        publisher["tcUrl"],
        format!("rtmp://127.0.0.1:{}/live", server.rtmp).as_str()
    );
    let player = &server.clients_of("rtmp-play")[0];
    assert_eq!(player["pageUrl"], "http://example.com/player.html");
    assert_eq!(player["swfUrl"], "http://example.com/player.swf");
    let flv_client = &server.clients_of("flv-play")[0];
    assert_eq!(
        flv_client["tcUrl"], "rtmp://127.0.0.1/live",
        "SRS's form for HTTP players"
    );
    let hls_client = &server.clients_of("hls-play")[0];
    assert_eq!(hls_client["tcUrl"], "rtmp://127.0.0.1/live");
    assert_eq!(hls_client["pageUrl"], "http://example.com/hls.html", "the Referer");

    // Summaries: every field, real values where Linux has them.
    let (_, summaries) = server.api("/api/v1/summaries");
    assert_shape("summaries", &summaries, ENVELOPE);
    let data = &summaries["data"];
    assert_shape("summaries.data", data, SUMMARIES);
    assert!(data["self"]["ppid"].as_u64().unwrap_or(0) > 0);
    assert!(data["self"]["argv"].as_str().unwrap_or_default().contains("estuary"));
    assert_eq!(
        std::path::Path::new(data["self"]["cwd"].as_str().unwrap_or_default()),
        server.dir.canonicalize().expect("dir")
    );
    assert!(data["system"]["conn_srs"].as_u64().unwrap_or(0) >= 4);
    assert!(data["system"]["conn_sys"].as_u64().unwrap_or(0) >= 4, "our own sockets");
    assert!(data["system"]["conn_sys_et"].as_u64().unwrap_or(0) >= 4);
    assert!(data["system"]["srs_recv_bytes"].as_u64().unwrap_or(0) > 10_000);
    assert!(data["system"]["srs_send_bytes"].as_u64().unwrap_or(0) > 10_000);
    // Everything here goes over the loopback interface, an intranet one to SRS.
    assert!(data["system"]["net_recvi_bytes"].as_u64().unwrap_or(0) > 10_000);
    assert!(data["system"]["cpus"].as_u64().unwrap_or(0) >= 1);
    drop(flv);
}

/// The summaries' byte counters only grow, so the console's rates (differences between two
/// readings) never go negative when a client leaves.
#[test]
fn summaries_byte_totals_keep_what_departed_clients_moved() {
    let server = Server::start("srs-totals", "");
    let _publisher = server.publish("live/cam", "publisher.log");
    server.wait_live("live", "cam");
    let flv = support::FlvViewer::open(server.http, "/live/cam.flv");
    assert!(wait_for(LIMIT, || (flv.bytes() > 50_000).then_some(())).is_some());
    let sent = || {
        let (_, v) = server.api("/api/v1/summaries");
        v["data"]["system"]["srs_send_bytes"].as_u64().unwrap_or(0)
    };
    let while_watching = sent();
    drop(flv);
    assert!(wait_for(LIMIT, || server.clients_of("flv-play").is_empty().then_some(())).is_some());
    assert!(sent() >= while_watching, "srs_send_bytes went down when a viewer left");
}

/// The body of a JSONP answer, `NAME(json)`: the JSON, after checking the wrapping.
fn jsonp(r: &support::HttpResponse, callback: &str) -> Value {
    let body = String::from_utf8_lossy(&r.body).into_owned();
    let inner = body
        .strip_prefix(&format!("{callback}("))
        .and_then(|b| b.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not {callback}(…): {body}"));
    let ct = r
        .headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str());
    assert_eq!(ct, Some("text/javascript"));
    serde_json::from_str(inner).unwrap_or_else(|e| panic!("not JSON inside ({e}): {inner}"))
}

/// With `api.srs_compat`: JSONP as SRS's console calls it, errors at HTTP 200 with SRS's code,
/// and the kick the console sends (`&method=DELETE`) kicks.
#[test]
fn srs_compat_answers_jsonp_and_kicks_with_method_delete() {
    let server = Server::start("srs-jsonp", "[api]\nsrs_compat = true\n");
    let mut publisher = server.publish("live/cam", "publisher.log");
    server.wait_live("live", "cam");

    // angular's `$http.jsonp` names its callbacks so.
    let r = get(server.http, "/api/v1/summaries?callback=angular.callbacks._0", "").expect("request");
    assert_eq!(r.status, 200);
    let v = jsonp(&r, "angular.callbacks._0");
    assert_eq!(v["code"], 0);
    assert_shape("summaries.data", &v["data"], SUMMARIES);
    let r = get(server.http, "/api/v1/vhosts/?callback=cb", "").expect("request");
    assert_eq!(jsonp(&r, "cb")["vhosts"][0]["name"], "__defaultVhost__");

    // SRS's errors: HTTP 200 (a script with an error status is not run), the code inside.
    let r = get(server.http, "/api/v1/clients/999999?callback=cb", "").expect("request");
    assert_eq!(r.status, 200);
    assert_eq!(jsonp(&r, "cb")["code"], 2049);
    let (status, e) = server.api("/api/v1/streams/999999");
    assert_eq!((status, e["code"].as_u64()), (200, Some(2048)), "JSONP or not");
    let (status, e) = server.api("/api/v1/vhosts/vid-nothere");
    assert_eq!((status, e["code"].as_u64()), (200, Some(2014)));
    // The console asks whether the raw API is on; it is not.
    let r = get(server.http, "/api/v1/raw?callback=cb&rpc=raw", "").expect("request");
    assert_eq!(jsonp(&r, "cb")["http_api"]["raw_api"]["enabled"], false);
    // A callback that is not a name is refused, not echoed into a script.
    let r = get(server.http, "/api/v1/versions?callback=alert(1)//", "").expect("request");
    assert_eq!(r.status, 400);

    // The console's kick: a GET with `&method=DELETE`.
    let id = server.clients_of("publisher")[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = get(
        server.http,
        &format!("/api/v1/clients/{id}?callback=cb&method=DELETE"),
        "",
    )
    .expect("request");
    assert_eq!(jsonp(&r, "cb")["code"], 0);
    assert!(
        publisher.wait(LIMIT).is_some(),
        "the kicked publisher is still connected"
    );
    assert!(server.clients_of("publisher").is_empty());
}

/// Without the key, `callback` and `method` are parameters like any other: plain JSON, a GET
/// never kicks, and errors keep their HTTP status.
#[test]
fn without_srs_compat_there_is_no_jsonp_and_a_get_never_kicks() {
    let server = Server::start("srs-no-jsonp", "");
    let _publisher = server.publish("live/cam", "publisher.log");
    server.wait_live("live", "cam");
    let id = server.clients_of("publisher")[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = get(
        server.http,
        &format!("/api/v1/clients/{id}?callback=cb&method=DELETE"),
        "",
    )
    .expect("request");
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).expect("plain JSON");
    assert_eq!(v["client"]["id"], id.as_str());
    let ct = r
        .headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.clone());
    assert_eq!(ct.as_deref(), Some("application/json"));
    assert_eq!(server.clients_of("publisher").len(), 1, "a GET kicked");
    let (status, e) = server.api("/api/v1/vhosts/vid-nothere");
    assert_eq!((status, e["code"].as_u64()), (404, Some(2014)));
}

/// JSONP cannot send a header: with `api.srs_compat` the token may come as `?token=` (what
/// SRS's console appends), and without the key it may not. Without a token, the control plane
/// still answers this host only.
#[test]
fn the_token_as_a_query_parameter_only_with_srs_compat() {
    const OTHER_HOST: [u8; 4] = [127, 0, 0, 2];
    let status = |server: &Server, path: &str| {
        request_from(OTHER_HOST, server.http, "GET", path, "", &[])
            .expect("request")
            .status
    };
    let compat = Server::start("srs-token", "[api]\ntoken = \"s3cret\"\nsrs_compat = true\n");
    assert_eq!(status(&compat, "/api/v1/versions?callback=cb&token=s3cret"), 200);
    assert_eq!(status(&compat, "/api/v1/versions?callback=cb&token=wrong"), 401);
    assert_eq!(status(&compat, "/api/v1/versions?callback=cb"), 401);
    assert_eq!(
        status(&compat, "/metrics?token=s3cret"),
        401,
        "/metrics takes the header only"
    );
    drop(compat);

    let plain = Server::start("srs-token-off", "[api]\ntoken = \"s3cret\"\n");
    assert_eq!(status(&plain, "/api/v1/versions?token=s3cret"), 401);

    let open = Server::start("srs-token-none", "[api]\nsrs_compat = true\n");
    assert_eq!(
        status(&open, "/api/v1/versions?callback=cb"),
        403,
        "still this host only"
    );
}
