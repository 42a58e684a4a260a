//! How much disk a seed needs, and whether it fits where it will land.
//!
//! The bytes per organization and day are measured, not derived: they are
//! the sum of `pg_total_relation_size` over a mode's tables after a seed
//! (heap, indexes, TOAST), divided by organizations x days. They are kept
//! here only, and `tests/seed.rs` checks them against a real seed, so a
//! change of the schema or the generator that makes rows wider fails a test
//! instead of filling a disk.

use std::path::{Path, PathBuf};

use tokio_postgres::GenericClient;

use crate::error::{DbContext, Error, Result};
use crate::generate::Params;
use crate::schema::Mode;

/// A mode's entries, summaries and their indexes, per organization and day
/// of history. Measured 2026-12-01 (seed 42, 64 partitions): the full
/// estate, 1,000,000 organizations x 10 days, holds 1,129 bytes (legacy,
/// 11.29 GB) and 1,184 (partitioned, 11.84 GB); seeds of 20,000 and 2,000
/// organizations fitted to a line give 1,143 and 1,192. Rounded up.
pub const BYTES_PER_ORG_DAY: [(Mode, u64); 2] = [(Mode::Legacy, 1_160), (Mode::Partitioned, 1_210)];
/// Organizations and properties, per organization (372 bytes measured at
/// the full estate, 390 at 20,000 organizations).
pub const SHARED_BYTES_PER_ORG: u64 = 420;
/// What a mode holds whatever the size: at least one chain of hundreds of
/// properties (about 5 MB measured).
pub const FIXED_BYTES_PER_MODE: u64 = 6 << 20;
/// Each partition of the three partitioned tables with their five indexes,
/// empty or not: a half-filled last page per table and index, and index
/// metapages (about 225 KB measured, with 64 partitions).
pub const BYTES_PER_PARTITION: u64 = 240 << 10;
/// Room left free on top of the estimate: statistics, free-space maps, the
/// bytes a seed's own WAL briefly needs beyond max_wal_size.
pub const MARGIN: f64 = 0.10;

/// The bytes a seed of `params` into `modes` leaves in the database (tables
/// and indexes, no WAL).
pub fn estimate(params: &Params, modes: &[Mode], partitions: u32) -> u64 {
    let org_days = params.orgs * u64::from(params.days);
    let mut bytes = params.orgs * SHARED_BYTES_PER_ORG;
    for &m in modes {
        let per = BYTES_PER_ORG_DAY
            .iter()
            .find(|(mode, _)| *mode == m)
            .map(|(_, b)| *b)
            .expect("every mode is measured");
        bytes += org_days * per + FIXED_BYTES_PER_MODE;
        if m == Mode::Partitioned {
            bytes += u64::from(partitions) * BYTES_PER_PARTITION;
        }
    }
    bytes
}

/// The most organizations (at `params.days`) whose seed needs at most
/// `bytes`, WAL and margin included. [`estimate`] is linear in the
/// organizations: its value at none and at one give the fixed part and the
/// part per organization.
pub fn orgs_that_fit(
    bytes: u64,
    wal: u64,
    params: &Params,
    modes: &[Mode],
    partitions: u32,
) -> u64 {
    let at = |orgs: u64| {
        estimate(
            &Params {
                orgs,
                ..params.clone()
            },
            modes,
            partitions,
        )
    };
    let (fixed, per_org) = (at(0) + wal, at(1) - at(0));
    let room = (bytes as f64 / (1.0 + MARGIN)) as u64;
    room.saturating_sub(fixed) / per_org.max(1)
}

/// One server the seed writes to (the primary, or a replica that replays it).
#[derive(Debug, Clone)]
pub struct Landing {
    /// "primary" or "replica".
    pub role: &'static str,
    /// Its data directory, as the server reports it.
    pub data_directory: PathBuf,
    /// Its max_wal_size: the WAL it may keep besides the data.
    pub wal_bytes: u64,
    /// What the seed will drop there first (the tables it replaces).
    pub freed_bytes: u64,
}

/// Where a seed lands, asked of a server: its data directory, its
/// max_wal_size, and the size of the finance tables the seed replaces.
pub async fn landing(client: &impl GenericClient, role: &'static str) -> Result<Landing> {
    let row = client
        .query_one(
            &format!(
                "SELECT current_setting('data_directory'), \
                        pg_size_bytes(current_setting('max_wal_size')), \
                        coalesce((SELECT sum(pg_total_relation_size(c.oid))::int8 FROM pg_class c \
                                  WHERE {}), 0)",
                crate::schema::FILLED_TABLES
            ),
            &[],
        )
        .await
        .db(|| format!("asking the {role} where its data lives (data_directory needs a superuser or pg_read_all_settings)"))?;
    Ok(Landing {
        role,
        data_directory: PathBuf::from(row.get::<_, String>(0)),
        wal_bytes: row.get::<_, i64>(1).max(0) as u64,
        freed_bytes: row.get::<_, i64>(2).max(0) as u64,
    })
}

/// Free bytes and the device of the file system that holds `path`, or None
/// when `path` is not on this machine.
pub fn free_space(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).ok()?.dev();
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `s` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some((s.f_bavail as u64 * s.f_frsize as u64, dev))
}

/// What one file system must hold, and has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fit {
    /// The servers whose data directories are on it.
    pub roles: Vec<&'static str>,
    pub path: PathBuf,
    pub need: u64,
    pub free: u64,
}

