//! The rollout's commands: `rehearse rollout status`, `pilot`, `widen` and
//! `rollback`. Each change is idempotent, refused unless the cutover has
//! both sides complete and mirrored with a passing verify (the gate of
//! `cutover switch`), supports `--dry-run`, and is recorded in the cutover's
//! step log under the cutover lock.

use std::time::Instant;

use serde::Serialize;
use tokio_postgres::{Client, GenericClient};

use super::{percent_text, Rollout, RolloutView, ALL};
use crate::cutover::{self, CutoverPhase, Gate, Step, StepOptions};
use crate::error::{DbContext, Error, Result};
use crate::estate::Estate;
use crate::repo::routing::{self, FLAG};
use crate::schema::{self, meta, Mode};

/// One change of the rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Add a pilot group (allow list), raise the percentage, keep some
    /// organizations out (deny list), or pick the salt of a new rollout.
    Pilot {
        orgs: Vec<i64>,
        percent: Option<u16>,
        deny: Vec<i64>,
        salt: Option<String>,
    },
    /// Raise the percentage.
    Widen { percent: u16 },
    /// Lower the percentage; to 0 also empties the allow list, so every
    /// organization is on legacy.
    Rollback { to: u16 },
}

impl Change {
    pub fn name(&self) -> &'static str {
        match self {
            Change::Pilot { .. } => "pilot",
            Change::Widen { .. } => "widen",
            Change::Rollback { .. } => "rollback",
        }
    }

    /// The rollout after this change, or why it is refused. Widening only
    /// adds organizations and a rollback only removes them; a new salt
    /// would move every cohort, so it is taken only from nothing.
    pub fn apply_to(&self, from: &Rollout) -> Result<Rollout> {
        let mut to = from.clone();
        let refused = |why: String| Err(Error::Refused(format!("rollout {}: {why}", self.name())));
        match self {
            Change::Pilot {
                orgs,
                percent,
                deny,
                salt,
            } => {
                if let Some(o) = orgs.iter().find(|o| deny.contains(o)) {
                    return Err(Error::Usage(format!(
                        "organization {o} is in both --orgs and --deny"
                    )));
                }
                if orgs.is_empty() && percent.is_none() && deny.is_empty() && salt.is_none() {
                    return Err(Error::Usage(
                        "rollout pilot needs --orgs, --percent, --deny or --salt".into(),
                    ));
                }
                if let Some(s) = salt.as_ref().filter(|s| **s != from.salt) {
                    if from.basis_points > 0 || !from.allow.is_empty() {
                        return refused(format!(
                            "a new salt ({s:?}) draws a new cohort, moving organizations both ways, \
                             and the rollout is at {} with {} allowed; run `rehearse rollout rollback` \
                             to 0 first",
                            from.percent(),
                            from.allow.len()
                        ));
                    }
                    to.salt = s.clone();
                }
                if let Some(p) = *percent {
                    if p < from.basis_points {
                        return refused(format!(
                            "{} is below the current {}; narrowing is `rehearse rollout rollback --to-percent {}`",
                            percent_text(p),
                            from.percent(),
                            percent_text(p).trim_end_matches('%')
                        ));
                    }
                    to.basis_points = p;
                }
                for o in orgs {
                    to.deny.remove(o);
                    to.allow.insert(*o);
                }
                for o in deny {
                    to.allow.remove(o);
                    to.deny.insert(*o);
                }
            }
            Change::Widen { percent } => {
                if *percent < from.basis_points {
                    return refused(format!(
                        "{} is below the current {}; narrowing is `rehearse rollout rollback --to-percent {}`",
                        percent_text(*percent),
                        from.percent(),
                        percent_text(*percent).trim_end_matches('%')
                    ));
                }
                to.basis_points = *percent;
            }
            Change::Rollback { to: p } => {
                if *p > from.basis_points {
                    return refused(format!(
                        "{} is above the current {}; widening is `rehearse rollout widen --percent {}`",
                        percent_text(*p),
                        from.percent(),
                        percent_text(*p).trim_end_matches('%')
                    ));
                }
                to.basis_points = *p;
                if *p == 0 {
                    to.allow.clear();
                }
            }
        }
        Ok(to)
    }
}

