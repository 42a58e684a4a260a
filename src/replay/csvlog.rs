//! PostgreSQL's csvlog (13 and later), read into sessions of statements.
//!
//! What a replay needs from each record: when it was logged, its session,
//! and the message. Statements come as `statement: SQL` (the simple query
//! protocol) or `execute NAME: SQL` (the extended protocol, with the bind
//! parameters in the record's detail as `parameters: $1 = '5', $2 = NULL`),
//! each perhaps after `duration: 1.234 ms  ` when `log_min_duration_statement`
//! logged it at its end: then it started that long before it was logged.
//! Messages must be in English (`lc_messages = C`): the prefixes are
//! matched as words.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::day::Day;
use crate::error::{Error, Result};

/// Fields of a csvlog record up to application_name; 13 adds backend_type,
/// 14 leader_pid and query_id.
const MIN_FIELDS: usize = 23;
const F_TIME: usize = 0;
const F_USER: usize = 1;
const F_DATABASE: usize = 2;
const F_SESSION: usize = 5;
const F_SEVERITY: usize = 11;
const F_MESSAGE: usize = 13;
const F_DETAIL: usize = 14;
const F_APPLICATION: usize = 22;

/// One statement as the server received it.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Microseconds from the trace's first statement to this one's start.
    pub at_us: i64,
    /// When the server logged it (log_time), µs since the epoch.
    pub logged_us: i64,
    pub sql: String,
    /// Bind parameters as logged (text), None for NULL.
    pub params: Vec<Option<String>>,
    /// Sent by the simple query protocol (several statements may share it).
    pub simple: bool,
    /// Where it was read: file and line, for what the replay reports.
    pub file: usize,
    pub line: u64,
}

/// One connection's statements, in the order it sent them.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub id: String,
    pub user: String,
    pub database: String,
    pub application: String,
    pub statements: Vec<Statement>,
}

/// What the log held besides replayable statements.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Records read.
    pub records: u64,
    /// Statements kept for the replay.
    pub statements: u64,
    pub sessions: u64,
    /// COPY statements: their data goes by the COPY sub-protocol, which the
    /// log does not hold.
    pub copy: u64,
    /// Fast-path function calls (large objects): not in the log as SQL.
    pub fastpath: u64,
    /// Statements of sessions the filter left out.
    pub filtered: u64,
    /// Records that were neither statements nor connections (errors,
    /// checkpoints, `parse` and `bind` steps, durations alone).
    pub other: u64,
    /// Statements that shared their logged millisecond with others, and were
    /// spread evenly across it (see [`spread_milliseconds`]).
    pub spread: u64,
}

/// Statements of one or more csvlog files, grouped by session.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub files: Vec<PathBuf>,
    pub sessions: Vec<Session>,
    /// Microseconds from the first statement's start to the last one's.
    pub span_us: i64,
    pub counts: Counts,
}

/// Which sessions to keep: those of this application_name, when given.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub application: Option<String>,
}

impl Trace {
    pub fn statements(&self) -> impl Iterator<Item = (&Session, &Statement)> {
        self.sessions
            .iter()
            .flat_map(|s| s.statements.iter().map(move |x| (s, x)))
    }

    pub fn where_(&self, st: &Statement) -> String {
        format!("{}:{}", self.files[st.file].display(), st.line)
    }
}

