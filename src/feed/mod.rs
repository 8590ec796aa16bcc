//! Everything that comes in, read and checked: user CSVs, schools CSVs, OneRoster and Clever.

pub mod bundle;
pub mod clever;
pub mod headers;
pub mod oneroster;
pub mod oneroster_rosters;
pub mod preview;
pub mod provider;
pub mod read;
pub mod reference;
pub mod roster_csv;
pub mod schools;
pub mod sds;
pub mod validate;
