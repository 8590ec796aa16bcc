//! Small, faithful stand-ins for a OneRoster 1.1 REST provider and Clever's Data API v3, on
//! 127.0.0.1, as their published documentation shows them: OAuth2 client-credentials token
//! endpoint (HTTP Basic), `{"orgs": […]}` / `{"users": […]}` envelopes paged by
//! `limit`/`offset` with `X-Total-Count`, Clever's `{"data": [{"data": …, "uri": …}],
//! "links": [{"rel": "next", "uri": …}]}` paged by `starting_after`, 401 for a bad or
//! expired token, and a switch that answers 500 from some request on.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Provider {
    pub client_id: String,
    pub client_secret: String,
    pub orgs: Vec<Value>,
    pub users: Vec<Value>,
    /// The most records a page holds, whatever `limit` asks.
    pub max_page: usize,
    /// Tokens handed out and still valid.
    pub tokens: HashSet<String>,
    pub token_requests: usize,
    /// Data requests answered so far (any status).
    pub data_requests: usize,
    /// After this many successful data requests, every token expires once.
    pub expire_tokens_after: Option<usize>,
    /// From this data request on (1-based), answer 500.
    pub fail_from: Option<usize>,
    /// Every token ever issued (to check they never reach a log).
    pub issued: Vec<String>,
    pub clever_token: String,
    pub clever_schools: Vec<Value>,
    pub clever_users: Vec<Value>,
}

pub type Shared = Arc<Mutex<Provider>>;

pub struct Fake {
    pub addr: SocketAddr,
    pub state: Shared,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Fake {
    pub async fn start(provider: Provider) -> Fake {
        let state: Shared = Arc::new(Mutex::new(provider));
        let app = Router::new()
            .route("/token", post(token))
            .route("/ims/oneroster/v1p1/orgs", get(orgs))
            .route("/ims/oneroster/v1p1/users", get(users))
            .route("/v3.0/schools", get(clever_schools))
            .route("/v3.0/users", get(clever_users))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Fake {
            addr,
            state,
            _shutdown: tx,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Provider) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_string)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"imsx_codeMajor": "failure", "imsx_severity": "error",
                          "imsx_description": "Unauthorized", "imsx_CodeMinor": "unauthorisedrequest"})),
    )
        .into_response()
}

async fn token(State(s): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let mut p = s.lock().unwrap();
    p.token_requests += 1;
    let creds = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let expected = format!("{}:{}", p.client_id, p.client_secret);
    if creds.as_deref() != Some(expected.as_str())
        || !body.contains("grant_type=client_credentials")
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let t = format!("tok-{}", uuid::Uuid::new_v4());
    p.tokens.insert(t.clone());
    p.issued.push(t.clone());
    axum::Json(json!({"access_token": t, "token_type": "bearer", "expires_in": 3600}))
        .into_response()
}

/// The checks every data request goes through: token, the 500 switch, token expiry.
fn gate(p: &mut Provider, headers: &HeaderMap, clever: bool) -> Option<Response> {
    p.data_requests += 1;
    let ok = match bearer(headers) {
        Some(t) if clever => t == p.clever_token,
        Some(t) => p.tokens.contains(&t),
        None => false,
    };
    if !ok {
        return Some(unauthorized());
    }
    if p.fail_from.is_some_and(|n| p.data_requests >= n) {
        return Some((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response());
    }
    if p.expire_tokens_after == Some(p.data_requests) {
        // This answer goes out; the token dies right after.
        p.tokens.clear();
        p.expire_tokens_after = None;
    }
    None
}

fn oneroster_page(
    p: &mut Provider,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    what: &str,
) -> Response {
    if let Some(r) = gate(p, headers, false) {
        return r;
    }
    let all = if what == "orgs" { &p.orgs } else { &p.users };
    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(100);
    let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit.min(p.max_page.max(1)))
        .cloned()
        .collect();
    let mut response = axum::Json(json!({ (what): page })).into_response();
    response
        .headers_mut()
        .insert("x-total-count", all.len().to_string().parse().unwrap());
    response
}

async fn orgs(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    oneroster_page(&mut s.lock().unwrap(), &headers, &q, "orgs")
}

async fn users(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    oneroster_page(&mut s.lock().unwrap(), &headers, &q, "users")
}

