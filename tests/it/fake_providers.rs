//! Small, faithful stand-ins for a OneRoster 1.1 REST provider and Clever's Data API v3, on
//! 127.0.0.1, as their published documentation shows them: OAuth2 client-credentials token
//! endpoint (HTTP Basic), `{"orgs": […]}` / `{"users": […]}` / `{"academicSessions": […]}` /
//! `{"courses": […]}` / `{"classes": […]}` / `{"enrollments": […]}` envelopes paged by
//! `limit`/`offset` with `X-Total-Count` (references as `{sourcedId, href, type}` GUIDRefs), Clever's `{"data": [{"data": …, "uri": …}],
//! "links": [{"rel": "next", "uri": …}]}` paged by `starting_after`, 401 for a bad or
//! expired token, a switch that answers 500 from some request on, and one that makes some
//! lists answer 404 Not Found (a provider that does not offer them).

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
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
    /// OneRoster rosters (empty lists unless a test fills them).
    pub academic_sessions: Vec<Value>,
    pub courses: Vec<Value>,
    pub classes: Vec<Value>,
    pub enrollments: Vec<Value>,
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
    pub clever_sections: Vec<Value>,
    pub clever_terms: Vec<Value>,
    /// Clever's `/v3.0/courses` (`id`, `district`, `name`, `number`).
    pub clever_courses: Vec<Value>,
    /// Paths (e.g. `/ims/oneroster/v1p1/classes`, `/v3.0/sections`) that answer 404 Not Found
    /// to an authorised request: lists this provider does not offer.
    pub not_found: HashSet<String>,
    /// Answer every data request with `307 Temporary Redirect` to this origin (same path).
    pub redirect_to: Option<String>,
    /// For this many data requests, the users lists (OneRoster and Clever) answer a full page
    /// of new records and say there is more, whatever they hold; then they end.
    pub endless_for: Option<usize>,
    /// The OneRoster lists ignore `offset`: every page is the first one.
    pub repeat_first_page: bool,
    /// Wait this long before answering each data request.
    pub delay_ms: u64,
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
            .route(
                "/ims/oneroster/v1p1/academicSessions",
                get(academic_sessions),
            )
            .route("/ims/oneroster/v1p1/courses", get(courses))
            .route("/ims/oneroster/v1p1/classes", get(classes))
            .route("/ims/oneroster/v1p1/enrollments", get(enrollments))
            .route("/v3.0/schools", get(clever_schools))
            .route("/v3.0/users", get(clever_users))
            .route("/v3.0/sections", get(clever_sections))
            .route("/v3.0/terms", get(clever_terms))
            .route("/v3.0/courses", get(clever_courses))
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

/// A bare TCP listener that counts the connections it accepts and never answers them (it
/// holds them open): a service a sync must not reach, or a provider that never answers.
pub struct Silent {
    pub addr: SocketAddr,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Silent {
    /// `bind`: e.g. `127.0.0.1:0`, `[::1]:0`.
    pub async fn start(bind: &str) -> Silent {
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(stream);
            }
        });
        Silent {
            addr,
            accepted,
            task,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
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
/// `path`: the request's path and query (where a redirect points to).
fn gate(p: &mut Provider, headers: &HeaderMap, clever: bool, path: &str) -> Option<Response> {
    p.data_requests += 1;
    let ok = match bearer(headers) {
        Some(t) if clever => t == p.clever_token,
        Some(t) => p.tokens.contains(&t),
        None => false,
    };
    if !ok {
        return Some(unauthorized());
    }
    if let Some(to) = &p.redirect_to {
        let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
        r.headers_mut()
            .insert("location", format!("{to}{path}").parse().unwrap());
        return Some(r);
    }
    if p.not_found.contains(path.split('?').next().unwrap_or(path)) {
        return Some(
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"message": "Not Found"})),
            )
                .into_response(),
        );
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

/// Records made up for an endless list: new ids on every page.
fn endless_records(p: &Provider, what: &str, from: usize, n: usize, clever: bool) -> Vec<Value> {
    (from..from + n)
        .map(|i| {
            let id = format!("x{i}");
            match (what, clever) {
                ("orgs", _) => or_org(&id, &format!("School {i}"), "school"),
                (_, false) => or_user(&id, "student", "Endless", &format!("N{i}"), "05", "HS"),
                (_, true) => clever_user(&id, "student", "Endless", &format!("N{i}"), &id, "5f1"),
            }
        })
        .take(p.max_page.max(1))
        .collect()
}