/// Read csvlog files into a trace. A record that is not a csvlog record
/// (too few fields, a time that does not parse) is an error naming the
/// file and line.
pub fn read(paths: &[PathBuf], filter: &Filter) -> Result<Trace> {
    let mut sessions: HashMap<String, Session> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut counts = Counts::default();
    for (fi, path) in paths.iter().enumerate() {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_path(path)
            .map_err(|e| Error::Usage(format!("cannot read the csvlog {}: {e}", path.display())))?;
        let mut rec = csv::ByteRecord::new();
        loop {
            let line = rdr.position().line();
            match rdr.read_byte_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let at = e.position().map_or(line, |p| p.line());
                    return Err(malformed(path, at, &format!("not CSV: {e}")));
                }
            }
            counts.records += 1;
            let line = rec.position().map_or(line, |p| p.line());
            if rec.len() < MIN_FIELDS {
                return Err(malformed(
                    path,
                    line,
                    &format!(
                        "a record of {} fields; PostgreSQL's csvlog has {MIN_FIELDS} or more (log_destination = csvlog)",
                        rec.len()
                    ),
                ));
            }
            let text = |i: usize| std::str::from_utf8(&rec[i]).unwrap_or("");
            let at = parse_time(&rec[F_TIME]).ok_or_else(|| {
                malformed(
                    path,
                    line,
                    &format!(
                        "log_time {:?} is not a time like 2026-12-06 07:01:02.123 UTC",
                        String::from_utf8_lossy(&rec[F_TIME])
                    ),
                )
            })?;
            if text(F_SEVERITY) != "LOG" {
                counts.other += 1;
                continue;
            }
            let message = text(F_MESSAGE);
            let (duration_us, rest) = split_duration(message);
            let (sql, simple) = if let Some(sql) = rest.strip_prefix("statement: ") {
                (sql, true)
            } else if let Some(x) = rest.strip_prefix("execute ") {
                match x.split_once(": ") {
                    Some((_, sql)) => (sql, false),
                    None => {
                        counts.other += 1;
                        continue;
                    }
                }
            } else {
                if rest.starts_with("fastpath function call") {
                    counts.fastpath += 1;
                } else if !rest.starts_with("connection ") && !rest.starts_with("disconnection") {
                    counts.other += 1;
                }
                let id = text(F_SESSION);
                if !sessions.contains_key(id) && rest.starts_with("connection authorized") {
                    order.push(id.to_string());
                    sessions.insert(id.to_string(), session(&rec));
                }
                continue;
            };
            let application = text(F_APPLICATION);
            if filter
                .application
                .as_deref()
                .is_some_and(|a| a != application)
            {
                counts.filtered += 1;
                continue;
            }
            if is_copy(sql) {
                counts.copy += 1;
                continue;
            }
            let params = if simple {
                Vec::new()
            } else {
                parse_parameters(text(F_DETAIL))
                    .map_err(|why| malformed(path, line, &format!("its parameters: {why}")))?
            };
            let start = at - duration_us.unwrap_or(0);
            let id = text(F_SESSION);
            let s = sessions.entry(id.to_string()).or_insert_with(|| {
                order.push(id.to_string());
                session(&rec)
            });
            s.statements.push(Statement {
                at_us: start,
                logged_us: at,
                sql: sql.to_string(),
                params,
                simple,
                file: fi,
                line,
            });
            counts.statements += 1;
        }
    }
    let mut out: Vec<Session> = order
        .into_iter()
        .filter_map(|id| sessions.remove(&id))
        .filter(|s| !s.statements.is_empty())
        .collect();
    counts.spread = spread_milliseconds(&mut out);
    let starts = || {
        out.iter()
            .flat_map(|s| s.statements.iter().map(|st| st.at_us))
    };
    let first = starts().min().unwrap_or(0);
    let last = starts().max().unwrap_or(0);
    for s in &mut out {
        for st in &mut s.statements {
            st.at_us -= first;
        }
        // A session's statements are in the log's order; a duration-logged
        // statement started before it was logged, so keep them in the order
        // the session sent them (by start).
        s.statements.sort_by_key(|st| st.at_us);
    }
    counts.sessions = out.len() as u64;
    Ok(Trace {
        files: paths.to_vec(),
        sessions: out,
        span_us: if last >= first { last - first } else { 0 },
        counts,
    })
}

/// PostgreSQL writes log_time to the millisecond, so a busy server logs
/// many statements with one time: at 20,000 statements/s, 20 a millisecond.
/// Replayed as logged they would all be released at once, a burst that is
/// the log's rounding, not the workload. When every statement's log_time is
/// a whole millisecond, the `n` statements logged in one millisecond are
/// spread evenly across it, in the order the log holds them: the `j`th at
/// `j * 1000 / n` µs. Each keeps its logged duration, if any, before that.
/// A log with finer times is left as it is. Returns how many statements
/// moved.
fn spread_milliseconds(sessions: &mut [Session]) -> u64 {
    let whole = sessions
        .iter()
        .flat_map(|s| &s.statements)
        .all(|st| st.logged_us.rem_euclid(1000) == 0);
    if !whole {
        return 0;
    }
    // Every statement by its logged time, then its place in the log.
    let mut all: Vec<(i64, usize, u64, u32, u32)> = sessions
        .iter()
        .enumerate()
        .flat_map(|(si, s)| {
            s.statements
                .iter()
                .enumerate()
                .map(move |(k, st)| (st.logged_us, st.file, st.line, si as u32, k as u32))
        })
        .collect();
    all.sort_unstable();
    let mut moved = 0;
    for group in all.chunk_by(|a, b| a.0 == b.0) {
        let n = group.len() as i64;
        for (j, &(.., si, k)) in group.iter().enumerate() {
            let by = j as i64 * 1000 / n;
            sessions[si as usize].statements[k as usize].at_us += by;
            moved += (by > 0) as u64;
        }
    }
    moved
}

