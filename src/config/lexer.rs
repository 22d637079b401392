//! The lexical layer: turns file bytes into `[SECTION]` headers and `Key Value` lines.
//!
//! Rules (Monkey's rconf syntax, monkey-abi.md §8.3, with two deliberate differences):
//! - `[NAME]` starts a section; `Key Value` lines belong to the last section; the key is the
//!   first whitespace-separated token, the value is the rest of the line, trimmed.
//! - Lines whose first non-blank character is `#` are comments; blank lines and lines made only
//!   of dashes (`---`) are ignored; CRLF line endings are accepted.
//! - A line is at most 4095 bytes (Monkey's limit).
//! - **Indentation is free.** Monkey requires every key line to use the indentation of the first
//!   key line of the file, and silently mis-parses unindented keys (`Key1 v1` becomes `ey1`).
//!   That rule exists only because of how its parser scans; the seed's examples show keys both
//!   unindented and tab-indented, and users copy them. We split on whitespace, so any
//!   indentation (including none, and indented headers) means the same thing.
//! - **Stricter than Monkey:** `#` after a value (`Match /x # note`) is kept in the value by
//!   Monkey, which hides mistakes; here it is an error. `@INCLUDE` is refused with a message.

use super::ConfigError;
use std::path::Path;

/// Longest accepted line, in bytes (without the line ending): far past any real line (a
/// `ServerList` of 10 000 servers is about 200 KiB), a bound only against a file that is not
/// a configuration at all. A longer list continues on further `ServerList` lines.
pub const MAX_LINE: usize = 1 << 20;

/// One meaningful line of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// `[NAME]`: the name as written, and its line.
    Section {
        /// The section name, trimmed, case preserved.
        name: String,
        /// 1-based line number.
        line: usize,
    },
    /// `Key Value`.
    Pair {
        /// The key as written.
        key: String,
        /// The value, trimmed, inner spacing kept.
        value: String,
        /// 1-based line number.
        line: usize,
    },
}

/// Splits `text` into tokens, appending one error per bad line to `errors`.
pub fn tokenize(text: &[u8], file: &Path, errors: &mut Vec<ConfigError>) -> Vec<Token> {
    let mut tokens = Vec::new();
    let err = |line: usize, message: String| ConfigError {
        file: file.to_path_buf(),
        line,
        message,
    };
    for (index, raw) in text.split(|b| *b == b'\n').enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > MAX_LINE {
            errors.push(err(
                line,
                format!(
                    "line is {} bytes long; at most {MAX_LINE} are allowed",
                    raw.len()
                ),
            ));
            continue;
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            errors.push(err(line, "line is not valid UTF-8".to_string()));
            continue;
        };
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.bytes().all(|b| b == b'-') {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            match rest.strip_suffix(']') {
                Some(name) if !name.trim().is_empty() => tokens.push(Token::Section {
                    name: name.trim().to_string(),
                    line,
                }),
                Some(_) => errors.push(err(line, "empty section name `[]`".to_string())),
                None => errors.push(err(
                    line,
                    format!("section header `{trimmed}` must end with `]`"),
                )),
            }
            continue;
        }
        let (key, value) = match trimmed.find(char::is_whitespace) {
            Some(at) => (&trimmed[..at], trimmed[at..].trim()),
            None => (trimmed, ""),
        };
        if key.eq_ignore_ascii_case("@INCLUDE") {
            errors.push(err(
                line,
                "@INCLUDE is not supported; put the whole configuration in this file".to_string(),
            ));
            continue;
        }
        if value.is_empty() {
            errors.push(err(line, format!("key `{key}` has no value")));
            continue;
        }
        if let Some(comment) = inline_comment(value) {
            errors.push(err(
                line,
                format!(
                    "`{comment}` looks like a comment after a value; comments must be on their own line"
                ),
            ));
            continue;
        }
        tokens.push(Token::Pair {
            key: key.to_string(),
            value: value.to_string(),
            line,
        });
    }
    tokens
}

/// The trailing part of `value` starting at a whitespace-preceded `#`, if any.
fn inline_comment(value: &str) -> Option<&str> {
    let bytes = value.as_bytes();
    (1..bytes.len())
        .find(|&i| bytes[i] == b'#' && bytes[i - 1].is_ascii_whitespace())
        .map(|i| &value[i..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(text: &str) -> (Vec<Token>, Vec<String>) {
        let mut errors = Vec::new();
        let tokens = tokenize(text.as_bytes(), Path::new("t.conf"), &mut errors);
        (tokens, errors.iter().map(|e| e.to_string()).collect())
    }

    fn pair(key: &str, value: &str, line: usize) -> Token {
        Token::Pair {
            key: key.into(),
            value: value.into(),
            line,
        }
    }

    #[test]
    fn sections_pairs_comments_blank_crlf() {
        let (t, e) = lex("# c\r\n[PROXY_ENTRY]\r\n\tMatch  /a  \r\n  # indented comment\n\n---\nKey   spaced   value  \n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            t,
            vec![
                Token::Section {
                    name: "PROXY_ENTRY".into(),
                    line: 2
                },
                pair("Match", "/a", 3),
                pair("Key", "spaced   value", 7),
            ]
        );
    }

    #[test]
    fn any_indentation_and_tab_separator() {
        let (t, e) = lex("  [S]\nA\tb\n    C d\n");
        assert!(e.is_empty());
        assert_eq!(t[1], pair("A", "b", 2));
        assert_eq!(t[2], pair("C", "d", 3));
    }

    #[test]
    fn errors_name_their_lines() {
        let long = format!("Key {}", "x".repeat(MAX_LINE));
        let text = format!("[S\n[]\nLonely\n{long}\n@INCLUDE other.conf\nMatch /x # note\n");
        let (t, e) = lex(&text);
        assert!(t.is_empty());
        assert_eq!(e.len(), 6, "{e:?}");
        assert!(e[0].starts_with("t.conf:1: section header `[S` must end with `]`"));
        assert!(e[1].starts_with("t.conf:2: empty section name"));
        assert_eq!(e[2], "t.conf:3: key `Lonely` has no value");
        assert!(e[3].starts_with(&format!("t.conf:4: line is {} bytes long", MAX_LINE + 4)));
        assert!(e[4].starts_with("t.conf:5: @INCLUDE is not supported"));
        assert!(e[5].starts_with("t.conf:6: `# note` looks like a comment"));
    }

    #[test]
    fn exactly_max_line_is_fine_and_bad_utf8_is_reported() {
        let ok = format!("K {}", "x".repeat(MAX_LINE - 2));
        assert!(lex(&ok).1.is_empty());
        let mut errors = Vec::new();
        tokenize(b"[S]\nK \xff\n", Path::new("t.conf"), &mut errors);
        assert_eq!(errors[0].to_string(), "t.conf:2: line is not valid UTF-8");
    }

    #[test]
    fn hash_inside_a_token_is_not_a_comment() {
        let (t, e) = lex("Match /a#b\n");
        assert!(e.is_empty());
        assert_eq!(t[0], pair("Match", "/a#b", 1));
    }
}