/// The rollout recorded in the estate: the flag row (if any) and the
/// rollout (nothing partitioned under the default salt when none is recorded).
pub async fn read(client: &impl GenericClient) -> Result<(Option<bool>, Rollout)> {
    let state = routing::read_flag_state(client).await?;
    let flag = state.as_ref().map(|s| s.enabled);
    let rollout = state.and_then(|s| s.rollout).unwrap_or_else(Rollout::none);
    Ok((flag, rollout))
}

/// Every organization id, in order.
pub async fn organizations(client: &impl GenericClient) -> Result<Vec<i64>> {
    let row = client
        .query_one(
            "SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM organizations",
            &[],
        )
        .await
        .db(|| "listing the organizations".into())?;
    Ok(row.get(0))
}

/// What a change did (or, with `--dry-run` or when already done, would do).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeReport {
    pub change: String,
    /// False when there was nothing to do, or on a dry run.
    pub ran: bool,
    pub dry_run: bool,
    pub from: RolloutView,
    pub to: RolloutView,
    pub organizations: u64,
    pub partitioned_before: u64,
    pub partitioned_after: u64,
    /// FNV-1a (64 bits, hex) of the ids of the organizations partitioned
    /// after the change, in order: two steps with one digest put the very
    /// same organizations on the partitioned side, not merely as many.
    #[serde(default)]
    pub partitioned_digest: String,
    pub moved_to_partitioned: u64,
    pub moved_to_legacy: u64,
    pub seconds: f64,
    pub summary: String,
}

