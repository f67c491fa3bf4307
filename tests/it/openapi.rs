//! The OpenAPI description (`src/http/openapi.json`, served at `/api/openapi.json`) against
//! the real server: it is a well-formed OpenAPI 3.1 document; its `/api` paths and methods are
//! exactly the routes the server registers; every described operation is routed and every
//! other method answers 405; and real responses to a scenario over every operation carry a
//! documented status and content type, with bodies that validate against the documented
//! schemas (`$ref`s resolved by the `jsonschema` crate).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use common::graph::{Fault, GraphServer, PHONE_NUMBER_ID};
use common::{Backend, Storage, TOKEN, TestServer, fixtures};
use jsonschema::{Draft, Registry, Validator};
use media_origin::config::{AdminBind, Secret};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

/// The URI the description is registered under, for `$ref`s into it.
const SPEC_URI: &str = "urn:media-origin:openapi";
const SIGNING_KEY: &str = "k1:first-signing-secret-0123456789";
const METHODS: [&str; 8] = [
    "get", "head", "post", "put", "patch", "delete", "options", "trace",
];

/// An answer, read whole.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    async fn read(r: reqwest::Response) -> Self {
        Self {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().await.unwrap().to_vec(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Send `head` (request line and headers, no body) on a fresh connection and read the answer:
/// for a 413 the server gives before reading a body, which a client sending the body could
/// miss when the server closes the connection.
async fn head_only(addr: std::net::SocketAddr, head: &str) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("{head}Host: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let text = String::from_utf8(out[..split].to_vec()).unwrap();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    Answer {
        status,
        headers,
        body: out[split + 4..].to_vec(),
    }
}

/// The description, and the (method, path, status) answers checked against it.
struct Spec {
    doc: Value,
    registry: Registry<'static>,
    checked: Mutex<BTreeSet<(String, String, u16)>>,
}

impl Spec {
    fn new(doc: Value) -> Self {
        let registry = Registry::new()
            .draft(Draft::Draft202012)
            .add(SPEC_URI, Draft::Draft202012.create_resource(doc.clone()))
            .unwrap()
            .prepare()
            .unwrap();
        Self {
            doc,
            registry,
            checked: Mutex::default(),
        }
    }

    /// The description as this build embeds it.
    fn embedded() -> Self {
        Self::new(serde_json::from_slice(media_origin::http::openapi::document()).unwrap())
    }

    /// Fetch the description from a server, without a token, and check that answer against
    /// the description itself.
    async fn fetch(s: &TestServer) -> Self {
        let r = s
            .client
            .get(format!("http://{}/api/openapi.json", s.admin_addr))
            .send()
            .await
            .unwrap();
        let answer = Answer::read(r).await;
        assert_eq!(answer.status, 200);
        let spec = Self::new(answer.json());
        assert_eq!(spec.doc, Self::embedded().doc);
        spec.check(&Method::GET, "/api/openapi.json", &answer);
        spec
    }

    /// Follow a local `$ref` (`#/components/...`), once.
    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => self
                .doc
                .pointer(r.strip_prefix('#').unwrap())
                .unwrap_or_else(|| panic!("unresolved $ref {r}")),
            None => v,
        }
    }

    fn operation(&self, method: &Method, template: &str) -> &Value {
        let method = method.as_str().to_ascii_lowercase();
        self.doc["paths"]
            .get(template)
            .and_then(|p| p.get(&method))
            .unwrap_or_else(|| panic!("{method} {template} is not described"))
    }

    /// Every described (path, method), methods in upper case.
    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for method in METHODS {
                if item.get(method).is_some() {
                    out.insert((path.clone(), method.to_ascii_uppercase()));
                }
            }
        }
        out
    }

    /// A validator for a schema of the description, its local `$ref`s made absolute so they
    /// resolve in the registered document.
    fn validator(&self, schema: &Value) -> Validator {
        fn absolute(v: &Value) -> Value {
            match v {
                Value::Object(map) => Value::Object(
                    map.iter()
                        .map(|(k, v)| match (k.as_str(), v.as_str()) {
                            ("$ref", Some(r)) if r.starts_with('#') => {
                                (k.clone(), json!(format!("{SPEC_URI}{r}")))
                            }
                            _ => (k.clone(), absolute(v)),
                        })
                        .collect(),
                ),
                Value::Array(items) => Value::Array(items.iter().map(absolute).collect()),
                other => other.clone(),
            }
        }
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_registry(&self.registry)
            .build(&absolute(schema))
            .unwrap_or_else(|e| panic!("schema {schema} does not build: {e}"))
    }

    fn errors(&self, schema: &Value, instance: &Value) -> Vec<String> {
        self.validator(schema)
            .iter_errors(instance)
            .map(|e| format!("at {}: {e}", e.instance_path()))
            .collect()
    }

    /// Whether the documented JSON request body of an operation accepts `body`.
    fn accepts(&self, method: &Method, template: &str, body: &Value) -> bool {
        let op = self.operation(method, template);
        let schema = &self.resolve(&op["requestBody"])["content"]["application/json"]["schema"];
        assert!(!schema.is_null(), "{method} {template} takes no JSON body");
        self.errors(schema, body).is_empty()
    }

    /// Check an answer against the operation's documentation: a documented status, its
    /// required headers, its content type, and a body valid against its schema (or no body
    /// where none is documented). An error's code must be named in the response's
    /// description. Returns the JSON body (null when there is none).
    fn check(&self, method: &Method, template: &str, a: &Answer) -> Value {
        let what = format!("{method} {template} -> {}", a.status);
        let op = self.operation(method, template);
        let response = op["responses"]
            .get(a.status.to_string())
            .map(|r| self.resolve(r))
            .unwrap_or_else(|| {
                panic!(
                    "{what}: status not documented; body {}",
                    String::from_utf8_lossy(&a.body)
                )
            });
        if let Some(headers) = response.get("headers").and_then(Value::as_object) {
            for (name, h) in headers {
                let h = self.resolve(h);
                match a.header(name) {
                    Some(value) => {
                        let errors = self.errors(&h["schema"], &json!(value));
                        assert!(errors.is_empty(), "{what}: header {name}: {errors:?}");
                    }
                    None => assert!(h["required"] != true, "{what}: no {name} header"),
                }
            }
        }
        let checked = (method.to_string(), template.to_owned(), a.status);
        self.checked.lock().unwrap().insert(checked);
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            assert!(a.body.is_empty(), "{what}: a body where none is documented");
            return Value::Null;
        };
        let content_type = a.header("content-type").unwrap_or_default();
        let Some(media) = content.get(content_type) else {
            panic!(
                "{what}: Content-Type {content_type:?}, documented: {:?}",
                content.keys().collect::<Vec<_>>()
            );
        };
        if content_type != "application/json" {
            let text = String::from_utf8(a.body.clone()).expect("a text body");
            let errors = self.errors(&media["schema"], &json!(text));
            assert!(errors.is_empty(), "{what}: {errors:?}");
            return Value::Null;
        }
        let body = a.json();
        let errors = self.errors(&media["schema"], &body);
        assert!(errors.is_empty(), "{what}: {errors:#?}\nbody: {body:#}");
        if a.status >= 400 {
            let code = body["error"]["code"].as_str().unwrap();
            let description = response["description"].as_str().unwrap();
            assert!(
                description.contains(&format!("`{code}`")),
                "{what}: code {code} is not named in {description:?}"
            );
        }
        body
    }

    /// Every described operation that was answered with a 2xx.
    fn succeeded(&self) -> BTreeSet<(String, String)> {
        self.checked
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, status)| (200..300).contains(status))
            .map(|(m, p, _)| (p.clone(), m.clone()))
            .collect()
    }
}

