//! `rehearse lab up|status`: each component's state, port, pid, version and lag.

use crate::lab::ComponentStatus;
use crate::text::table;

pub fn status(status: &[ComponentStatus]) -> String {
    let rows: Vec<Vec<String>> = status
        .iter()
        .map(|s| {
            let state = match (s.up, s.pid, &s.problem) {
                (true, _, _) => "up".to_string(),
                (false, Some(_), Some(p)) => format!("not answering: {p}"),
                _ => "down".to_string(),
            };
            vec![
                s.component.to_string(),
                state,
                s.port.to_string(),
                s.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                s.version.clone().unwrap_or_else(|| "-".into()),
                s.replay_lag_bytes
                    .map(|b| format!("{b} bytes"))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        &["component", "state", "port", "pid", "version", "replay lag"],
        &rows,
    )
}