fn session(rec: &csv::ByteRecord) -> Session {
    let text = |i: usize| String::from_utf8_lossy(&rec[i]).into_owned();
    Session {
        id: text(F_SESSION),
        user: text(F_USER),
        database: text(F_DATABASE),
        application: text(F_APPLICATION),
        statements: Vec::new(),
    }
}

fn malformed(path: &Path, line: u64, why: &str) -> Error {
    Error::Usage(format!(
        "{}:{line}: not a PostgreSQL csvlog record: {why}",
        path.display()
    ))
}

/// `duration: 1.234 ms  REST` into (1234 µs, REST).
fn split_duration(message: &str) -> (Option<i64>, &str) {
    let Some(x) = message.strip_prefix("duration: ") else {
        return (None, message);
    };
    let Some((ms, rest)) = x.split_once(" ms") else {
        return (None, message);
    };
    let us = ms
        .trim()
        .parse::<f64>()
        .ok()
        .map(|v| (v * 1000.0).round() as i64);
    (us, rest.trim_start())
}

fn is_copy(sql: &str) -> bool {
    let t = sql.trim_start();
    t.len() >= 5 && t[..5].eq_ignore_ascii_case("copy ")
}

/// "2026-12-06 07:01:02.123 UTC" as microseconds since 1970 in the log's
/// zone (the zone's name is not read: offsets within one log are what a
/// replay needs).
pub fn parse_time(b: &[u8]) -> Option<i64> {
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as i64;
        }
        Some(v)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut us = 0i64;
    if b.len() > 19 && b[19] == b'.' {
        let mut scale = 100_000;
        for &c in b[20..].iter().take_while(|c| c.is_ascii_digit()) {
            us += (c - b'0') as i64 * scale;
            scale /= 10;
        }
    }
    let days = Day::from_ymd(y as i32, mo as u32, d as u32).0 as i64 + 10_957;
    Some(((days * 24 + h) * 60 + mi) * 60_000_000 + s * 1_000_000 + us)
}

