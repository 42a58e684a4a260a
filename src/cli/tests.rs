use clap::CommandFactory;

use super::Cli;

/// Every command's help: its own options first, then the estate flags
/// under their own heading, never interleaved.
#[test]
fn every_help_lists_the_estate_flags_after_the_commands_own() {
    fn walk(cmd: &mut clap::Command, path: &str, seen: &mut usize) {
        let name = format!("{path} {}", cmd.get_name());
        let help = cmd.render_long_help().to_string();
        let estate = help
            .find("Estate (every command):")
            .unwrap_or_else(|| panic!("{name}: no Estate heading:\n{help}"));
        for flag in ["--primary-url", "--replica-url", "--redis-url", "--lab-dir"] {
            let at = help
                .find(flag)
                .unwrap_or_else(|| panic!("{name}: {flag} missing:\n{help}"));
            assert!(at > estate, "{name}: {flag} before the heading:\n{help}");
        }
        if let Some(options) = help.find("Options:") {
            assert!(options < estate, "{name}: Estate before Options:\n{help}");
        }
        *seen += 1;
        for sub in cmd.get_subcommands_mut() {
            if sub.get_name() != "help" {
                walk(sub, &name, seen);
            }
        }
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut seen = 0;
    walk(&mut cmd, "", &mut seen);
    assert!(seen > 30, "{seen} commands");
}

/// The command lines the shipped schedules run (deploy/cron/) parse as
/// rehearse commands: a renamed flag breaks the schedule, and this.
#[test]
fn the_shipped_crontab_and_cronjobs_run_commands_that_parse() {
    use clap::Parser;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/cron");
    let mut lines: Vec<Vec<String>> = Vec::new();
    let crontab = std::fs::read_to_string(dir.join("crontab")).unwrap();
    for l in crontab
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("rehearse job"))
    {
        let cmd = &l[l.find("rehearse job").unwrap()..];
        lines.push(cmd.split_whitespace().map(String::from).collect());
    }
    let yaml = std::fs::read_to_string(dir.join("cronjob.yaml")).unwrap();
    for l in yaml.lines().filter(|l| l.trim_start().starts_with("args:")) {
        let list = &l[l.find('[').unwrap() + 1..l.rfind(']').unwrap()];
        let mut argv = vec!["rehearse".to_string()];
        argv.extend(
            list.split(',')
                .map(|a| a.trim().trim_matches('"').to_string()),
        );
        lines.push(argv);
    }
    assert_eq!(lines.len(), 7, "{lines:?}");
    for argv in &lines {
        if let Err(e) = Cli::try_parse_from(argv) {
            panic!("{argv:?} does not parse: {e}");
        }
    }
    let mut broken = lines[0].clone();
    broken.push("--bugdet".into());
    assert!(Cli::try_parse_from(&broken).is_err());
}

/// The pods of deploy/k8s run command lines that parse as rehearse's, with
/// the values Kubernetes puts in for $(VAR); the shard count agrees with
/// the Job's completions; the ConfigMap holds the scenario verbatim.
#[test]
fn the_kubernetes_job_runs_commands_that_parse() {
    use clap::Parser;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s");
    let expand = |a: &str| {
        a.replace("$(SHARD_INDEX)", "2")
            .replace("$(START_AT)", "2026-12-01T21:00:00Z")
            .replace("$(RUN_ID)", "r1")
    };
    let argvs = |file: &str| -> Vec<Vec<String>> {
        let yaml = std::fs::read_to_string(dir.join(file)).unwrap();
        yaml.lines()
            .filter(|l| l.trim_start().starts_with("args:"))
            .map(|l| {
                let list = &l[l.find('[').unwrap() + 1..l.rfind(']').unwrap()];
                std::iter::once("rehearse".to_string())
                    .chain(list.split(',').map(|a| expand(a.trim().trim_matches('"'))))
                    .collect()
            })
            .collect()
    };
    let shard = argvs("job.yaml");
    let merge = argvs("merge-job.yaml");
    assert_eq!((shard.len(), merge.len()), (1, 2), "{shard:?} {merge:?}");
    for argv in shard.iter().chain(&merge) {
        if let Err(e) = Cli::try_parse_from(argv) {
            panic!("{argv:?} does not parse: {e}");
        }
    }
    let super::Command::Run(run) = Cli::try_parse_from(&shard[0]).unwrap().command else {
        panic!("the shard's pod runs `rehearse run`")
    };
    let job = std::fs::read_to_string(dir.join("job.yaml")).unwrap();
    let n: u32 = job
        .lines()
        .find_map(|l| l.trim().strip_prefix("completions: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(run.shard, Some((2, n)));
    assert!(job.contains(&format!("parallelism: {n}")));
    assert!(run.start_at.is_some());
    // The merge takes every shard.
    assert_eq!(
        merge[0].iter().filter(|a| a.contains("/shard-")).count() as u32,
        n
    );
    // A misspelt flag in the pod's command line would fail.
    let mut broken = shard[0].clone();
    broken.push("--shrad".into());
    assert!(Cli::try_parse_from(&broken).is_err());
    // The ConfigMap's scenario is scenarios/reporting_day.toml.
    let cm = std::fs::read_to_string(dir.join("scenario-configmap.yaml")).unwrap();
    let body: String = cm
        .split_once("reporting_day.toml: |\n")
        .unwrap()
        .1
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    let scenario = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/reporting_day.toml"),
    )
    .unwrap();
    assert_eq!(body.trim_end(), scenario.trim_end());
}