/// Judge the landings against their file systems: servers on one file
/// system (a lab's primary and replica) add up. A data directory that is
/// not on this machine cannot be judged, and is refused unless the user
/// said to skip the check.
pub fn judge(
    landings: &[Landing],
    data_bytes: u64,
    free: impl Fn(&Path) -> Option<(u64, u64)>,
) -> std::result::Result<Vec<Fit>, String> {
    let mut fits: Vec<(u64, Fit)> = Vec::new();
    for l in landings {
        let Some((avail, dev)) = free(&l.data_directory) else {
            return Err(format!(
                "the {}'s data directory {} is not on this machine, so its free space is unknown",
                l.role,
                l.data_directory.display()
            ));
        };
        let need = ((data_bytes + l.wal_bytes) as f64 * (1.0 + MARGIN)) as u64;
        match fits.iter_mut().find(|(d, _)| *d == dev) {
            Some((_, f)) => {
                f.roles.push(l.role);
                f.need += need;
                f.free += l.freed_bytes;
            }
            None => fits.push((
                dev,
                Fit {
                    roles: vec![l.role],
                    path: l.data_directory.clone(),
                    need,
                    // What the seed drops first is free again when it loads.
                    free: avail + l.freed_bytes,
                },
            )),
        }
    }
    Ok(fits.into_iter().map(|(_, f)| f).collect())
}

/// Refuse (exit 4) when a file system would not hold the seed, with what
/// is needed, what is free and what would fit.
pub fn refuse_if_short(
    fits: &[Fit],
    params: &Params,
    wal: u64,
    modes: &[Mode],
    partitions: u32,
) -> Result<()> {
    for f in fits {
        if f.need > f.free {
            let share = f.roles.len() as u64;
            let orgs = orgs_that_fit(f.free / share.max(1), wal, params, modes, partitions);
            let hint = if orgs == 0 {
                "not even one organization fits; free some space".to_string()
            } else {
                format!(
                    "--orgs {orgs} would fit at {} days, or PROFILE=smoke (5,000 organizations)",
                    params.days
                )
            };
            return Err(Error::NoSpace(format!(
                "not enough disk for this seed: {} organizations x {} days in {} need about {} on {} ({}, data and WAL, {:.0}% margin), and {} is free there; {hint}. Nothing was written. (--no-space-check skips this check)",
                crate::progress::thousands(params.orgs),
                params.days,
                modes.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(" and "),
                gib(f.need),
                f.path.display(),
                f.roles.join(" and "),
                MARGIN * 100.0,
                gib(f.free),
            )));
        }
    }
    Ok(())
}

pub fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::day::Day;

    fn params(orgs: u64, days: u32) -> Params {
        Params {
            orgs,
            days,
            seed: 1,
            end_date: Day::from_ymd(2026, 10, 31),
        }
    }

    fn landing(role: &'static str, dir: &str) -> Landing {
        Landing {
            role,
            data_directory: dir.into(),
            wal_bytes: 1 << 30,
            freed_bytes: 0,
        }
    }

    const BOTH: [Mode; 2] = [Mode::Legacy, Mode::Partitioned];

    /// The full estate measured 23,525,424,487 bytes (pg_database_size)
    /// after a seed: the estimate may be above it, by little.
    #[test]
    fn the_full_estate_is_estimated_at_or_just_above_what_it_measured() {
        let b = estimate(&params(1_000_000, 10), &BOTH, 64) as f64;
        let measured = 23_525_424_487.0;
        assert!((1.0..1.05).contains(&(b / measured)), "{}", gib(b as u64));
    }

    #[test]
    fn a_primary_and_replica_on_one_file_system_add_up() {
        let l = [landing("primary", "/a"), landing("replica", "/b")];
        let same = judge(&l, 10 << 30, |_| Some((100 << 30, 7))).unwrap();
        assert_eq!(same.len(), 1);
        assert_eq!(same[0].roles, ["primary", "replica"]);
        assert_eq!(same[0].need, 2 * (((11u64 << 30) as f64 * 1.1) as u64));
        let apart = judge(&l, 10 << 30, |p| {
            Some((
                100 << 30,
                p.as_os_str().len() as u64 + (p == Path::new("/b")) as u64,
            ))
        })
        .unwrap();
        assert_eq!(apart.len(), 2);
    }

    #[test]
    fn a_seed_that_does_not_fit_is_refused_with_the_need_the_free_space_and_what_fits() {
        let p = params(1_000_000, 10);
        let data = estimate(&p, &BOTH, 64);
        let l = [landing("primary", "/a"), landing("replica", "/b")];
        let fits = judge(&l, data, |_| Some((40 << 30, 1))).unwrap();
        let err = refuse_if_short(&fits, &p, 1 << 30, &BOTH, 64).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        let msg = err.to_string();
        assert!(
            msg.contains("40.0 GiB is free") && msg.contains("primary and replica"),
            "{msg}"
        );
        // What it proposes fits the same disk.
        let orgs: u64 = msg
            .split("--orgs ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(orgs > 500_000 && orgs < 1_000_000, "{orgs}");
        let smaller = params(orgs, 10);
        let fits = judge(&l, estimate(&smaller, &BOTH, 64), |_| Some((40 << 30, 1))).unwrap();
        refuse_if_short(&fits, &smaller, 1 << 30, &BOTH, 64).unwrap();
        // Tables the seed drops first count as free.
        let mut l2 = l.clone();
        for x in &mut l2 {
            x.freed_bytes = 20 << 30;
        }
        let fits = judge(&l2, data, |_| Some((40 << 30, 1))).unwrap();
        refuse_if_short(&fits, &p, 1 << 30, &BOTH, 64).unwrap();
    }

    #[test]
    fn a_data_directory_elsewhere_is_unknown_not_a_pass() {
        let err = judge(&[landing("replica", "/x")], 1, |_| None).unwrap_err();
        assert!(err.contains("replica") && err.contains("unknown"), "{err}");
    }
}
