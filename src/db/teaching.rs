//! A teacher's classes and their students, as the teacher's pages read them (`web::teaching`):
//! only non-archived classes the person is enrolled in as `teacher`, only students who are
//! not archived.

use crate::domain::{PortalRole, UserStatus};
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// A class the signed-in person teaches.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaughtClass {
    pub id: Uuid,
    pub external_id: String,
    pub title: String,
    pub period: String,
    pub school: String,
    /// The term's title, empty when the class has none.
    pub term: String,
    /// Its students who are not archived.
    pub students: i64,
}

/// A student of a class, with what their teacher needs to help them sign in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClassStudent {
    pub id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub username: String,
    pub email: Option<String>,
    pub role: String,
    pub portal_role: PortalRole,
    pub status: UserStatus,
    pub has_password: bool,
    pub password_temporary: bool,
    pub password_set_at: Option<OffsetDateTime>,
    pub temp_password_used_at: Option<OffsetDateTime>,
    /// Enrolled as teacher in some non-archived class (then not a student to help).
    pub teaches: bool,
}

/// Whether the user teaches at least one non-archived class.
pub async fn teaches(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    user_id: Uuid,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM enrollments e
             JOIN classes c ON c.district_id = e.district_id AND c.id = e.class_id
             WHERE e.district_id = $1 AND e.user_id = $2 AND e.role = 'teacher'
               AND c.archived_at IS NULL)",
    )
    .bind(district_id)
    .bind(user_id)
    .fetch_one(db)
    .await
}

const TAUGHT: &str = "
    SELECT c.id, c.external_id, c.title, c.period, s.name AS school,
           coalesce(t.title, '') AS term,
           (SELECT count(*) FROM enrollments se
              JOIN users u ON u.district_id = se.district_id AND u.id = se.user_id
             WHERE se.district_id = c.district_id AND se.class_id = c.id
               AND se.role = 'student' AND u.archived_at IS NULL) AS students
    FROM enrollments e
    JOIN classes c ON c.district_id = e.district_id AND c.id = e.class_id
    JOIN schools s ON s.district_id = c.district_id AND s.id = c.school_id
    LEFT JOIN terms t ON t.district_id = c.district_id AND t.id = c.term_id
    WHERE e.district_id = $1 AND e.user_id = $2 AND e.role = 'teacher'
      AND c.archived_at IS NULL";

/// The non-archived classes the user teaches, by title.
pub async fn classes(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    teacher_id: Uuid,
) -> sqlx::Result<Vec<TaughtClass>> {
    sqlx::query_as(&format!("{TAUGHT} ORDER BY lower(c.title), c.id"))
        .bind(district_id)
        .bind(teacher_id)
        .fetch_all(db)
        .await
}

/// One class, if the user teaches it and it is not archived.
pub async fn class(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    teacher_id: Uuid,
    class_id: Uuid,
) -> sqlx::Result<Option<TaughtClass>> {
    sqlx::query_as(&format!("{TAUGHT} AND c.id = $3"))
        .bind(district_id)
        .bind(teacher_id)
        .bind(class_id)
        .fetch_optional(db)
        .await
}

const STUDENTS: &str = "
    SELECT u.id, u.first_name, u.last_name, u.username, u.email, u.role, u.portal_role, u.status,
           u.password_hash IS NOT NULL AS has_password, u.password_temporary,
           u.password_set_at, u.temp_password_used_at,
           EXISTS (SELECT 1 FROM enrollments te
                     JOIN classes tc ON tc.district_id = te.district_id AND tc.id = te.class_id
                    WHERE te.district_id = u.district_id AND te.user_id = u.id
                      AND te.role = 'teacher' AND tc.archived_at IS NULL) AS teaches
    FROM enrollments e
    JOIN users u ON u.district_id = e.district_id AND u.id = e.user_id
    WHERE e.district_id = $1 AND e.class_id = $2 AND e.role = 'student'
      AND u.archived_at IS NULL";

/// A class's students who are not archived (inactive ones included), by name. The caller
/// has checked that the class is the teacher's (`class`).
pub async fn students(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    class_id: Uuid,
) -> sqlx::Result<Vec<ClassStudent>> {
    sqlx::query_as(&format!(
        "{STUDENTS} ORDER BY lower(u.last_name), lower(u.first_name), u.id"
    ))
    .bind(district_id)
    .bind(class_id)
    .fetch_all(db)
    .await
}

/// One student of a class (not archived), locked for the change that follows in the
/// caller's transaction.
pub async fn student_for_update(
    db: impl PgExecutor<'_>,
    district_id: Uuid,
    class_id: Uuid,
    user_id: Uuid,
) -> sqlx::Result<Option<ClassStudent>> {
    sqlx::query_as(&format!("{STUDENTS} AND u.id = $3 FOR UPDATE OF u"))
        .bind(district_id)
        .bind(class_id)
        .bind(user_id)
        .fetch_optional(db)
        .await
}