/// The digest of [`ChangeReport::partitioned_digest`]: of the ids in `orgs`
/// (ascending) that `rollout` puts on the partitioned side.
pub fn cohort_digest(orgs: &[i64], rollout: &Rollout) -> String {
    let h = orgs
        .iter()
        .filter(|o| rollout.partitioned(**o))
        .flat_map(|o| o.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{h:016x}")
}

/// How many of `orgs` are partitioned before and after, and how many move.
fn movement(orgs: &[i64], from: &Rollout, to: &Rollout) -> (u64, u64, u64, u64) {
    let (mut before, mut after, mut to_p, mut to_l) = (0, 0, 0, 0);
    for &o in orgs {
        let (b, a) = (from.partitioned(o), to.partitioned(o));
        before += b as u64;
        after += a as u64;
        to_p += (a && !b) as u64;
        to_l += (b && !a) as u64;
    }
    (before, after, to_p, to_l)
}

const UPSERT_ROLLOUT: &str = "\
INSERT INTO feature_flag_rollouts (name, basis_points, salt, allow_orgs, deny_orgs)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (name) DO UPDATE SET basis_points = EXCLUDED.basis_points, salt = EXCLUDED.salt,
    allow_orgs = EXCLUDED.allow_orgs, deny_orgs = EXCLUDED.deny_orgs, updated_at = now()";
/// The flag row must exist for the rollout to be read; it stays false.
const ENSURE_FLAG: &str =
    "INSERT INTO feature_flags (name, enabled) VALUES ($1, false) ON CONFLICT (name) DO NOTHING";

fn dry_run_sql(to: &Rollout) -> String {
    let list = |s: &std::collections::BTreeSet<i64>| {
        let v: Vec<String> = s.iter().map(|o| o.to_string()).collect();
        format!("'{{{}}}'", v.join(","))
    };
    format!(
        "{}\n{};\nINSERT INTO feature_flag_rollouts (name, basis_points, salt, allow_orgs, deny_orgs)\n\
         VALUES ('{FLAG}', {}, '{}', {}, {})\nON CONFLICT (name) DO UPDATE SET ...;",
        schema::ROLLOUT_TABLE.trim_end(),
        ENSURE_FLAG.replace("$1", &format!("'{FLAG}'")),
        to.basis_points,
        to.salt.replace('\'', "''"),
        list(&to.allow),
        list(&to.deny)
    )
}

/// Whether a rollout change may run now: the cutover's gate for
/// [`Step::Rollout`], then the four mirror triggers.
async fn check_gate(client: &Client, state: &cutover::State) -> Result<()> {
    match cutover::gate(state, Step::Rollout)? {
        Gate::Run => {}
        Gate::Done(m) => return Err(Error::Refused(m)),
    }
    let installed = cutover::mirror_installed(client).await?;
    if installed < 4 {
        return Err(Error::Refused(format!(
            "rollout refused: only {installed} of the 4 mirror triggers are in place, so writes of \
             a moved organization would miss the side it left; run `rehearse cutover dual-write` \
             to re-install them"
        )));
    }
    Ok(())
}

/// Run one change.
pub async fn apply(
    client: &mut Client,
    estate: &Estate,
    change: &Change,
    opts: &StepOptions,
) -> Result<ChangeReport> {
    let what = format!("rollout {}", change.name());
    cutover::preflight(client, estate, opts, &what).await?;
    let started = Instant::now();
    let state = cutover::read_state(&*client).await?;
    check_gate(client, &state).await?;
    let (_, from) = read(&*client).await?;
    let to = change.apply_to(&from)?;
    let orgs = organizations(&*client).await?;
    let (before, after, to_p, to_l) = movement(&orgs, &from, &to);
    let mut report = ChangeReport {
        change: change.name().into(),
        ran: false,
        dry_run: opts.dry_run,
        from: RolloutView::from(&from),
        to: RolloutView::from(&to),
        organizations: orgs.len() as u64,
        partitioned_before: before,
        partitioned_after: after,
        partitioned_digest: cohort_digest(&orgs, &to),
        moved_to_partitioned: to_p,
        moved_to_legacy: to_l,
        seconds: 0.0,
        summary: String::new(),
    };
    if to == from {
        report.summary = format!(
            "{what}: nothing to do; the rollout is already at {} ({} allowed, {} denied)",
            to.percent(),
            to.allow.len(),
            to.deny.len()
        );
        return Ok(report);
    }
    report.summary = format!(
        "{} -> {}; {} of {} organizations partitioned (was {}): {} moved to partitioned, {} to legacy; \
         allowed {}, denied {}",
        from.percent(),
        to.percent(),
        after,
        orgs.len(),
        before,
        to_p,
        to_l,
        to.allow.len(),
        to.deny.len()
    );
    if opts.dry_run {
        println!(
            "-- {what} --dry-run: the SQL it would run\n{}",
            dry_run_sql(&to)
        );
        report.summary = format!("dry run: {}", report.summary);
        return Ok(report);
    }
    let tx = client
        .transaction()
        .await
        .db(|| format!("beginning {what}"))?;
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '{}ms'",
        opts.locks.lock_timeout.as_millis().max(1)
    ))
    .await
    .db(|| "setting the lock timeout".into())?;
    let mut state = cutover::lock_state(&tx).await?;
    // The state may have moved between the first look and the lock.
    check_gate(tx.client(), &state).await?;
    tx.batch_execute(schema::ROLLOUT_TABLE)
        .await
        .db(|| "creating the rollout table".into())?;
    tx.execute(ENSURE_FLAG, &[&FLAG])
        .await
        .db(|| format!("making sure the {FLAG} row exists"))?;
    let allow: Vec<i64> = to.allow.iter().copied().collect();
    let deny: Vec<i64> = to.deny.iter().copied().collect();
    tx.execute(
        UPSERT_ROLLOUT,
        &[&FLAG, &(to.basis_points as i32), &to.salt, &allow, &deny],
    )
    .await
    .db(|| format!("recording the rollout of {FLAG}"))?;
    state.logged(
        Step::Rollout,
        started,
        format!("{}: {}", change.name(), report.summary),
    );
    cutover::write_state(&tx, &state).await?;
    tx.commit().await.db(|| format!("committing {what}"))?;
    report.ran = true;
    report.seconds = started.elapsed().as_secs_f64();
    if opts.verbose {
        eprintln!(
            "{what}: done: {} (services re-read it within {} ms)",
            report.summary,
            crate::repo::DEFAULT_FLAG_TTL.as_millis()
        );
    }
    Ok(report)
}

