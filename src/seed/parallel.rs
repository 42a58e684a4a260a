//! Running many independent statements over a few connections: the
//! server-side phases of a seed (keys, vacuum).

use std::sync::{Arc, Mutex};

use crate::db;
use crate::error::{DbContext, Result};
use crate::progress::Task;

/// Run every statement over `connections` connections, at most that many at once,
/// ticking `phase` per job. The first error stops the phase.
pub async fn run(url: &str, jobs: Vec<String>, connections: usize, phase: Arc<Task>) -> Result<()> {
    let jobs = jobs.into_iter().map(|j| (j, 1)).collect();
    run_with(url, jobs, connections, phase, "").await
}

/// [`run`], with `setup` run first on each connection (settings of the
/// session), each statement ticking `phase` by its weight: its size, so
/// that the rate and ETA a user watches weigh a 4 GB index as what it is.
pub async fn run_with(
    url: &str,
    jobs: Vec<(String, u64)>,
    connections: usize,
    phase: Arc<Task>,
    setup: &str,
) -> Result<()> {
    let queue = Arc::new(Mutex::new(jobs.into_iter().rev().collect::<Vec<_>>()));
    // Dropped with the phase, a JoinSet aborts the statements still running.
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let (queue, url, phase) = (queue.clone(), url.to_string(), phase.clone());
        let setup = format!("SET synchronous_commit = off; {setup}");
        workers.spawn(async move {
            let client = db::connect(&url).await?;
            client
                .batch_execute(&setup)
                .await
                .db(|| format!("setting up the session: {setup}"))?;
            loop {
                let job = queue.lock().expect("queue lock").pop();
                let Some((sql, weight)) = job else { break };
                client
                    .batch_execute(&sql)
                    .await
                    .db(|| format!("running {}", first_line(&sql)))?;
                phase.inc(weight);
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
