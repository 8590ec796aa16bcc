pub mod apply;
pub mod mapping;
pub mod plan;
pub mod report;
pub mod run;
pub mod undo;
pub mod undo_run;