/// Requests to one server, each answer checked against the description.
struct Api<'a> {
    s: &'a TestServer,
    spec: &'a Spec,
}

impl Api<'_> {
    /// `method target` (a path under the admin listener, e.g. `/api/assets/a.jpg?cache=x`) with
    /// the token, checked as an answer of the operation at `template`.
    async fn call(
        &self,
        method: Method,
        template: &str,
        target: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> (u16, Value) {
        let url = format!("http://{}{target}", self.s.admin_addr);
        let req = self
            .s
            .client
            .request(method.clone(), url)
            .bearer_auth(TOKEN);
        let answer = Answer::read(build(req).send().await.unwrap()).await;
        let body = self.spec.check(&method, template, &answer);
        (answer.status, body)
    }

    async fn get(&self, template: &str, target: &str) -> (u16, Value) {
        self.call(Method::GET, template, target, |r| r).await
    }

    /// A JSON body the description accepts (`valid`) or refuses.
    async fn json(
        &self,
        method: Method,
        template: &str,
        target: &str,
        body: Value,
        valid: bool,
    ) -> (u16, Value) {
        assert_eq!(
            self.spec.accepts(&method, template, &body),
            valid,
            "{method} {template}: the described request body should {}accept {body}",
            if valid { "" } else { "not " }
        );
        self.call(method, template, target, |r| r.json(&body)).await
    }

    async fn put_asset(&self, target: &str, content_type: &str, bytes: Vec<u8>) -> (u16, Value) {
        self.call(Method::PUT, "/api/assets/{path}", target, |r| {
            r.header("content-type", content_type).body(bytes)
        })
        .await
    }

    async fn form(&self, form: reqwest::multipart::Form) -> (u16, Value) {
        self.call(Method::POST, "/api/assets", "/api/assets", |r| {
            r.multipart(form)
        })
        .await
    }
}

fn file(bytes: Vec<u8>, name: &str, content_type: &str) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(content_type)
        .unwrap()
}

fn assert_code(code: &str, body: &Value) {
    assert_eq!(body["error"]["code"], code, "{body}");
}

// ---- the document itself ------------------------------------------------------------------

/// Every `$ref` in `v`, with where it is.
fn refs(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_str()) {
                    ("$ref", Some(r)) => out.push((at.to_owned(), r.to_owned())),
                    _ => refs(v, &format!("{at}/{k}"), out),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                refs(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_description_is_well_formed_openapi_3_1() {
    let spec = Spec::embedded();
    let doc = &spec.doc;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string());
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    // Every $ref resolves, and every component is used.
    let mut found = Vec::new();
    refs(doc, "#", &mut found);
    let mut used = BTreeSet::new();
    for (at, r) in &found {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: $ref {r} is not local"));
        assert!(
            doc.pointer(pointer).is_some(),
            "{at}: $ref {r} resolves to nothing"
        );
        used.insert(r.clone());
    }
    for (kind, components) in doc["components"].as_object().unwrap() {
        if kind == "securitySchemes" {
            continue;
        }
        for name in components.as_object().unwrap().keys() {
            let r = format!("#/components/{kind}/{name}");
            assert!(used.contains(&r), "{r} is never used");
        }
    }

    // Every schema is a valid JSON Schema 2020-12 and builds with its references.
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let mut with_dialect = schema.clone();
        with_dialect["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        if let Err(e) = jsonschema::meta::validate(&with_dialect) {
            panic!("schema {name}: {e}");
        }
        spec.validator(schema);
    }

    let schemes: BTreeSet<&String> = doc["components"]["securitySchemes"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let check_security = |security: &Value, at: &str| {
        for requirement in security.as_array().unwrap() {
            for name in requirement.as_object().unwrap().keys() {
                assert!(
                    schemes.contains(name),
                    "{at}: unknown security scheme {name}"
                );
            }
        }
    };
    check_security(&doc["security"], "top level");

    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with('/'), "{path}");
        let template_params: BTreeSet<String> = path
            .split('{')
            .skip(1)
            .map(|s| s.split('}').next().unwrap().to_owned())
            .collect();
        for key in item.as_object().unwrap().keys() {
            assert!(
                METHODS.contains(&key.as_str()) || key == "parameters",
                "{path}: unexpected member {key}"
            );
        }
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let at = format!("{method} {path}");
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{at}: no operationId"));
            assert!(
                operation_ids.insert(id.to_owned()),
                "{at}: operationId {id} twice"
            );
            assert!(op["summary"].is_string(), "{at}: no summary");
            for tag in op["tags"].as_array().unwrap() {
                assert!(
                    tags.contains(tag.as_str().unwrap()),
                    "{at}: undeclared tag {tag}"
                );
            }
            if let Some(security) = op.get("security") {
                check_security(security, &at);
            }
            // Path parameters: exactly the template's, each required.
            let mut declared = BTreeSet::new();
            let params = item["parameters"].as_array().into_iter().flatten();
            for p in params.chain(op["parameters"].as_array().into_iter().flatten()) {
                let p = spec.resolve(p);
                assert!(
                    p["name"].is_string() && p["schema"].is_object(),
                    "{at}: {p}"
                );
                if p["in"] == "path" {
                    assert_eq!(p["required"], true, "{at}: path parameter not required");
                    declared.insert(p["name"].as_str().unwrap().to_owned());
                } else {
                    assert_eq!(p["in"], "query", "{at}: {p}");
                }
            }
            assert_eq!(declared, template_params, "{at}: path parameters");
            if let Some(body) = op.get("requestBody") {
                assert!(!body["content"].as_object().unwrap().is_empty(), "{at}");
            }
            // Responses: explicit statuses, each described; a 401 exactly where a token may be
            // needed.
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{at}: no responses");
            for (status, r) in responses {
                let code: u16 = status.parse().unwrap_or_else(|_| panic!("{at}: {status}"));
                assert!((100..600).contains(&code), "{at}: {status}");
                assert!(spec.resolve(r)["description"].is_string(), "{at} {status}");
            }
            let public = op.get("security") == Some(&json!([]));
            assert_eq!(
                !public,
                responses.contains_key("401"),
                "{at}: 401 vs security"
            );
        }
    }
}

