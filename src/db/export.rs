//! The master CSV's rows, streamed.

use super::user_filter::UserFilter;
use crate::domain::UserStatus;
use futures::Stream;
use futures::TryStreamExt;
use sqlx::{PgPool, Postgres, QueryBuilder};
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
pub struct ExportRow {
    pub id: Uuid,
    pub custom_id: Option<String>,
    pub email: Option<String>,
    pub username: String,
    pub first_name: String,
    pub middle_name: String,
    pub last_name: String,
    pub role: String,
    pub schools: Vec<String>,
    pub grade: String,
    pub position: String,
    pub status: UserStatus,
}

/// Every user the filter selects, in a stable order, without loading them all at once.
pub fn master_rows(
    pool: PgPool,
    district_id: Uuid,
    filter: UserFilter,
    scope: Option<Vec<Uuid>>,
) -> impl Stream<Item = sqlx::Result<ExportRow>> + Send + 'static {
    async_stream_rows(pool, district_id, filter, scope)
}

fn async_stream_rows(
    pool: PgPool,
    district_id: Uuid,
    filter: UserFilter,
    scope: Option<Vec<Uuid>>,
) -> impl Stream<Item = sqlx::Result<ExportRow>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<sqlx::Result<ExportRow>>(256);
    tokio::spawn(async move {
        if let Err(e) = send_rows(&pool, district_id, &filter, scope.as_deref(), &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    tokio_stream_from(rx)
}

/// Users per schools lookup while streaming the master CSV.
const SCHOOLS_BATCH: usize = 2_000;

/// A user row of the master CSV before its schools are known.
#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    custom_id: Option<String>,
    email: Option<String>,
    username: String,
    first_name: String,
    middle_name: String,
    last_name: String,
    role: String,
    grade: String,
    position: String,
    status: UserStatus,
}

/// The users stream in the list's name order (read from its index: no sort, the first row
/// at once), and every 2,000 users their schools come from one lookup on a second connection
/// — not a subquery per user, which made a 1,000,000-user download take ~20 s (issue 19,
/// item 5). Each lookup runs while the next users are read (when they took turns, a
/// 1,000,000-user download spent a third of its time with both connections idle). Memory
/// stays a few batches whatever the district's size.
async fn send_rows(
    pool: &PgPool,
    district_id: Uuid,
    filter: &UserFilter,
    scope: Option<&[Uuid]>,
    tx: &tokio::sync::mpsc::Sender<sqlx::Result<ExportRow>>,
) -> sqlx::Result<()> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT u.id, u.custom_id, u.email, u.username, u.first_name, u.middle_name, u.last_name, u.role,
                u.grade, u.position, u.status
         FROM users u WHERE u.district_id = ",
    );
    qb.push_bind(district_id);
    filter.push_conditions(&mut qb, scope);
    qb.push(" ORDER BY u.last_name, u.first_name, u.id");
    let mut lookups = pool.acquire().await?;
    let mut schools = ranked_schools(&mut lookups, district_id).await?;
    let (batches, mut batches_rx) = tokio::sync::mpsc::channel::<Vec<UserRow>>(2);
    let read = async move {
        let mut rows = qb.build_query_as::<UserRow>().fetch(pool);
        let mut batch: Vec<UserRow> = Vec::with_capacity(SCHOOLS_BATCH);
        while let Some(row) = rows.try_next().await? {
            batch.push(row);
            if batch.len() == SCHOOLS_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(SCHOOLS_BATCH));
                if batches.send(full).await.is_err() {
                    return Ok::<(), sqlx::Error>(()); // the client went away
                }
            }
        }
        if !batch.is_empty() {
            let _ = batches.send(batch).await;
        }
        Ok::<(), sqlx::Error>(())
    };
    let send = async move {
        while let Some(batch) = batches_rx.recv().await {
            let ids: Vec<Uuid> = batch.iter().map(|u| u.id).collect();
            let mut of: HashMap<Uuid, Vec<(usize, String)>> = HashMap::with_capacity(ids.len());
            let found = sqlx::query_as::<_, (Uuid, Uuid)>(
                "SELECT user_id, school_id FROM user_schools
                 WHERE district_id = $1 AND user_id = ANY($2)",
            )
            .bind(district_id)
            .bind(&ids)
            .fetch(&mut *lookups);
            let found: Vec<(Uuid, Uuid)> = found.try_collect().await?;
            // A school added since the download began: rank the district's schools again,
            // so no user's cell loses a school (sent back, it would end the membership).
            if found
                .iter()
                .any(|(_, school)| !schools.contains_key(school))
            {
                schools = ranked_schools(&mut lookups, district_id).await?;
            }
            for (user, school) in found {
                if let Some(s) = schools.get(&school) {
                    of.entry(user).or_default().push(s.clone());
                }
            }
            for u in batch {
                let mut mine = of.remove(&u.id).unwrap_or_default();
                mine.sort_unstable();
                let row = ExportRow {
                    schools: mine
                        .into_iter()
                        .map(|(_, external_id)| external_id)
                        .collect(),
                    id: u.id,
                    custom_id: u.custom_id,
                    email: u.email,
                    username: u.username,
                    first_name: u.first_name,
                    middle_name: u.middle_name,
                    last_name: u.last_name,
                    role: u.role,
                    grade: u.grade,
                    position: u.position,
                    status: u.status,
                };
                if tx.send(Ok(row)).await.is_err() {
                    return Ok::<(), sqlx::Error>(()); // the client went away; the reader stops at its next batch
                }
            }
        }
        Ok::<(), sqlx::Error>(())
    };
    tokio::try_join!(read, send)?;
    Ok(())
}

/// The district's schools by id, each with its rank in external-ID order (PostgreSQL's, as
/// `array_agg(… ORDER BY external_id)` had it): a user's schools are sorted by rank.
async fn ranked_schools(
    conn: &mut sqlx::PgConnection,
    district_id: Uuid,
) -> sqlx::Result<HashMap<Uuid, (usize, String)>> {
    Ok(sqlx::query_as::<_, (Uuid, String)>(
        "SELECT id, external_id FROM schools WHERE district_id = $1 ORDER BY external_id, id",
    )
    .bind(district_id)
    .fetch_all(conn)
    .await?
    .into_iter()
    .enumerate()
    .map(|(rank, (id, external_id))| (id, (rank, external_id)))
    .collect())
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// One page of users for the API, in id order (keyset: `after` the previous page's last id).
pub async fn api_page(
    pool: &PgPool,
    district_id: Uuid,
    filter: &UserFilter,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ExportRow>> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT u.id, u.custom_id, u.email, u.username, u.first_name, u.middle_name, u.last_name, u.role,
                coalesce((SELECT array_agg(s.external_id ORDER BY s.external_id) FROM user_schools us
                          JOIN schools s ON s.district_id = us.district_id AND s.id = us.school_id
                          WHERE us.district_id = u.district_id AND us.user_id = u.id), '{}') AS schools,
                u.grade, u.position, u.status
         FROM users u WHERE u.district_id = ",
    );
    qb.push_bind(district_id);
    filter.push_conditions(&mut qb, None);
    if let Some(after) = after {
        qb.push(" AND u.id > ").push_bind(after);
    }
    qb.push(" ORDER BY u.id LIMIT ").push_bind(limit);
    qb.build_query_as().fetch_all(pool).await
}
