//! Running many independent statements over a few connections: the
//! server-side phases of a seed (mirror, summaries, keys, analyze).

use std::sync::{Arc, Mutex};

use tokio_postgres::types::ToSql;

use crate::db;
use crate::error::{DbContext, Result};
use crate::progress::Phase;

/// A statement with up to two bigint parameters (an organization range).
#[derive(Debug, Clone)]
pub struct Job {
    pub sql: String,
    pub range: Option<(i64, i64)>,
}

/// Run every job over `connections` connections, at most that many at once,
/// ticking `phase` per job. The first error stops the phase.
pub async fn run(url: &str, jobs: Vec<Job>, connections: usize, phase: Arc<Phase>) -> Result<()> {
    let queue = Arc::new(Mutex::new(jobs.into_iter().rev().collect::<Vec<_>>()));
    // Dropped with the phase, a JoinSet aborts the statements still running.
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let (queue, url, phase) = (queue.clone(), url.to_string(), phase.clone());
        workers.spawn(async move {
            let client = db::connect(&url).await?;
            client
                .batch_execute("SET synchronous_commit = off")
                .await
                .db(|| "setting synchronous_commit".into())?;
            loop {
                let job = queue.lock().expect("queue lock").pop();
                let Some(job) = job else { break };
                match job.range {
                    Some((a, b)) => {
                        let params: [&(dyn ToSql + Sync); 2] = [&a, &b];
                        client.execute(&job.sql, &params).await.map(|_| ())
                    }
                    None => client.batch_execute(&job.sql).await,
                }
                .db(|| format!("running {}", first_line(&job.sql)))?;
                phase.inc(1);
            }
            Ok::<(), crate::Error>(())
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("a seed worker panicked")?;
    }
    Ok(())
}

fn first_line(sql: &str) -> &str {
    sql.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(sql)
        .trim()
}

/// Split organizations 1..=orgs into about `parts` inclusive ranges.
pub fn org_ranges(orgs: u64, parts: u64) -> Vec<(i64, i64)> {
    let parts = parts.clamp(1, orgs.max(1));
    let size = orgs.div_ceil(parts);
    (0..parts)
        .map(|i| (i * size + 1, ((i + 1) * size).min(orgs)))
        .filter(|(a, b)| a <= b)
        .map(|(a, b)| (a as i64, b as i64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_organization_once() {
        for (orgs, parts) in [(1u64, 8u64), (10, 3), (1_000_000, 16), (7, 7)] {
            let r = org_ranges(orgs, parts);
            assert_eq!(r.first().unwrap().0, 1);
            assert_eq!(r.last().unwrap().1, orgs as i64);
            for w in r.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0);
            }
        }
    }
}
