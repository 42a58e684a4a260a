//! `rehearse schema create|drop|show`: what `rehearse_meta` records.

use std::fmt::Write as _;

use crate::schema::SchemaInfo;

pub fn info(info: &SchemaInfo) -> String {
    let modes: Vec<String> = info.modes.iter().map(|m| m.to_string()).collect();
    let mut s = String::new();
    let _ = writeln!(s, "database:        {}", info.database);
    let _ = writeln!(s, "schema version:  {}", info.version);
    let _ = writeln!(
        s,
        "modes:           {}",
        if modes.is_empty() {
            "none".into()
        } else {
            modes.join(", ")
        }
    );
    if let Some(p) = info.partitions {
        let _ = writeln!(s, "partitions:      {p}");
    }
    let _ = writeln!(s, "trigger variant: {}", info.trigger_variant.name());
    s
}
