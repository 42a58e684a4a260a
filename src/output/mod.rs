//! What commands print, one file per command: the library computes, these
//! render, and `main.rs` only parses and dispatches.

pub mod compare;