fn clever_page(
    p: &Provider,
    records: Vec<Value>,
    path: &str,
    extra: &str,
    q: &HashMap<String, String>,
) -> Response {
    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(100);
    let limit = limit.min(p.max_page.max(1));
    let start = match q.get("starting_after") {
        Some(after) => records
            .iter()
            .position(|r| r["id"] == after.as_str())
            .map_or(records.len(), |i| i + 1),
        None => 0,
    };
    let page: Vec<Value> = records.iter().skip(start).take(limit).cloned().collect();
    let mut links = vec![json!({"rel": "self", "uri": format!("{path}?{extra}limit={limit}")})];
    if start + page.len() < records.len()
        && let Some(last) = page.last()
    {
        let id = last["id"].as_str().unwrap();
        links.push(json!({"rel": "next", "uri": format!("{path}?{extra}limit={limit}&starting_after={id}")}));
    }
    let data: Vec<Value> = page
        .into_iter()
        .map(|r| {
            let uri = format!("{path}/{}", r["id"].as_str().unwrap());
            json!({"data": r, "uri": uri})
        })
        .collect();
    axum::Json(json!({"data": data, "links": links})).into_response()
}

async fn clever_schools(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut p = s.lock().unwrap();
    if let Some(r) = gate(&mut p, &headers, true) {
        return r;
    }
    let records = p.clever_schools.clone();
    clever_page(&p, records, "/v3.0/schools", "", &q)
}

async fn clever_users(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut p = s.lock().unwrap();
    if let Some(r) = gate(&mut p, &headers, true) {
        return r;
    }
    let role = q.get("role").cloned().unwrap_or_default();
    let records: Vec<Value> = p
        .clever_users
        .iter()
        .filter(|u| role.is_empty() || u["roles"].get(&role).is_some())
        .cloned()
        .collect();
    let extra = if role.is_empty() {
        String::new()
    } else {
        format!("role={role}&")
    };
    clever_page(&p, records, "/v3.0/users", &extra, &q)
}

// ---- records as the providers publish them ----

pub fn or_org(id: &str, name: &str, kind: &str) -> Value {
    json!({"sourcedId": id, "status": "active", "dateLastModified": "2024-08-01T00:00:00.000Z",
           "name": name, "type": kind, "identifier": "", "parent": null, "children": []})
}

/// A OneRoster 1.1 user (`enabledUser` is a string in the 1.1 JSON binding).
pub fn or_user(
    id: &str,
    role: &str,
    given: &str,
    family: &str,
    grade: &str,
    school: &str,
) -> Value {
    json!({
        "sourcedId": id, "status": "active", "dateLastModified": "2024-08-01T00:00:00.000Z",
        "username": format!("{}.{}", given.to_lowercase(), family.to_lowercase()),
        "userIds": [{"type": "SIS", "identifier": id}],
        "enabledUser": "true", "givenName": given, "familyName": family, "middleName": "",
        "role": role, "identifier": format!("ID-{id}"),
        "email": format!("{}.{}@district.example.org", given.to_lowercase(), family.to_lowercase()),
        "sms": "", "phone": "",
        "agents": [],
        "orgs": [{"href": format!("/orgs/{school}"), "sourcedId": school, "type": "org"}],
        "grades": if grade.is_empty() { json!([]) } else { json!([grade]) },
        "password": ""
    })
}

pub fn clever_school(id: &str, name: &str) -> Value {
    json!({"id": id, "district": "d1", "name": name, "sis_id": format!("SIS-{id}"),
           "school_number": "100", "low_grade": "9", "high_grade": "12",
           "created": "2024-01-01T00:00:00.000Z", "last_modified": "2024-01-01T00:00:00.000Z"})
}

pub fn clever_user(
    id: &str,
    role: &str,
    first: &str,
    last: &str,
    number: &str,
    school: &str,
) -> Value {
    let role_data = match role {
        "student" => json!({"sis_id": number, "student_number": number, "grade": "9",
                            "school": school, "schools": [school], "credentials": {"district_username": format!("{first}{last}").to_lowercase()}}),
        "teacher" => {
            json!({"sis_id": format!("sis-{number}"), "teacher_number": number, "school": school, "schools": [school]})
        }
        _ => json!({"staff_id": number, "schools": [school], "title": "Counselor"}),
    };
    json!({"id": id, "district": "d1", "email": format!("{}@cl.example.org", first.to_lowercase()),
           "name": {"first": first, "middle": "", "last": last},
           "roles": { (role): role_data },
           "created": "2024-01-01T00:00:00.000Z", "last_modified": "2024-01-01T00:00:00.000Z"})
}
