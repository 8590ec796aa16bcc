//! The integration test binary: real PostgreSQL (a database per test, from `#[sqlx::test]`),
//! the real app on a random port, a real HTTP client.

mod helpers;

mod auth;
mod cli;
mod crash;
mod reconcile;
mod schools;
mod tenancy;
mod uploads;
mod users;
