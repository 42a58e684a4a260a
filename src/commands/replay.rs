//! `capture` and `replay`.

use super::*;
use crate::cli::{CaptureArgs, ReplayArgs};
use rehearse::driver::replay::TenantMap;
use rehearse::replay::{self, capture};

pub(crate) async fn run_capture(cli: &Cli, args: &CaptureArgs) -> anyhow::Result<i32> {
    let estate = Estate::resolve(&estate_flags(cli))?;
    if args.restore {
        println!("{}", capture::restore_from(&estate, &args.out).await?);
        return Ok(exit::OK);
    }
    let s = capture::capture(
        &estate,
        &capture::CaptureOptions {
            duration: args.duration.map(|d| d.0),
            out: args.out.clone(),
            allow_destructive: args.allow_destructive.clone(),
            with_durations: args.with_durations,
            primary_only: args.primary_only,
            verbose: true,
            stop: None,
        },
    )
    .await?;
    println!("{}", output::replay::capture(&s));
    Ok(if s.interrupted {
        exit::INTERRUPTED
    } else {
        exit::OK
    })
}

/// `tenants=N` or `tenants=all`.
fn tenant_map(s: Option<&str>) -> anyhow::Result<TenantMap> {
    let Some(s) = s else {
        return Ok(TenantMap::Same);
    };
    let bad = || {
        rehearse::Error::Usage(format!(
            "--map {s:?}: expected tenants=N (a positive count) or tenants=all"
        ))
    };
    let v = s.strip_prefix("tenants=").ok_or_else(bad)?;
    if v == "all" {
        return Ok(TenantMap::Spread(usize::MAX));
    }
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(TenantMap::Spread(n)),
        _ => Err(bad().into()),
    }
}

pub(crate) async fn run_replay(cli: &Cli, args: &ReplayArgs) -> anyhow::Result<i32> {
    let tenants = tenant_map(args.map.as_deref())?;
    let estate = Estate::resolve(&estate_flags(cli))?;
    let o = replay::ReplayOptions {
        logs: args.logs.clone(),
        replica_logs: args.replica_log.clone(),
        speed: args.speed,
        modes: args.mode.list().to_vec(),
        tenants,
        unknown: args.unknown,
        application: args.application.clone(),
        reads: args.reads,
        cache: args.cache,
        pool: args.pool,
        lock_timeout: args.lock_timeout.0,
        timeout: args.timeout.0,
        budgets: args.budgets.clone(),
        out: args.out.clone(),
        verbose: !args.quiet,
    };
    let r = replay::run(&estate, &o).await?;
    print!("{}", output::run::text(&r.result, &r.dir));
    print!("{}", output::replay::summary(&r.summary));
    Ok(r.result.exit_code)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tenant_map_reads_a_count_or_all_and_names_a_bad_one() {
        use super::*;
        assert_eq!(tenant_map(None).unwrap(), TenantMap::Same);
        assert_eq!(tenant_map(Some("tenants=5")).unwrap(), TenantMap::Spread(5));
        assert_eq!(
            tenant_map(Some("tenants=all")).unwrap(),
            TenantMap::Spread(usize::MAX)
        );
        for bad in ["tenants=0", "orgs=5", "tenants=x"] {
            assert!(tenant_map(Some(bad))
                .unwrap_err()
                .to_string()
                .contains("--map"));
        }
    }
}
