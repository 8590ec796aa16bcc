pub mod headers;
pub mod read;
pub mod schools;
pub mod validate;
