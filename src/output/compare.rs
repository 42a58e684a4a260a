//! `rehearse compare`'s output: a table, Markdown, or JSON, rendered by
//! `report/compare_table.rs`, which the ab page shares.

pub use crate::report::compare_table::{render, Format};