// ---- routes -------------------------------------------------------------------------------

#[test]
fn the_api_routes_are_exactly_the_described_ones() {
    let spec = Spec::embedded();
    let routed: BTreeSet<(String, String)> = media_origin::http::openapi::api_routes()
        .into_iter()
        .map(|(path, method)| (path, method.to_string()))
        .collect();
    let described: BTreeSet<(String, String)> = spec
        .operations()
        .into_iter()
        .filter(|(path, _)| path.starts_with("/api/"))
        .collect();
    let undescribed: Vec<_> = routed.difference(&described).collect();
    let unrouted: Vec<_> = described.difference(&routed).collect();
    assert!(
        undescribed.is_empty() && unrouted.is_empty(),
        "routed but not described: {undescribed:?}\ndescribed but not routed: {unrouted:?}"
    );
}

/// A concrete URL path for a template: sample values for `{path}` and `{folder}`.
fn sample(template: &str) -> String {
    template
        .replace("{path}", "probe/dir/a.jpg")
        .replace("{folder}", "probe/dir")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn described_routes_answer_and_other_methods_are_405() {
    let s = TestServer::start().await;
    let spec = Spec::fetch(&s).await;
    let mut by_path: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, method) in spec.operations() {
        by_path.entry(path).or_default().insert(method);
    }
    for (template, methods) in &by_path {
        let url = format!("http://{}{}", s.addr, sample(template));
        for method in METHODS.map(str::to_ascii_uppercase) {
            let r = s
                .client
                .request(Method::from_bytes(method.as_bytes()).unwrap(), &url)
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            let a = Answer::read(r).await;
            let what = format!("{method} {template}");
            let described =
                methods.contains(&method) || (method == "HEAD" && methods.contains("GET"));
            if described {
                assert_ne!(a.status, 405, "{what}: described, answered 405");
                // (A HEAD answer has no body to tell; its GET was probed.)
                let fallback = a.status == 404
                    && method != "HEAD"
                    && a.json()["error"]["message"] == "no such route";
                assert!(!fallback, "{what}: described, answered by the fallback");
                continue;
            }
            assert_eq!(
                a.status, 405,
                "{what}: not described, answered {}",
                a.status
            );
            let allow: BTreeSet<String> = a
                .header("allow")
                .unwrap_or_else(|| panic!("{what}: 405 without Allow"))
                .split(',')
                .map(|m| m.trim().to_owned())
                .collect();
            let mut expected = methods.clone();
            if methods.contains("GET") {
                expected.insert("HEAD".into());
            }
            assert_eq!(allow, expected, "{what}: Allow");
            if method != "HEAD" {
                assert_code("method_not_allowed", &a.json());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_description_is_served_without_a_token_on_the_admin_listener_only() {
    let s = TestServer::start_with(Storage::new(Backend::Local).await, |c| {
        c.server.admin_bind = AdminBind::Addr("127.0.0.1:0".parse().unwrap());
    })
    .await;
    assert_ne!(s.addr, s.admin_addr);
    let r = s
        .client
        .get(format!("http://{}/api/openapi.json", s.admin_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let spec = Spec::fetch(&s).await;
    // The metrics need no token here.
    let r = s
        .client
        .get(format!("http://{}/metrics", s.admin_addr))
        .send()
        .await
        .unwrap();
    spec.check(&Method::GET, "/metrics", &Answer::read(r).await);
    // Nothing of the admin API on the public listener.
    let r = s.get(&s.url("/api/openapi.json")).await;
    assert_eq!(r.status(), 404);
}

/// The `pattern` of the `{path}` and `{folder}` parameters refuses what the server refuses
/// (400 `invalid_path`) and admits what it takes. Sent raw: a client would resolve `%2E%2E`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn path_parameters_refuse_what_the_server_refuses() {
    let s = TestServer::start().await;
    let spec = Spec::fetch(&s).await;
    let params = &spec.doc["components"]["parameters"];
    // (parameter, the route it is sent to, raw URL tail, decoded value, admitted)
    let samples = [
        (
            "AssetPath",
            "/api/assets/",
            "promo/2026/banner.jpg",
            "promo/2026/banner.jpg",
            true,
        ),
        (
            "AssetPath",
            "/api/assets/",
            "caf%C3%A9/men%C3%BC.jpg",
            "café/menü.jpg",
            true,
        ),
        (
            "AssetPath",
            "/api/assets/",
            ".hidden.jpg",
            ".hidden.jpg",
            true,
        ),
        ("AssetPath", "/api/assets/", "a/x.json", "a/x.json", true),
        (
            "AssetPath",
            "/api/assets/",
            "promo/%2E%2E/x.jpg",
            "promo/../x.jpg",
            false,
        ),
        ("AssetPath", "/api/assets/", "%2E/x.jpg", "./x.jpg", false),
        (
            "AssetPath",
            "/api/assets/",
            "a%2F%2Fb.jpg",
            "a//b.jpg",
            false,
        ),
        ("AssetPath", "/api/assets/", "%2Fa.jpg", "/a.jpg", false),
        ("AssetPath", "/api/assets/", "promo/", "promo/", false),
        ("AssetPath", "/api/assets/", "a%25b.jpg", "a%b.jpg", false),
        ("AssetPath", "/api/assets/", "a%3Ab.jpg", "a:b.jpg", false),
        ("AssetPath", "/api/assets/", "a%5Cb.jpg", "a\\b.jpg", false),
        (
            "AssetPath",
            "/api/assets/",
            "invoice%E2%80%AEfdp.exe.pdf",
            "invoice\u{202e}fdp.exe.pdf",
            false,
        ),
        (
            "AssetPath",
            "/api/assets/",
            "%EF%BB%BFa.jpg",
            "\u{feff}a.jpg",
            false,
        ),
        (
            "AssetPath",
            "/api/assets/",
            "a%E2%80%8Bb/c.jpg",
            "a\u{200b}b/c.jpg",
            false,
        ),
        (
            "AssetPath",
            "/api/assets/",
            "cafe%CC%81.jpg",
            "cafe\u{301}.jpg",
            true,
        ),
        (
            "AssetPath",
            "/api/assets/",
            "a%01b.jpg",
            "a\u{1}b.jpg",
            false,
        ),
        (
            "AssetPath",
            "/api/assets/",
            "a%C2%85b.jpg",
            "a\u{85}b.jpg",
            false,
        ),
        (
            "AssetPath",
            "/api/assets/",
            "x.json/a.jpg",
            "x.json/a.jpg",
            false,
        ),
        ("Folder", "/api/policies/", "promo/2026", "promo/2026", true),
        ("Folder", "/api/policies/", "/promo/", "/promo/", true),
        ("Folder", "/api/policies/", "x.jsonx", "x.jsonx", true),
        ("Folder", "/api/policies/", "a/x.json.d", "a/x.json.d", true),
        ("Folder", "/api/policies/", "x.json", "x.json", false),
        (
            "Folder",
            "/api/policies/",
            "promo/x.json/",
            "promo/x.json/",
            false,
        ),
        ("Folder", "/api/access/", "x.json", "x.json", false),
        ("Folder", "/api/policies/", "x.json/a", "x.json/a", false),
        (
            "Folder",
            "/api/policies/",
            "promo/%2E%2E",
            "promo/..",
            false,
        ),
        ("Folder", "/api/policies/", "a%3Ab", "a:b", false),
        (
            "Folder",
            "/api/policies/",
            "promo%E2%81%A6",
            "promo\u{2066}",
            false,
        ),
    ];
    for (param, route, raw, decoded, admitted) in samples {
        let schema = &params[param]["schema"];
        let errors = spec.errors(schema, &json!(decoded));
        assert_eq!(
            errors.is_empty(),
            admitted,
            "{param} {decoded:?}: {errors:?}"
        );
        let head = format!("DELETE {route}{raw} HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n");
        let a = head_only(s.admin_addr, &head).await;
        let template = format!(
            "{route}{{{}}}",
            if param == "Folder" { "folder" } else { "path" }
        );
        let body = spec.check(&Method::DELETE, &template, &a);
        let expected = if admitted { 404 } else { 400 };
        assert_eq!(a.status, expected, "DELETE {route}{raw}: {body}");
    }
}

// ---- real answers -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_answers_match_the_documented_schemas() {
    let g = GraphServer::start_default().await;
    let s = TestServer::start_with(Storage::new(Backend::Local).await, |c| {
        g.configure(c);
        c.signing.keys = vec![Secret::new(SIGNING_KEY)];
        c.signing.folders = vec!["vault".into()];
        c.cache
            .folders
            .insert("legal".into(), "no-cache".parse().unwrap());
    })
    .await;
    let spec = Spec::fetch(&s).await;
    let api = Api { s: &s, spec: &spec };
    let asset = "/api/assets/{path}";

    // Uploads by PUT: new, replaced, with a policy and a media ID, a document, a signed one.
    let (status, rec) = api
        .put_asset(
            "/api/assets/promo/a.jpg",
            "image/jpeg",
            fixtures::jpeg(5000, 1),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(rec["message"]["type"], "image");
    assert!(rec["headers"].as_array().unwrap().len() >= 6, "{rec}");
    let (status, _) = api
        .put_asset(
            "/api/assets/promo/a.jpg",
            "image/jpeg",
            fixtures::jpeg(6000, 2),
        )
        .await;
    assert_eq!(status, 200);
    let (status, rec) = api
        .put_asset(
            "/api/assets/promo/b.png?cache=no-store&whatsapp=true",
            "image/png",
            fixtures::png(4000, 3),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(rec["whatsapp_upload"]["reused"], false, "{rec}");
    assert!(rec["message_by_id"].is_object(), "{rec}");
    assert_eq!(rec["message_voice"], Value::Null, "{rec}");
    // Conversion on upload: what the server can do, and a converted asset's `converted_from`.
    let (status, caps) = api.get("/api/capabilities", "/api/capabilities").await;
    assert_eq!(status, 200);
    assert_eq!(caps["convert"]["available"], true, "{caps}");
    let (status, rec) = api
        .put_asset(
            "/api/assets/voice/memo.wav?convert=true",
            "audio/wav",
            common::media::file(common::media::Corpus::ToneWav).to_vec(),
        )
        .await;
    assert_eq!(status, 201, "{rec}");
    assert_eq!(rec["converted_from"]["content_type"], "audio/wav", "{rec}");
    let (status, _) = api
        .call(Method::DELETE, asset, "/api/assets/voice/memo.ogg", |r| r)
        .await;
    assert_eq!(status, 204);
    let (status, error) = api
        .put_asset(
            "/api/assets/voice/x.wav?convert=maybe",
            "audio/wav",
            vec![1],
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(rec["warnings"], json!([]), "{rec}");
    // A voice note over 512 KB with a media ID: both voice forms and a warning.
    let (status, rec) = api
        .put_asset(
            "/api/assets/voice/long.ogg?whatsapp=true",
            "audio/ogg; codecs=opus",
            fixtures::ogg_opus(600_000, 3),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(rec["message_voice"]["audio"]["voice"], true, "{rec}");
    assert_eq!(rec["message_voice_by_id"]["audio"]["voice"], true, "{rec}");
    assert_eq!(rec["warnings"].as_array().unwrap().len(), 1, "{rec}");
    let (status, rec) = api
        .put_asset(
            "/api/assets/legal/terms.pdf",
            "application/pdf",
            fixtures::pdf(3000, 4),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(rec["policy_source"], "folder:legal");
    let (status, rec) = api
        .put_asset(
            "/api/assets/vault/secret.pdf",
            "application/pdf",
            fixtures::pdf(3000, 5),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(rec["signed"], true);
    assert!(rec["link_expires_at"].is_string(), "{rec}");

    // Refused uploads.
    let (status, e) = api
        .put_asset(
            "/api/assets/promo/page.html",
            "text/html",
            b"<html>".to_vec(),
        )
        .await;
    assert_eq!(status, 415);
    assert_code("unsupported_media_type", &e);
    let (status, e) = api
        .put_asset(
            "/api/assets/promo/x.jpg",
            "image/jpeg",
            fixtures::png(4000, 6),
        )
        .await;
    assert_eq!(status, 422);
    assert_code("content_type_mismatch", &e);
    let (status, e) = api
        .put_asset("/api/assets/promo/x.jpg", "image/jpeg", Vec::new())
        .await;
    assert_eq!(status, 422);
    assert_code("invalid_media", &e);
    let (status, e) = api
        .put_asset(
            "/api/assets/promo/x.jpg?bogus=1",
            "image/jpeg",
            fixtures::jpeg(100, 7),
        )
        .await;
    assert_eq!(status, 400);
    assert_code("invalid_query", &e);
    let (status, e) = api
        .put_asset(
            "/api/assets/promo/x.jpg?cache=forever",
            "image/jpeg",
            fixtures::jpeg(100, 7),
        )
        .await;
    assert_eq!(status, 400);
    assert_code("invalid_policy", &e);
    let (status, e) = api
        .put_asset(
            "/api/assets/promo/a%25b.jpg",
            "image/jpeg",
            fixtures::jpeg(100, 7),
        )
        .await;
    assert_eq!(status, 400);
    assert_code("invalid_path", &e);
    // Over the kind's limit, streamed (no Content-Length), and declared.
    let big = fixtures::jpeg(5_000_001, 8);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(256 * 1024).map(|c| Ok(c.to_vec())).collect();
    let (status, e) = api
        .call(Method::PUT, asset, "/api/assets/promo/big.jpg", |r| {
            r.header("content-type", "image/jpeg")
                .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        })
        .await;
    assert_eq!(status, 413);
    assert_code("too_large", &e);
    let head = format!(
        "PUT /api/assets/promo/big.jpg HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: image/jpeg\r\nContent-Length: 5000001\r\n"
    );
    let a = head_only(s.admin_addr, &head).await;
    assert_eq!(a.status, 413);
    spec.check(&Method::PUT, asset, &a);

    // Uploads as a form.
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            file(fixtures::pdf(2000, 9), "Terms 2026.pdf", "application/pdf"),
        )
        .text("folder", "legal")
        .text("cache", "no-cache");
    let (status, rec) = api.form(form).await;
    assert_eq!(status, 201);
    assert_eq!(
        rec["message"]["document"]["filename"], "Terms 2026.pdf",
        "{rec}"
    );
    let form = reqwest::multipart::Form::new()
        .text("path", "promo/c.jpg")
        .text("whatsapp", "true")
        .part(
            "file",
            file(fixtures::jpeg(3000, 10), "c.jpg", "image/jpeg"),
        );
    let (status, rec) = api.form(form).await;
    assert_eq!(status, 201);
    assert!(rec["whatsapp_upload"].is_object(), "{rec}");
    let form = reqwest::multipart::Form::new().text("path", "promo/d.jpg");
    let (status, e) = api.form(form).await;
    assert_eq!(status, 400);
    assert_code("invalid_form", &e);
    let (status, e) = api
        .call(Method::POST, "/api/assets", "/api/assets", |r| {
            r.json(&json!({"path": "x.jpg"}))
        })
        .await;
    assert_eq!(status, 400);
    assert_code("malformed_multipart", &e);

    // Records and listings.
    let (status, rec) = api.get(asset, "/api/assets/promo/a.jpg").await;
    assert_eq!(status, 200);
    assert_eq!(rec["path"], "promo/a.jpg");
    let (status, e) = api.get(asset, "/api/assets/promo/missing.jpg").await;
    assert_eq!(status, 404);
    assert_code("not_found", &e);
    let (status, e) = api.get(asset, "/api/assets/promo/a%25b.jpg").await;
    assert_eq!(status, 400);
    assert_code("invalid_path", &e);
    let list = "/api/assets";
    let (status, page) = api.get(list, "/api/assets?prefix=promo/&limit=2").await;
    assert_eq!(status, 200);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (status, page) = api
        .get(
            list,
            &format!("/api/assets?prefix=promo/&limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(status, 200);
    assert!(page["next_cursor"].is_null(), "{page}");
    let (status, page) = api.get(list, "/api/assets").await;
    assert_eq!(status, 200);
    assert_eq!(page["assets"].as_array().unwrap().len(), 7, "{page}");
    let (status, level) = api.get(list, "/api/assets?folder=").await;
    assert_eq!(status, 200);
    assert!(!level["folders"].as_array().unwrap().is_empty(), "{level}");
    for target in [
        "/api/assets?limit=0",
        "/api/assets?limit=x",
        "/api/assets?bogus=1",
        "/api/assets?folder=a&prefix=a/",
    ] {
        let (status, e) = api.get(list, target).await;
        assert_eq!(status, 400);
        assert_code("invalid_query", &e);
    }
    let (status, e) = api.get(list, "/api/assets?prefix=a%25b").await;
    assert_eq!(status, 400);
    assert_code("invalid_path", &e);

    // Overrides.
    let target = "/api/assets/promo/a.jpg";
    let (status, rec) = api
        .json(
            Method::PATCH,
            asset,
            target,
            json!({"cache_control": "max-age=60"}),
            true,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(rec["policy_source"], "asset");
    let (status, rec) = api
        .json(Method::PATCH, asset, target, json!({"signed": true}), true)
        .await;
    assert_eq!(status, 200);
    assert_eq!(rec["signed_source"], "asset");
    let body = json!({"cache_control": null, "signed": null});
    let (status, _) = api.json(Method::PATCH, asset, target, body, true).await;
    assert_eq!(status, 200);
    let (status, e) = api
        .json(Method::PATCH, asset, target, json!({}), false)
        .await;
    assert_eq!(status, 400);
    assert_code("invalid_json", &e);
    let (status, e) = api
        .json(
            Method::PATCH,
            asset,
            target,
            json!({"cache": "no-cache"}),
            false,
        )
        .await;
    assert_eq!(status, 400);
    assert_code("invalid_json", &e);
    let body = json!({"cache_control": "forever"});
    let (status, e) = api.json(Method::PATCH, asset, target, body, true).await;
    assert_eq!(status, 400);
    assert_code("invalid_policy", &e);
    let (status, e) = api
        .call(Method::PATCH, asset, target, |r| {
            r.header("content-type", "text/plain").body("{}")
        })
        .await;
    assert_eq!(status, 415);
    assert_code("unsupported_media_type", &e);
    let missing = "/api/assets/promo/missing.jpg";
    let (status, e) = api
        .json(
            Method::PATCH,
            asset,
            missing,
            json!({"signed": false}),
            true,
        )
        .await;
    assert_eq!(status, 404);
    assert_code("not_found", &e);

    // The fetch log, after public fetches.
    let r = s
        .client
        .get(s.media("promo/a.jpg"))
        .header("user-agent", "facebookexternalhit/1.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].clone();
    let r = s
        .client
        .get(s.media("promo/a.jpg"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let fetches = "/api/fetches/{path}";
    let (status, log) = api.get(fetches, "/api/fetches/promo/a.jpg").await;
    assert_eq!(status, 200);
    assert_eq!(log["fetches"].as_array().unwrap().len(), 2, "{log}");
    assert_eq!(log["fetches"][1]["meta"], true, "{log}");
    let (status, log) = api.get(fetches, "/api/fetches/never/fetched.jpg").await;
    assert_eq!(status, 200);
    assert_eq!(log["fetches"], json!([]));
    let (status, _) = api.get(fetches, "/api/fetches/a%25b.jpg").await;
    assert_eq!(status, 400);

    // Folder policies: API rules, one over a config rule, removal, refusals.
    let rule = "/api/policies/{folder}";
    let (status, all) = api.get("/api/policies", "/api/policies").await;
    assert_eq!(status, 200);
    assert_eq!(all["folders"][0]["source"], "config", "{all}");
    let body = json!({"cache_control": "max-age=604800"});
    let (status, r) = api
        .json(Method::PUT, rule, "/api/policies/promo", body, true)
        .await;
    assert_eq!(status, 201);
    assert_eq!(r["source"], "api");
    let body = json!({"cache_control": "No-Cache"});
    let (status, r) = api
        .json(Method::PUT, rule, "/api/policies/promo", body, true)
        .await;
    assert_eq!(status, 200);
    assert_eq!(r["cache_control"], "no-cache");
    let body = json!({"cache_control": "max-age=60"});
    let (status, r) = api
        .json(Method::PUT, rule, "/api/policies/legal", body, true)
        .await;
    assert_eq!(status, 201);
    assert_eq!(r["shadows_config"], "no-cache", "{r}");
    let (status, all) = api.get("/api/policies", "/api/policies").await;
    assert_eq!(status, 200);
    assert_eq!(all["folders"].as_array().unwrap().len(), 2, "{all}");
    let body = json!({"cache_control": "sometimes"});
    let (status, e) = api
        .json(Method::PUT, rule, "/api/policies/promo", body, true)
        .await;
    assert_eq!(status, 400);
    assert_code("invalid_policy", &e);
    let body = json!({"cache_control": null});
    let (status, e) = api
        .json(Method::PUT, rule, "/api/policies/promo", body, false)
        .await;
    assert_eq!(status, 400);
    assert_code("invalid_json", &e);
    let (status, e) = api
        .call(Method::PUT, rule, "/api/policies/promo", |r| r.body("{}"))
        .await;
    assert_eq!(status, 415);
    assert_code("unsupported_media_type", &e);
    for bad in ["/api/policies/a%25b", "/api/policies/promo/x.json"] {
        let body = json!({"cache_control": "no-cache"});
        let (status, e) = api.json(Method::PUT, rule, bad, body, true).await;
        assert_eq!(status, 400, "{bad}");
        assert_code("invalid_path", &e);
    }
    let head = format!(
        "PUT /api/policies/promo HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 70000\r\n"
    );
    let a = head_only(s.admin_addr, &head).await;
    assert_eq!(a.status, 413);
    spec.check(&Method::PUT, rule, &a);
    let (status, _) = api
        .call(Method::DELETE, rule, "/api/policies/promo", |r| r)
        .await;
    assert_eq!(status, 204);
    let (status, e) = api
        .call(Method::DELETE, rule, "/api/policies/promo", |r| r)
        .await;
    assert_eq!(status, 404);
    assert_code("not_found", &e);
    let (status, _) = api
        .call(Method::DELETE, rule, "/api/policies/legal", |r| r)
        .await;
    assert_eq!(status, 204);
    let (status, e) = api
        .call(Method::DELETE, rule, "/api/policies/legal", |r| r)
        .await;
    assert_eq!(status, 409);
    assert_code("config_rule", &e);

    // Signed-only folders.
    let access = "/api/access/{folder}";
    let (status, all) = api.get("/api/access", "/api/access").await;
    assert_eq!(status, 200);
    assert_eq!(all["signed_folders"][0]["folder"], "vault", "{all}");
    let on = json!({"signed": true});
    let (status, _) = api
        .json(Method::PUT, access, "/api/access/private", on.clone(), true)
        .await;
    assert_eq!(status, 201);
    let (status, _) = api
        .json(Method::PUT, access, "/api/access/private", on, true)
        .await;
    assert_eq!(status, 200);
    let (status, all) = api.get("/api/access", "/api/access").await;
    assert_eq!(status, 200);
    assert_eq!(all["signed_folders"].as_array().unwrap().len(), 2, "{all}");
    let body = json!({"signed": "yes"});
    let (status, e) = api
        .json(Method::PUT, access, "/api/access/private", body, false)
        .await;
    assert_eq!(status, 400);
    assert_code("invalid_json", &e);
    let (status, _) = api
        .call(Method::DELETE, access, "/api/access/private", |r| r)
        .await;
    assert_eq!(status, 204);
    let (status, e) = api
        .call(Method::DELETE, access, "/api/access/private", |r| r)
        .await;
    assert_eq!(status, 404);
    assert_code("not_found", &e);
    let (status, e) = api
        .call(Method::DELETE, access, "/api/access/vault", |r| r)
        .await;
    assert_eq!(status, 409);
    assert_code("config_rule", &e);
    let off = json!({"signed": false});
    let (status, r) = api
        .json(Method::PUT, access, "/api/access/promo", off.clone(), true)
        .await;
    assert_eq!(status, 200);
    assert_eq!(r["signed"], false);
    let (status, e) = api
        .json(Method::PUT, access, "/api/access/vault", off, true)
        .await;
    assert_eq!(status, 409);
    assert_code("config_rule", &e);

    // Signed links.
    let sign = "/api/sign";
    let body = json!({"path": "legal/terms.pdf", "ttl_secs": 3600});
    let (status, link) = api.json(Method::POST, sign, sign, body, true).await;
    assert_eq!(status, 200);
    assert_eq!(link["message"]["type"], "document");
    assert_eq!(link["message_voice"], Value::Null, "{link}");
    let body = json!({"path": "voice/long.ogg", "ttl_secs": 3600});
    let (status, link) = api.json(Method::POST, sign, sign, body, true).await;
    assert_eq!(status, 200);
    assert_eq!(
        link["message_voice"],
        json!({"type": "audio", "audio": {"link": link["url"], "voice": true}})
    );
    let (status, link) = api
        .json(
            Method::POST,
            sign,
            sign,
            json!({"path": "vault/secret.pdf"}),
            true,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(link["signed"], true);
    let body = json!({"path": "promo/a.jpg", "ttl_secs": 0});
    let (status, e) = api.json(Method::POST, sign, sign, body, false).await;
    assert_eq!(status, 400);
    assert_code("invalid_ttl", &e);
    let (status, e) = api
        .json(
            Method::POST,
            sign,
            sign,
            json!({"path": "promo/none.jpg"}),
            true,
        )
        .await;
    assert_eq!(status, 404);
    assert_code("not_found", &e);
    let (status, e) = api
        .json(
            Method::POST,
            sign,
            sign,
            json!({"paht": "promo/a.jpg"}),
            false,
        )
        .await;
    assert_eq!(status, 400);
    assert_code("invalid_json", &e);

    // Media IDs, against the fake Graph API.
    let status_path = "/api/whatsapp";
    let (status, got) = api.get(status_path, status_path).await;
    assert_eq!(status, 200);
    assert_eq!(got["configured"], true, "{got}");
    assert_eq!(got["default_phone_number_id"], PHONE_NUMBER_ID, "{got}");
    let media = "/api/whatsapp/media";
    let (status, got) = api
        .json(
            Method::POST,
            media,
            media,
            json!({"path": "promo/a.jpg"}),
            true,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["reused"], false);
    assert_eq!(got["message_voice"], Value::Null, "{got}");
    let body = json!({"path": "voice/long.ogg"});
    let (status, got) = api.json(Method::POST, media, media, body, true).await;
    assert_eq!(status, 200);
    assert_eq!(got["reused"], true);
    assert_eq!(
        got["message_voice"],
        json!({"type": "audio", "audio": {"id": got["media_id"], "voice": true}})
    );
    let (status, got) = api
        .json(
            Method::POST,
            media,
            media,
            json!({"path": "legal/terms.pdf"}),
            true,
        )
        .await;
    assert_eq!(status, 200);
    assert!(got["message"]["document"]["filename"].is_string(), "{got}");
    let body = json!({"path": "promo/a.jpg", "phone_number_id": PHONE_NUMBER_ID});
    let (status, got) = api.json(Method::POST, media, media, body, true).await;
    assert_eq!(status, 200);
    assert_eq!(got["reused"], true);
    let (status, rec) = api.get(asset, "/api/assets/promo/a.jpg").await;
    assert_eq!(status, 200);
    assert!(rec["message_by_id"].is_object(), "{rec}");
    assert_eq!(rec["whatsapp"][PHONE_NUMBER_ID]["valid"], true, "{rec}");
    let body = json!({"path": "promo/a.jpg", "phone_number_id": "999"});
    let (status, e) = api.json(Method::POST, media, media, body, true).await;
    assert_eq!(status, 400);
    assert_code("unknown_phone_number", &e);
    let (status, got) = api.get("/api/whatsapp", "/api/whatsapp").await;
    assert_eq!(status, 200);
    assert_eq!(got["configured"], true, "{got}");
    assert_eq!(got["default_phone_number_id"], PHONE_NUMBER_ID, "{got}");
    assert_eq!(got["phone_number_ids"][0], PHONE_NUMBER_ID, "{got}");
    assert_eq!(got["missing"], Value::Null, "{got}");
    let (status, e) = api
        .json(
            Method::POST,
            media,
            media,
            json!({"path": "promo/none.jpg"}),
            true,
        )
        .await;
    assert_eq!(status, 404);
    assert_code("not_found", &e);
    // Meta's error with every member it may carry, validated against `MetaError`.
    g.push_fault(Fault::Detailed {
        code: 100,
        subcode: Some(2494010),
        http_status: 400,
        is_transient: Some(false),
        user_title: Some("Invalid file".into()),
        user_msg: Some("Upload a supported file.".into()),
    });
    let body = json!({"path": "promo/a.jpg", "force": true});
    let (status, e) = api.json(Method::POST, media, media, body, true).await;
    assert_eq!(status, 502);
    assert_code("whatsapp_invalid_parameter", &e);
    let meta = &e["error"]["meta"];
    assert_eq!(meta["code"], 100, "{e}");
    assert_eq!(meta["is_transient"], false, "{e}");
    assert_eq!(meta["error_user_title"], "Invalid file", "{e}");
    assert_eq!(meta["error_user_msg"], "Upload a supported file.", "{e}");

    // Bulk refresh: one asset fails at Meta, the others get or keep an ID.
    let refresh = "/api/whatsapp/refresh";
    g.push_fault(Fault::Code {
        code: 131053,
        subcode: None,
        http_status: 400,
    });
    // Every ID expires within 40 days (they are reused for 27), so all are uploaded again.
    let body = json!({"prefix": "promo/", "expiring_within_secs": 40 * 86_400});
    let (status, report) = api.json(Method::POST, refresh, refresh, body, true).await;
    assert_eq!(status, 200);
    assert_eq!(report["failed"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["uploaded"].as_array().unwrap().len(), 2, "{report}");
    assert!(report["uploaded"][0]["expires_at"].is_string(), "{report}");
    let body = json!({"prefix": "promo/../"});
    let (status, e) = api.json(Method::POST, refresh, refresh, body, true).await;
    assert_eq!(status, 400);
    assert_code("invalid_path", &e);
    let (status, report) = api
        .json(Method::POST, refresh, refresh, json!({}), true)
        .await;
    assert_eq!(status, 200);
    assert!(!report["reused"].as_array().unwrap().is_empty(), "{report}");
    let (status, e) = api
        .json(Method::POST, refresh, refresh, json!({"bogus": 1}), false)
        .await;
    assert_eq!(status, 400);
    assert_code("invalid_json", &e);

    // Incoming media: by media ID (201, then 200), from a webhook payload, and refusals.
    let import = "/api/whatsapp/import";
    let html = b"<!doctype html><p>customer</p>".to_vec();
    let id = g.add_incoming(PHONE_NUMBER_ID, html, "text/html");
    let body = json!({"media_id": id, "filename": "page.html"});
    let (status, got) = api
        .json(Method::POST, import, import, body.clone(), true)
        .await;
    assert_eq!(status, 201, "{got}");
    assert_eq!(got["imported"]["media_id"], id.as_str());
    let (status, got) = api.json(Method::POST, import, import, body, true).await;
    assert_eq!(status, 200);
    assert_eq!(got["created"], false);
    let other = g.add_incoming(PHONE_NUMBER_ID, fixtures::jpeg(800, 3), "image/jpeg");
    let webhook = json!({"object": "whatsapp_business_account", "entry": [{"changes": [{
    "field": "messages",
    "value": {"metadata": {"phone_number_id": PHONE_NUMBER_ID}, "messages": [
        {"from": "1", "id": "wamid.1", "type": "image", "image": {"id": other}},
        {"from": "1", "id": "wamid.2", "type": "sticker", "sticker": {"id": "404404"}}
    ]}}]}]});
    let (status, report) = api.json(Method::POST, import, import, webhook, true).await;
    assert_eq!(status, 200);
    assert_eq!(report["failed"], 1, "{report}");
    let (status, e) = api
        .json(
            Method::POST,
            import,
            import,
            json!({"media_id": "a/b"}),
            false,
        )
        .await;
    assert_eq!(status, 400);
    assert_code("invalid_media_id", &e);

    // Deletion.
    let target = "/api/assets/promo/b.png";
    let (status, _) = api.call(Method::DELETE, asset, target, |r| r).await;
    assert_eq!(status, 204);
    let (status, e) = api.call(Method::DELETE, asset, target, |r| r).await;
    assert_eq!(status, 404);
    assert_code("not_found", &e);

    // Health, readiness and metrics (the token is needed on this shared listener).
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, _) = api.get(path, path).await;
        assert_eq!(status, 200);
    }

    // Without the token, every operation that documents a 401 answers it; the others do not.
    for (path, method) in spec.operations() {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let r = s
            .client
            .request(
                method.clone(),
                format!("http://{}{}", s.admin_addr, sample(&path)),
            )
            .send()
            .await
            .unwrap();
        let a = Answer::read(r).await;
        let documented = spec.operation(&method, &path)["responses"]
            .get("401")
            .is_some();
        assert_eq!(a.status == 401, documented, "{method} {path}: {}", a.status);
        spec.check(&method, &path, &a);
    }

    // Every operation was seen succeeding.
    let missed: Vec<_> = spec
        .operations()
        .difference(&spec.succeeded())
        .cloned()
        .collect();
    assert!(missed.is_empty(), "never answered with a 2xx: {missed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_without_whatsapp_or_signing_match_too() {
    let s = TestServer::start().await;
    let spec = Spec::fetch(&s).await;
    let api = Api { s: &s, spec: &spec };
    let (status, rec) = api
        .put_asset(
            "/api/assets/a.jpg?whatsapp=true",
            "image/jpeg",
            fixtures::jpeg(500, 1),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        rec["whatsapp_error"]["code"], "whatsapp_not_configured",
        "{rec}"
    );
    assert_eq!(rec["whatsapp_error"]["status"], 501, "{rec}");
    let (status, got) = api.get("/api/whatsapp", "/api/whatsapp").await;
    assert_eq!(status, 200);
    assert_eq!(
        got,
        json!({
            "configured": false,
            "phone_number_ids": [],
            "default_phone_number_id": null,
            "missing": "WhatsApp uploads are not configured: set the \
                               WHATSAPP_ACCESS_TOKEN environment variable",
        })
    );
    let media = "/api/whatsapp/media";
    let (status, e) = api
        .json(Method::POST, media, media, json!({"path": "a.jpg"}), true)
        .await;
    assert_eq!(status, 501);
    assert_code("whatsapp_not_configured", &e);
    let refresh = "/api/whatsapp/refresh";
    let (status, _) = api
        .json(Method::POST, refresh, refresh, json!({}), true)
        .await;
    assert_eq!(status, 501);
    let sign = "/api/sign";
    let (status, e) = api
        .json(Method::POST, sign, sign, json!({"path": "a.jpg"}), true)
        .await;
    assert_eq!(status, 400);
    assert_code("signing_not_configured", &e);
    let access = "/api/access/{folder}";
    let on = json!({"signed": true});
    let (status, e) = api
        .json(Method::PUT, access, "/api/access/private", on, true)
        .await;
    assert_eq!(status, 400);
    assert_code("signing_not_configured", &e);
    let (status, all) = api.get("/api/access", "/api/access").await;
    assert_eq!(status, 200);
    assert_eq!(all["signing_configured"], false);
    let (status, e) = api
        .json(
            Method::PATCH,
            "/api/assets/{path}",
            "/api/assets/a.jpg",
            json!({"signed": true}),
            true,
        )
        .await;
    assert_eq!(status, 400);
    assert_code("signing_not_configured", &e);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_over_unreadable_records_match_too() {
    let s = TestServer::start().await;
    let spec = Spec::fetch(&s).await;
    let api = Api { s: &s, spec: &spec };
    let (status, _) = api
        .put_asset(
            "/api/assets/promo/a.jpg",
            "image/jpeg",
            fixtures::jpeg(500, 1),
        )
        .await;
    assert_eq!(status, 201);
    // A record that is not JSON, written beside it by something else.
    std::fs::write(s.root().join("assets/promo/b.jpg.json"), b"{\"path\": ").unwrap();
    let list = "/api/assets";
    for target in ["/api/assets?prefix=promo/", "/api/assets?folder=promo"] {
        let (status, page) = api.get(list, target).await;
        assert_eq!(status, 200);
        assert_eq!(page["assets"].as_array().unwrap().len(), 1, "{page}");
        assert_eq!(
            page["errors"][0]["key"], "assets/promo/b.jpg.json",
            "{page}"
        );
    }
    let (status, e) = api
        .get("/api/assets/{path}", "/api/assets/promo/b.jpg")
        .await;
    assert_eq!(status, 500);
    assert_code("internal", &e);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn folder_routes_on_an_asset_path_match_too() {
    let s = TestServer::start_with(Storage::new(Backend::Local).await, |c| {
        c.signing.keys = vec![Secret::new(SIGNING_KEY)];
    })
    .await;
    let spec = Spec::fetch(&s).await;
    let api = Api { s: &s, spec: &spec };
    let (status, _) = api
        .put_asset(
            "/api/assets/promo/red.jpg",
            "image/jpeg",
            fixtures::jpeg(500, 1),
        )
        .await;
    assert_eq!(status, 201);
    let body = json!({"cache_control": "no-store"});
    let (status, e) = api
        .json(
            Method::PUT,
            "/api/policies/{folder}",
            "/api/policies/promo/red.jpg",
            body,
            true,
        )
        .await;
    assert_eq!(status, 400);
    assert_code("not_a_folder", &e);
    let (status, e) = api
        .json(
            Method::PUT,
            "/api/access/{folder}",
            "/api/access/promo/red.jpg",
            json!({"signed": true}),
            true,
        )
        .await;
    assert_eq!(status, 400);
    assert_code("not_a_folder", &e);
}
