//! The integration test binary: real PostgreSQL (a database per test, from `#[sqlx::test]`),
//! the real app on a random port, a real HTTP client.

mod fake_providers;
mod helpers;

mod alerts;
mod audit;
mod auth;
mod cli;
mod concurrency;
mod corpus;
mod crash;
mod health;
mod history;
mod home;
mod intake;
mod kept;
mod reconcile;
mod rosters;
mod schools;
mod scopes;
mod security;
mod security_auth;
mod security_files;
mod security_server;
mod security_sync;
mod sources;
mod syncs;
mod tenancy;
mod undo;
mod uploads;
mod users;
mod vocab;
