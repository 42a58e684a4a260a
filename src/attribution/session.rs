//! One variant's gathering: started before its first request, finished
//! after its last.

use std::sync::Arc;
use std::time::Duration;

use super::sampler::Sampler;
use super::server::{self, Snapshot};
use super::{attribute, Attribution, ServerPart};
use crate::repo::trace::Trace;
use crate::repo::Repo;

pub use crate::estate::Sampling;

struct Watch {
    name: String,
    client: tokio_postgres::Client,
    before: Option<Snapshot>,
    sampler: Option<Sampler>,
}

/// A variant's attribution while it runs.
pub struct Session {
    trace: Arc<Trace>,
    servers: Vec<Watch>,
    sampling: Sampling,
    track_planning: bool,
}

impl Session {
    /// Snapshot pg_stat_statements and start sampling on each server
    /// (name, URL) that answers; None when sampling is off.
    pub async fn start(servers: &[(&str, &str)], sampling: Sampling) -> Option<Session> {
        if !sampling.enabled() {
            return None;
        }
        let mut watches = Vec::new();
        let mut track_planning = false;
        for (name, url) in servers {
            let Ok(client) = crate::db::connect_monitor(url).await else {
                continue;
            };
            track_planning |= server::tracks_planning(&client).await;
            let before = server::snapshot(&client).await;
            let sampler = Sampler::start(
                url,
                Duration::from_millis(sampling.interval_ms),
                sampling.lock_every,
            )
            .await;
            watches.push(Watch {
                name: name.to_string(),
                client,
                before,
                sampler,
            });
        }
        Some(Session {
            trace: Trace::new(),
            servers: watches,
            sampling,
            track_planning,
        })
    }

    /// The trace each request runs in ([`Trace::scope`]).
    pub fn trace(&self) -> Arc<Trace> {
        self.trace.clone()
    }

    /// Stop sampling and put it together; `names` are the mix's
    /// operations. None when no server had pg_stat_statements.
    pub async fn finish(self, names: &[String], repo: &Repo) -> Option<Attribution> {
        let mut parts = Vec::new();
        for w in self.servers {
            let seen = match w.sampler {
                Some(s) => s.finish().await,
                None => Default::default(),
            };
            let (Some(before), Some(after)) = (&w.before, server::snapshot(&w.client).await) else {
                continue;
            };
            parts.push(ServerPart {
                name: w.name,
                deltas: server::delta(before, after),
                seen,
            });
        }
        if parts.is_empty() {
            return None;
        }
        let prepared = repo.prepared_plans().await;
        Some(attribute(
            names,
            &self.trace.sent(),
            &parts,
            &prepared,
            self.sampling.interval_ms as f64,
            self.sampling.lock_every,
            self.track_planning,
        ))
    }
}