/// Entry rows on one side's tables.
#[derive(Debug, Clone, Serialize)]
pub struct SideRows {
    pub side: Mode,
    /// Revenue and expense entries on these tables.
    pub entries: i64,
    /// Of those, entries of organizations in the partitioned cohort.
    pub partitioned_cohort: i64,
}

/// `rehearse rollout status`.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutStatus {
    pub database: String,
    pub phase: CutoverPhase,
    /// The flag row: None when there is none.
    pub flag: Option<bool>,
    pub rollout: RolloutView,
    pub organizations: u64,
    /// Organizations whose calls use the partitioned tables now.
    pub partitioned_orgs: u64,
    pub legacy_orgs: u64,
    /// Per side whose tables exist.
    pub rows: Vec<SideRows>,
    /// What may come next, or why no change may run now.
    pub next: String,
}

/// `rehearse rollout status`: read only.
pub async fn status(client: &Client) -> Result<RolloutStatus> {
    let info = meta::require_known(client).await?;
    let state = cutover::read_state(client).await?;
    let (flag, rollout) = read(client).await?;
    let orgs = organizations(client).await?;
    let flag_state = routing::FlagState {
        enabled: flag.unwrap_or(false),
        rollout: Some(rollout.clone()),
    };
    let cohort: Vec<i64> = orgs
        .iter()
        .copied()
        .filter(|o| flag_state.mode_for(Some(*o)) == Mode::Partitioned)
        .collect();
    client
        .batch_execute("SET statement_timeout = '120s'")
        .await
        .db(|| "setting a statement timeout".into())?;
    let mut rows = Vec::new();
    for side in [Mode::Legacy, Mode::Partitioned] {
        if !info.modes.contains(&side) {
            continue;
        }
        let t = side.tables();
        let sql = format!(
            "SELECT (SELECT count(*) FROM {r}) + (SELECT count(*) FROM {e}), \
                    (SELECT count(*) FROM {r} WHERE organization_id = ANY($1)) \
                  + (SELECT count(*) FROM {e} WHERE organization_id = ANY($1))",
            r = t.revenue,
            e = t.expense
        );
        let row = client
            .query_one(&sql, &[&cohort])
            .await
            .db(|| format!("counting the entries of the {side} tables"))?;
        rows.push(SideRows {
            side,
            entries: row.get(0),
            partitioned_cohort: row.get(1),
        });
    }
    let next = match cutover::gate(&state, Step::Rollout) {
        Err(e) => format!("no rollout change now: {e}"),
        Ok(_) if flag == Some(true) => "the flag is on: every organization is partitioned".into(),
        Ok(_) if rollout.basis_points == 0 && rollout.allow.is_empty() => {
            "`rehearse rollout pilot --orgs ID,... | --percent P`".into()
        }
        Ok(_) if rollout.basis_points < ALL => {
            "`rehearse rollout widen --percent P`, or `rehearse rollout rollback`".into()
        }
        Ok(_) => "`rehearse cutover switch`: cross-tenant reads (the portfolio) move too".into(),
    };
    Ok(RolloutStatus {
        database: info.database,
        phase: state.phase,
        flag,
        rollout: RolloutView::from(&rollout),
        organizations: orgs.len() as u64,
        partitioned_orgs: cohort.len() as u64,
        legacy_orgs: (orgs.len() - cohort.len()) as u64,
        rows,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(bp: u16) -> Rollout {
        Rollout {
            basis_points: bp,
            ..Rollout::none()
        }
    }

    #[test]
    fn changes_move_only_in_their_direction_and_say_the_way_back() {
        let ten = at(1_000);
        let e = Change::Widen { percent: 500 }.apply_to(&ten).unwrap_err();
        assert!(e.to_string().contains("rollback --to-percent 5"), "{e}");
        let e = Change::Rollback { to: 2_000 }.apply_to(&ten).unwrap_err();
        assert!(e.to_string().contains("widen --percent 20"), "{e}");
        assert_eq!(
            Change::Widen { percent: 5_000 }.apply_to(&ten).unwrap(),
            at(5_000)
        );
        // Idempotent: the same widen again changes nothing.
        assert_eq!(
            Change::Widen { percent: 1_000 }.apply_to(&ten).unwrap(),
            ten
        );
    }

    #[test]
    fn a_rollback_to_zero_empties_the_allow_list_and_a_partial_one_keeps_it() {
        let pilot = Change::Pilot {
            orgs: vec![12, 57],
            percent: Some(1_000),
            deny: vec![3],
            salt: None,
        }
        .apply_to(&Rollout::none())
        .unwrap();
        assert_eq!(pilot.allow.len(), 2);
        let partial = Change::Rollback { to: 100 }.apply_to(&pilot).unwrap();
        assert!(partial.allow.contains(&12) && partial.basis_points == 100);
        let zero = Change::Rollback { to: 0 }.apply_to(&pilot).unwrap();
        assert!(zero.allow.is_empty());
        assert!(
            (1..=10_000).all(|o| !zero.partitioned(o)),
            "0 routes all to legacy"
        );
        assert_eq!(zero.deny, pilot.deny, "the deny list is kept");
    }

    #[test]
    fn the_salt_changes_only_from_nothing() {
        let salted = Change::Pilot {
            orgs: vec![],
            percent: None,
            deny: vec![],
            salt: Some("2027".into()),
        };
        assert_eq!(salted.apply_to(&Rollout::none()).unwrap().salt, "2027");
        let e = salted.apply_to(&at(100)).unwrap_err();
        assert_eq!(e.exit_code(), crate::exit::REFUSED);
        assert!(e.to_string().contains("rollback"), "{e}");
    }

    #[test]
    fn the_cohort_digest_tells_the_same_organizations_from_as_many() {
        let orgs: Vec<i64> = (1..=20_000).collect();
        let fifty = at(5_000);
        assert_eq!(
            cohort_digest(&orgs, &fifty),
            cohort_digest(&orgs, &at(5_000))
        );
        // As many organizations, another salt: other ones, another digest.
        let other = Rollout {
            salt: "2027".into(),
            ..at(5_000)
        };
        assert_ne!(cohort_digest(&orgs, &fifty), cohort_digest(&orgs, &other));
        // One organization swapped for another keeps the count, not the digest.
        let a = Rollout {
            deny: [1].into(),
            allow: [2].into(),
            ..at(5_000)
        };
        let b = Rollout {
            deny: [2].into(),
            allow: [1].into(),
            ..at(5_000)
        };
        let n = |r: &Rollout| orgs.iter().filter(|o| r.partitioned(**o)).count();
        assert_eq!(n(&a), n(&b), "the swap keeps the count");
        assert_ne!(cohort_digest(&orgs, &a), cohort_digest(&orgs, &b));
    }

    #[test]
    fn movement_counts_each_organization_once() {
        let orgs: Vec<i64> = (1..=20_000).collect();
        let (b, a, to_p, to_l) = movement(&orgs, &at(1_000), &at(5_000));
        assert_eq!(to_l, 0);
        assert_eq!(a - b, to_p);
        assert!((a as f64 / 20_000.0 - 0.5).abs() < 0.02, "{a}");
    }
}