/// The detail `parameters: $1 = '5', $2 = NULL, $3 = 'it''s'` as values.
pub fn parse_parameters(detail: &str) -> std::result::Result<Vec<Option<String>>, String> {
    let Some(mut rest) = detail.strip_prefix("parameters: ") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    loop {
        let n = out.len() + 1;
        let head = format!("${n} = ");
        rest = rest
            .strip_prefix(head.as_str())
            .ok_or_else(|| format!("expected {head:?} at {:?}", clip(rest)))?;
        if let Some(r) = rest.strip_prefix("NULL") {
            out.push(None);
            rest = r;
        } else if let Some(r) = rest.strip_prefix('\'') {
            let mut v = String::new();
            let mut chars = r.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if r[i + 1..].starts_with('\'') {
                        v.push('\'');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    v.push(c);
                }
            }
            let end = end.ok_or_else(|| format!("${n}'s value has no closing quote"))?;
            out.push(Some(v));
            rest = &r[end..];
        } else {
            return Err(format!(
                "${n} is neither NULL nor quoted at {:?}",
                clip(rest)
            ));
        }
        match rest.strip_prefix(", ") {
            Some(r) => rest = r,
            None if rest.is_empty() => return Ok(out),
            None => return Err(format!("unexpected {:?} after ${n}", clip(rest))),
        }
    }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_read_with_nulls_and_doubled_quotes() {
        assert_eq!(
            parse_parameters("parameters: $1 = '5', $2 = NULL, $3 = 'it''s, $4 = x'").unwrap(),
            vec![Some("5".into()), None, Some("it's, $4 = x".into())]
        );
        assert_eq!(parse_parameters("").unwrap(), Vec::<Option<String>>::new());
        assert!(parse_parameters("parameters: $1 = '5").is_err());
        assert!(parse_parameters("parameters: $2 = '5'").is_err());
    }

    #[test]
    fn log_times_parse_to_microseconds() {
        let a = parse_time(b"2026-12-06 07:01:02.123 UTC").unwrap();
        let b = parse_time(b"2026-12-06 07:01:03.000 UTC").unwrap();
        assert_eq!(b - a, 877_000);
        let midnight = parse_time(b"1970-01-02 00:00:00 UTC").unwrap();
        assert_eq!(midnight, 86_400_000_000);
        assert!(parse_time(b"2026-13-06 07:01:02.123 UTC").is_none());
        assert!(parse_time(b"yesterday").is_none());
    }

    fn record(time: &str, session: &str, message: &str, detail: &str) -> String {
        // log_time,user,db,pid,from,session,line,tag,start,vxid,xid,sev,state,message,detail,hint,iq,iqp,context,query,qp,location,app,backend
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        format!(
            "{time},postgres,rehearse,42,127.0.0.1:5000,{session},1,SELECT,{time},3/1,0,LOG,00000,{},{},,,,,,,,{},client backend\n",
            q(message),
            q(detail),
            q("app")
        )
    }

    #[test]
    fn statements_keep_their_session_order_and_start_before_their_duration() {
        let dir = std::env::temp_dir().join(format!("csvlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.csv");
        let text = [
            record(
                "2026-12-06 07:00:00.000 UTC",
                "s1",
                "connection authorized: user=postgres",
                "",
            ),
            record(
                "2026-12-06 07:00:00.100 UTC",
                "s1",
                "statement: SELECT 1",
                "",
            ),
            record(
                "2026-12-06 07:00:00.300 UTC",
                "s2",
                "duration: 50.000 ms  execute s0: SELECT $1::int\nFROM x",
                "parameters: $1 = '7'",
            ),
            record(
                "2026-12-06 07:00:00.400 UTC",
                "s1",
                "duration: 0.100 ms",
                "",
            ),
            record(
                "2026-12-06 07:00:00.500 UTC",
                "s1",
                "statement: COPY t FROM STDIN",
                "",
            ),
        ]
        .concat();
        std::fs::write(&p, text).unwrap();
        let t = read(std::slice::from_ref(&p), &Filter::default()).unwrap();
        assert_eq!(t.sessions.len(), 2);
        assert_eq!(t.sessions[0].statements[0].sql, "SELECT 1");
        assert_eq!(t.sessions[0].statements[0].at_us, 0);
        let s2 = &t.sessions[1].statements[0];
        assert_eq!((s2.at_us, s2.simple), (150_000, false));
        assert_eq!(s2.sql, "SELECT $1::int\nFROM x");
        assert_eq!(s2.params, vec![Some("7".to_string())]);
        assert_eq!(
            (t.counts.copy, t.counts.statements, t.counts.other),
            (1, 2, 1)
        );
        assert_eq!(t.span_us, 150_000);

        let bad = dir.join("bad.csv");
        std::fs::write(
            &bad,
            format!(
                "{}a,b,c\n",
                record(
                    "2026-12-06 07:00:00.100 UTC",
                    "s1",
                    "statement: SELECT 1",
                    ""
                )
            ),
        )
        .unwrap();
        let e = read(std::slice::from_ref(&bad), &Filter::default()).unwrap_err();
        assert!(
            e.to_string().contains("bad.csv:2:") && e.to_string().contains("3 fields"),
            "{e}"
        );
        assert_eq!(e.exit_code(), crate::exit::USAGE);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn statements_logged_in_one_millisecond_are_spread_across_it_in_log_order() {
        let dir = std::env::temp_dir().join(format!("csvlog-ms-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let read_times = |name: &str, times: &[(&str, &str)]| {
            let p = dir.join(name);
            let text: String = times
                .iter()
                .map(|(t, sess)| record(t, sess, "statement: SELECT 1", ""))
                .collect();
            std::fs::write(&p, text).unwrap();
            let t = read(std::slice::from_ref(&p), &Filter::default()).unwrap();
            let mut at: Vec<(String, i64)> = t
                .statements()
                .map(|(s, st)| (s.id.clone(), st.at_us))
                .collect();
            at.sort_by_key(|x| x.1);
            (at, t.counts.spread, t.span_us)
        };
        // Three sessions, four statements in the first millisecond, one in
        // the next: 0, 250, 500, 750 µs in the log's order, then 1,000.
        let (at, spread, span) = read_times(
            "ms.csv",
            &[
                ("2026-12-06 07:00:00.001 UTC", "s1"),
                ("2026-12-06 07:00:00.001 UTC", "s2"),
                ("2026-12-06 07:00:00.001 UTC", "s3"),
                ("2026-12-06 07:00:00.001 UTC", "s1"),
                ("2026-12-06 07:00:00.002 UTC", "s2"),
            ],
        );
        let want = [
            ("s1", 0),
            ("s2", 250),
            ("s3", 500),
            ("s1", 750),
            ("s2", 1000),
        ];
        let want: Vec<(String, i64)> = want.iter().map(|(s, t)| (s.to_string(), *t)).collect();
        assert_eq!((at, spread, span), (want, 3, 1000));
        // A log with finer times is read as it is.
        let (at, spread, _) = read_times(
            "us.csv",
            &[
                ("2026-12-06 07:00:00.001 UTC", "s1"),
                ("2026-12-06 07:00:00.001 UTC", "s2"),
                ("2026-12-06 07:00:00.001500 UTC", "s3"),
            ],
        );
        assert_eq!(at.iter().map(|x| x.1).collect::<Vec<_>>(), [0, 0, 500]);
        assert_eq!(spread, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
