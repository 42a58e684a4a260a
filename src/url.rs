//! Connection strings as text: the one redaction of their secrets, the
//! percent-decoding of URL parts, and the same URL naming another database.
//! Every module that prints, opens or rewrites a connection string uses
//! these; none of them needs to know where the estate is.

/// Keys whose values are secrets, in query strings and key=value strings.
const SECRET_KEYS: [&str; 3] = ["password", "sslpassword", "pgpassword"];

fn is_secret(key: &str) -> bool {
    SECRET_KEYS
        .iter()
        .any(|k| key.trim().eq_ignore_ascii_case(k))
}

/// The one redaction of connection strings: every secret becomes `***`.
/// Covers URL userinfo (`scheme://user:pw@host`), query parameters
/// (`?password=..&sslpassword=..`), libpq key=value strings with quoted or
/// unquoted values (`password='a b'`), and `PGPASSWORD=..`.
pub fn redact(url: &str) -> String {
    match url.find("://") {
        Some(scheme_end) => redact_url(url, scheme_end),
        None => redact_pairs(url),
    }
}

fn redact_url(url: &str, scheme_end: usize) -> String {
    let (head, rest) = url.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.find(':') {
                Some(colon) => format!("{}:***{host}", &userinfo[..colon]),
                None => authority.to_string(),
            }
        }
        None => authority.to_string(),
    };
    let path = match path.split_once('?') {
        Some((p, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, format!("#{f}")),
                None => (query, String::new()),
            };
            let query = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if is_secret(&percent_decode(k)) => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect::<Vec<_>>()
                .join("&");
            format!("{p}?{query}{fragment}")
        }
        None => path.to_string(),
    };
    format!("{head}{authority}{path}")
}

/// Percent-decoding of a URL part; a `%` not followed by two hex digits is
/// kept, and bytes that are not UTF-8 become U+FFFD (the percent-encoding
/// crate, already built for tokio-postgres and redis).
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A libpq key=value string: `key = value` pairs, a value either unquoted
/// (up to white space) or single-quoted with `\'` and `\\` escapes. Text
/// that is not a pair is kept as it is.
fn redact_pairs(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        // A key: a run of word characters followed by optional spaces and '='.
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let key = &s[start..i];
        let mut j = i;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        if key.is_empty() || j >= b.len() || b[j] != b'=' {
            // Not a pair here: copy one character (or the word) and go on.
            if i == start {
                let ch = s[i..].chars().next().expect("not at the end");
                out.push(ch);
                i += ch.len_utf8();
            } else {
                out.push_str(key);
            }
            continue;
        }
        j += 1;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        // The value.
        let vstart = j;
        if j < b.len() && b[j] == b'\'' {
            j += 1;
            while j < b.len() && b[j] != b'\'' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            j = (j + 1).min(b.len());
        } else {
            while j < b.len() && !b[j].is_ascii_whitespace() {
                j += 1;
            }
        }
        out.push_str(&s[start..vstart]);
        if is_secret(key) {
            out.push_str("***");
        } else {
            out.push_str(&s[vstart..j]);
        }
        i = j;
    }
    out
}

/// The same URL naming another database (query parameters kept).
pub fn with_database(url: &str, db: &str) -> String {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let path_start = rest.find('/').map(|p| i + 3 + p).unwrap_or(url.len());
            let query = url[path_start..]
                .find('?')
                .map(|q| &url[path_start + q..])
                .unwrap_or("");
            format!("{}/{db}{query}", &url[..path_start])
        }
        None => format!("{url} dbname={db}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_keeps_what_is_not_an_escape() {
        assert_eq!(percent_decode("%41b%2Fc"), "Ab/c");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%E2%82%AC%FF"), "\u{20ac}\u{fffd}");
        assert_eq!(percent_decode("p%40ss"), "p@ss");
    }

    #[test]
    fn passwords_never_survive_redaction() {
        assert_eq!(
            redact("postgresql://app:s3cret@db.internal:5432/fin"),
            "postgresql://app:***@db.internal:5432/fin"
        );
        assert_eq!(
            redact("postgresql://db/fin?user=app&password=s3cret&sslmode=require"),
            "postgresql://db/fin?user=app&password=***&sslmode=require"
        );
        assert_eq!(
            redact("host=db user=app password=s3cret"),
            "host=db user=app password=***"
        );
        assert_eq!(
            redact("redis://:pw@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(redact("postgresql://app@db/fin"), "postgresql://app@db/fin");
    }

    #[test]
    fn every_place_a_password_can_ride_is_redacted() {
        let secret = "Zq9-s3cret";
        for (input, want) in [
            // Userinfo and a query parameter in the same URL.
            (
                format!("postgresql://app:{secret}@db/fin?sslpassword={secret}&sslmode=require"),
                "postgresql://app:***@db/fin?sslpassword=***&sslmode=require".to_string(),
            ),
            (
                format!("postgres://db/fin?PassWord={secret}#x"),
                "postgres://db/fin?PassWord=***#x".to_string(),
            ),
            (
                format!("postgresql://db/fin?pass%77ord={secret}"),
                "postgresql://db/fin?pass%77ord=***".to_string(),
            ),
            // Quoted values with spaces and escapes, and spaces around '='.
            (
                format!("host=db password = '{secret} with \\' spaces' user=app"),
                "host=db password = *** user=app".to_string(),
            ),
            (
                format!("host=db sslpassword='{secret}' dbname=fin"),
                "host=db sslpassword=*** dbname=fin".to_string(),
            ),
            (
                format!("PGPASSWORD={secret} pgbench -h db"),
                "PGPASSWORD=*** pgbench -h db".to_string(),
            ),
        ] {
            let got = redact(&input);
            assert_eq!(got, want, "{input}");
            assert!(!got.contains("s3cret"), "{got}");
        }
        // Text that is not a secret is kept, user names included.
        assert_eq!(
            redact("host=db user=app dbname='my db'"),
            "host=db user=app dbname='my db'"
        );
    }
}