/// The rest of an endless list: `true` while the provider still pages without an end.
fn endless(p: &mut Provider) -> bool {
    match p.endless_for {
        Some(0) | None => false,
        Some(n) => {
            p.endless_for = Some(n - 1);
            true
        }
    }
}

fn oneroster_page(
    p: &mut Provider,
    headers: &HeaderMap,
    uri: &Uri,
    q: &HashMap<String, String>,
    what: &str,
) -> Response {
    if let Some(r) = gate(p, headers, false, &path_and_query(uri)) {
        return r;
    }
    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(100);
    let offset: usize = match q.get("offset").and_then(|v| v.parse().ok()) {
        Some(_) if p.repeat_first_page => 0,
        Some(o) => o,
        None => 0,
    };
    if what == "users" && p.endless_for.is_some() {
        let page = if endless(p) {
            endless_records(p, what, offset, limit, false)
        } else {
            Vec::new()
        };
        let mut response = axum::Json(json!({ (what): page })).into_response();
        response
            .headers_mut()
            .insert("x-total-count", "1000000000".parse().unwrap());
        return response;
    }
    let all = match what {
        "orgs" => &p.orgs,
        "academicSessions" => &p.academic_sessions,
        "courses" => &p.courses,
        "classes" => &p.classes,
        "enrollments" => &p.enrollments,
        _ => &p.users,
    };
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

fn path_and_query(uri: &Uri) -> String {
    uri.path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_default()
}

async fn delay(s: &Shared) {
    let ms = s.lock().unwrap().delay_ms;
    if ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

async fn orgs(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    delay(&s).await;
    oneroster_page(&mut s.lock().unwrap(), &headers, &uri, &q, "orgs")
}

async fn users(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    delay(&s).await;
    oneroster_page(&mut s.lock().unwrap(), &headers, &uri, &q, "users")
}

async fn academic_sessions(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    delay(&s).await;
    oneroster_page(
        &mut s.lock().unwrap(),
        &headers,
        &uri,
        &q,
        "academicSessions",
    )
}

async fn courses(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    delay(&s).await;
    oneroster_page(&mut s.lock().unwrap(), &headers, &uri, &q, "courses")
}

async fn classes(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    delay(&s).await;
    oneroster_page(&mut s.lock().unwrap(), &headers, &uri, &q, "classes")
}

async fn enrollments(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    delay(&s).await;
    oneroster_page(&mut s.lock().unwrap(), &headers, &uri, &q, "enrollments")
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
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    delay(&s).await;
    let mut p = s.lock().unwrap();
    if let Some(r) = gate(&mut p, &headers, true, &path_and_query(&uri)) {
        return r;
    }
    let records = p.clever_schools.clone();
    clever_page(&p, records, "/v3.0/schools", "", &q)
}

async fn clever_sections(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    delay(&s).await;
    let mut p = s.lock().unwrap();
    if let Some(r) = gate(&mut p, &headers, true, &path_and_query(&uri)) {
        return r;
    }
    let records = p.clever_sections.clone();
    clever_page(&p, records, "/v3.0/sections", "", &q)
}

async fn clever_terms(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    delay(&s).await;
    let mut p = s.lock().unwrap();
    if let Some(r) = gate(&mut p, &headers, true, &path_and_query(&uri)) {
        return r;
    }
    let records = p.clever_terms.clone();
    clever_page(&p, records, "/v3.0/terms", "", &q)
}

async fn clever_courses(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    delay(&s).await;
    let mut p = s.lock().unwrap();
    if let Some(r) = gate(&mut p, &headers, true, &path_and_query(&uri)) {
        return r;
    }
    let records = p.clever_courses.clone();
    clever_page(&p, records, "/v3.0/courses", "", &q)
}

async fn clever_users(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    delay(&s).await;
    let mut p = s.lock().unwrap();
    if let Some(r) = gate(&mut p, &headers, true, &path_and_query(&uri)) {
        return r;
    }
    let role = q.get("role").cloned().unwrap_or_default();
    if p.endless_for.is_some() {
        // The records after `starting_after`, and a next link; while endless, never the end.
        let from = q
            .get("starting_after")
            .and_then(|a| a.trim_start_matches('x').parse::<usize>().ok())
            .map_or(0, |i| i + 1);
        let records = if endless(&mut p) {
            endless_records(&p, "users", from, p.max_page.max(1), true)
        } else {
            Vec::new()
        };
        let mut links = Vec::new();
        if let Some(last) = records.last() {
            let id = last["id"].as_str().unwrap();
            links.push(json!({"rel": "next",
                "uri": format!("/v3.0/users?role={role}&starting_after={id}")}));
        }
        let data: Vec<Value> = records
            .into_iter()
            .map(
                |r| json!({"uri": format!("/v3.0/users/{}", r["id"].as_str().unwrap()), "data": r}),
            )
            .collect();
        return axum::Json(json!({"data": data, "links": links})).into_response();
    }
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

/// A OneRoster 1.1 GUIDRef.
fn guid_ref(kind: &str, path: &str, id: &str) -> Value {
    json!({"href": format!("/ims/oneroster/v1p1/{path}/{id}"), "sourcedId": id, "type": kind})
}

/// A OneRoster 1.1 academic session (dates as `YYYY-MM-DD`, `schoolYear` the ending year).
pub fn or_session(
    id: &str,
    title: &str,
    kind: &str,
    start: &str,
    end: &str,
    parent: Option<&str>,
) -> Value {
    json!({"sourcedId": id, "status": "active", "dateLastModified": "2024-08-01T00:00:00.000Z",
           "title": title, "type": kind, "startDate": start, "endDate": end,
           "parent": parent.map(|p| guid_ref("academicSession", "academicSessions", p)),
           "children": [], "schoolYear": "2025"})
}

pub fn or_course(id: &str, title: &str, code: &str, subject: &str) -> Value {
    json!({"sourcedId": id, "status": "active", "dateLastModified": "2024-08-01T00:00:00.000Z",
           "title": title, "schoolYear": null, "courseCode": code, "grades": ["09"],
           "subjects": [subject], "org": guid_ref("org", "orgs", "D1"), "subjectCodes": [],
           "resources": []})
}

/// A OneRoster 1.1 class: `course`, `school` and `terms` as GUIDRefs.
pub fn or_class(
    id: &str,
    title: &str,
    course: &str,
    school: &str,
    terms: &[&str],
    period: &str,
) -> Value {
    json!({"sourcedId": id, "status": "active", "dateLastModified": "2024-08-01T00:00:00.000Z",
           "title": title, "classCode": format!("{title}-{period}"), "classType": "scheduled",
           "location": "Room 101", "grades": ["09", "10"], "subjects": [],
           "course": guid_ref("course", "courses", course),
           "school": guid_ref("org", "schools", school),
           "terms": terms.iter().map(|t| guid_ref("academicSession", "terms", t)).collect::<Vec<_>>(),
           "subjectCodes": [], "periods": [period], "resources": []})
}

/// A OneRoster 1.1 enrollment: `user`, `class` and `school` as GUIDRefs; `primary` a string
/// as the 1.1 JSON binding writes it.
pub fn or_enrollment(
    id: &str,
    class: &str,
    user: &str,
    role: &str,
    primary: bool,
    school: &str,
) -> Value {
    json!({"sourcedId": id, "status": "active", "dateLastModified": "2024-08-01T00:00:00.000Z",
           "user": guid_ref("user", "users", user),
           "class": guid_ref("class", "classes", class),
           "school": guid_ref("org", "schools", school),
           "role": role, "primary": primary.to_string(),
           "beginDate": "2024-08-20", "endDate": "2025-06-13"})
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

/// A Clever section as `/v3.0/sections` lists it: `teacher` is the primary teacher, also first
/// in `teachers`.
pub fn clever_section(
    id: &str,
    school: &str,
    name: &str,
    term: &str,
    teachers: &[&str],
    students: &[&str],
) -> Value {
    json!({"id": id, "district": "d1", "school": school, "name": name,
           "sis_id": format!("SIS-{id}"), "section_number": "1", "course": format!("crs-{id}"),
           "period": "2", "subject": "math", "grade": "9",
           "term_id": if term.is_empty() { Value::Null } else { json!(term) },
           "teacher": teachers.first().map_or(Value::Null, |t| json!(t)),
           "teachers": teachers, "students": students,
           "created": "2024-01-01T00:00:00.000Z", "last_modified": "2024-01-01T00:00:00.000Z"})
}

/// A Clever term as `/v3.0/terms` lists it.
pub fn clever_term(id: &str, name: &str, start: &str, end: &str) -> Value {
    json!({"id": id, "district": "d1", "name": name, "start_date": start, "end_date": end})
}

/// A Clever course as `/v3.0/courses` lists it (`name` and `number` provided by the district).
pub fn clever_course(id: &str, name: &str, number: &str) -> Value {
    json!({"id": id, "district": "d1", "name": name, "number": number})
}
