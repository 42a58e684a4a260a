//! The lab's Redis, without persistence: a cache, nothing to keep.

use std::time::{Duration, Instant};

use super::process::{make_dir, read_pid, run_checked, terminate, write_file};
use super::LabCtx;
use crate::error::{Error, Result};

impl LabCtx {
    pub fn redis_pid(&self) -> Option<i32> {
        read_pid(&self.state.dir.join("redis/redis.pid"))
    }

    pub async fn start_redis(&self) -> Result<()> {
        let dir = make_dir(&self.run_as, &self.state.dir.join("redis"))?;
        let conf = dir.join("redis.conf");
        let text = format!(
            "# Written by `rehearse lab`; rewritten on every start.
bind 127.0.0.1
port {port}
protected-mode yes
daemonize yes
pidfile {dir}/redis.pid
logfile {dir}/redis.log
dir {dir}
save \"\"
appendonly no
maxmemory 1gb
maxmemory-policy allkeys-lru
{tls}",
            port = if self.state.tls.is_some() { 0 } else { self.state.ports.redis },
            dir = dir.display(),
            tls = match &self.state.tls {
                // TLS only: the plain port is closed.
                Some(t) => format!(
                    "tls-port {}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients no\n",
                    self.state.ports.redis,
                    t.cert.display(),
                    t.key.display(),
                    t.ca.display()
                ),
                None => String::new(),
            }
        );
        write_file(&self.run_as, &conf, &text)?;
        let mut cmd = self.run_as.command(&self.bins.redis_server, &dir);
        cmd.arg(&conf);
        run_checked(
            &mut cmd,
            "starting the lab redis",
            Some(&dir.join("redis.log")),
        )?;
        let start = Instant::now();
        loop {
            match ping(&self.state.urls.redis).await {
                Ok(_) => return Ok(()),
                Err(e) if start.elapsed() > Duration::from_secs(30) => {
                    return Err(Error::Lab(format!(
                        "the lab redis did not answer PING within 30s: {e}"
                    )))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    pub fn stop_redis(&self) {
        if let Some(pid) = self.redis_pid() {
            terminate(pid, libc::SIGTERM, Duration::from_secs(10));
        }
    }
}

/// PING a Redis server; Ok(version) when it answers PONG.
pub async fn ping(url: &str) -> Result<String> {
    let wrap = |what: &str| {
        let what = what.to_string();
        move |source| Error::Redis {
            what: what.clone(),
            source,
        }
    };
    let client = crate::tls::redis_client(url).map_err(wrap("parsing the redis URL"))?;
    let mut con = tokio::time::timeout(
        Duration::from_secs(3),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| {
        Error::Lab(format!(
            "redis at {} did not answer within 3s",
            crate::url::redact(url)
        ))
    })?
    .map_err(wrap("connecting to redis"))?;
    let pong: String = redis::cmd("PING")
        .query_async(&mut con)
        .await
        .map_err(wrap("PING"))?;
    if pong != "PONG" {
        return Err(Error::Lab(format!("redis answered {pong:?} to PING")));
    }
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut con)
        .await
        .map_err(wrap("INFO server"))?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim()
        .to_string())
}
