//! The reconcile engine: plan a feed against the district's users, then apply it.

pub mod apply;
pub mod mapping;
pub mod plan;
pub mod report;
pub mod roster;
pub mod run;
pub mod undo;
pub mod undo_run;
