pub mod apply;
pub mod plan;
pub mod report;
pub mod run;
