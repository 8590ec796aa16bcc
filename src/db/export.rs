//! The master CSV's rows, streamed.

use super::user_filter::UserFilter;
use crate::domain::UserStatus;
use futures::Stream;
use futures::StreamExt;
use sqlx::{PgPool, Postgres, QueryBuilder};
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
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
            "SELECT u.id, u.custom_id, u.email, u.username, u.first_name, u.middle_name, u.last_name, u.role,
                    coalesce((SELECT array_agg(s.external_id ORDER BY s.external_id) FROM user_schools us
                              JOIN schools s ON s.district_id = us.district_id AND s.id = us.school_id
                              WHERE us.district_id = u.district_id AND us.user_id = u.id), '{}') AS schools,
                    u.grade, u.position, u.status
             FROM users u WHERE u.district_id = ",
        );
        qb.push_bind(district_id);
        filter.push_conditions(&mut qb, scope.as_deref());
        qb.push(" ORDER BY u.last_name, u.first_name, u.id");
        let mut rows = qb.build_query_as::<ExportRow>().fetch(&pool);
        while let Some(row) = rows.next().await {
            if tx.send(row).await.is_err() {
                break; // the client went away
            }
        }
    });
    tokio_stream_from(rx)
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
