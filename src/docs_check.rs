//! The README and the book (`docs/src`) checked as a reader uses them:
//! every relative link resolves (to a file, and for `#anchor` to one of its
//! headings), every page of the book is in its SUMMARY.md, and every
//! `rehearse` command a code block shows parses with rehearse's own
//! arguments. `bash ci/test.sh` runs it with the other tests.

use std::path::{Path, PathBuf};

use clap::Parser;

use crate::cli::Cli;

/// A heading's anchor as mdBook (and GitHub) make it: lower case, spaces
/// to '-', letters, digits, '-' and '_' kept, the rest dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Each line with whether it lies in a fenced code block.
fn lines(text: &str) -> Vec<(usize, &str, bool)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        out.push((i + 1, l, fenced));
    }
    out
}

fn anchors(text: &str) -> Vec<String> {
    lines(text)
        .into_iter()
        .filter(|(_, l, fenced)| !fenced && l.starts_with('#'))
        .map(|(_, l, _)| slug(l.trim_start_matches('#')))
        .collect()
}

/// Split a shell command line into words: quotes kept together, a
/// trailing `# comment` dropped.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, '#') if cur.is_empty() && !any => break,
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() || any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if !cur.is_empty() || any {
        out.push(cur);
    }
    out
}

/// What is wrong with one Markdown file at `path` (whose text is `text`).
fn problems(path: &Path, text: &str) -> Vec<String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (n, line, fenced) in lines(text) {
        let at = format!("{}:{n}", path.display());
        if fenced {
            // Commands: each `rehearse ...` of a line, `&&` and `|` ending one.
            for part in line.split("&&").flat_map(|p| p.split(" | ")) {
                let p = part.trim().trim_start_matches("$ ");
                if !p.starts_with("rehearse ") {
                    continue;
                }
                // The shell variables the book's loops use, as a shell would fill them.
                let filled = p.replace("$i", "0").replace("$T", "2026-12-01T21:00:00Z");
                if filled.contains('$') {
                    out.push(format!(
                        "{at}: `{p}` uses a shell variable the check does not know"
                    ));
                    continue;
                }
                let mut argv = words(&filled);
                // A command put in the background, or followed by another, ends there.
                if let Some(end) = argv.iter().position(|w| w == "&" || w == ";") {
                    argv.truncate(end);
                }
                match Cli::try_parse_from(&argv) {
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            clap::error::ErrorKind::DisplayHelp
                                | clap::error::ErrorKind::DisplayVersion
                        ) => {}
                    Err(e) => out.push(format!(
                        "{at}: `{p}` does not parse: {}",
                        e.to_string().lines().next().unwrap_or("")
                    )),
                }
            }
            continue;
        }
        // Links: [text](target), outside inline code.
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            let target = &after[..end];
            rest = &after[end..];
            let before_ticks = line[..line.len() - rest.len()].matches('`').count();
            if before_ticks % 2 == 1
                || target.contains("://")
                || target.starts_with("mailto:")
                || target.is_empty()
            {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target, None),
            };
            let resolved: PathBuf = if file.is_empty() {
                path.to_path_buf()
            } else {
                dir.join(file)
            };
            if !file.is_empty() && !resolved.exists() {
                out.push(format!(
                    "{at}: link to {target}: {} does not exist",
                    resolved.display()
                ));
                continue;
            }
            if let Some(a) = anchor {
                let body = if file.is_empty() {
                    text.to_string()
                } else {
                    std::fs::read_to_string(&resolved).unwrap_or_default()
                };
                if !anchors(&body).iter().any(|h| h == a) {
                    out.push(format!("{at}: link to {target}: no heading #{a} there"));
                }
            }
        }
    }
    out
}

#[test]
fn the_readme_and_the_book_link_to_what_exists_and_show_commands_that_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let book = root.join("docs/src");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&book)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    let summary = std::fs::read_to_string(book.join("SUMMARY.md")).unwrap();
    let mut found = Vec::new();
    for p in &pages {
        let name = p.file_name().unwrap().to_string_lossy();
        if name != "SUMMARY.md" && !summary.contains(&format!("]({name})")) {
            found.push(format!("{}: not in SUMMARY.md", p.display()));
        }
    }
    let mut commands = 0;
    for p in std::iter::once(root.join("README.md")).chain(pages) {
        let text = std::fs::read_to_string(&p).unwrap();
        commands += lines(&text)
            .iter()
            .filter(|(_, l, f)| *f && l.trim_start().starts_with("rehearse "))
            .count();
        found.extend(problems(&p, &text));
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
    assert!(commands >= 20, "only {commands} commands in code blocks");
}

#[test]
fn the_check_finds_a_broken_link_a_missing_heading_and_a_wrong_flag() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = root.join("docs/src/x.md");
    let text = "# Title\n\nSee [a](nope.md), [b](#title), [c](#nowhere) and `[d](ignored.md)`.\n\n\
                ```sh\nrehearse lab up --port-base 26000   # a comment\nrehearse run a.toml --bugdet 3\n\
                rehearse query dashboard --org '4 2'\n```\n";
    let p_ = problems(&p, text);
    assert_eq!(p_.len(), 4, "{p_:#?}");
    // The same page without its faults passes.
    let fixed = text
        .replace("[a](nope.md)", "[a](budgets.md)")
        .replace("#nowhere", "#title")
        .replace("--bugdet 3", "--duration 3s")
        .replace("'4 2'", "42");
    assert_eq!(problems(&p, &fixed), Vec::<String>::new());
    assert!(p_[0].contains("nope.md") && p_[0].contains("does not exist"));
    assert!(p_[1].contains("#nowhere"));
    assert!(p_[2].contains("--bugdet"));
    assert!(p_[3].contains("'4 2'"), "a quoted word stays one: {p_:?}");
    assert_eq!(
        words("rehearse a 'b c' \"\" # x"),
        ["rehearse", "a", "b c", ""]
    );
    assert_eq!(slug("Where the estate is"), "where-the-estate-is");
    assert_eq!(
        slug("User journeys over HTTP: `serve`"),
        "user-journeys-over-http-serve"
    );
}
