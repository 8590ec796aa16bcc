//! The integration test binary: real PostgreSQL (a database per test, from `#[sqlx::test]`),
//! the real app on a random port, a real HTTP client.

mod alerts;
mod audit;
mod auth;
mod classes;
mod cli;
mod concurrency;
mod corpus;
mod crash;
mod fake_providers;
mod health;
mod helpers;
mod history;
mod home;
mod intake;
mod kept;
mod oneroster_rosters;
mod reconcile;
mod roster_feeds;
mod roster_undo;
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
mod teaching;
mod tenancy;
mod undo;
mod uploads;
mod users;
mod vocab;
