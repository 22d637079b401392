//! The checks that hold the one-pass response-head reader to the httparse-based one it
//! replaced ([`super::reference`]) and the memo to the reader: shared by the `equivalence`
//! property tests and the fuzz targets (`fuzz/`, with the `fuzz-reference` feature). Each
//! panics, naming the head, where the two disagree.

use super::super::rules::{Applied, Vars};
use super::{parse_head, reference, ClientSide, HeadEdits, HeadMemo};
use crate::config::headers::{rule, Direction, HeaderRules};

/// Runs both parsers on `raw`, each appending to an output that already holds bytes (a
/// refused or incomplete head must leave them alone), and asserts they agree.
pub fn agree(raw: &[u8], client: ClientSide, edits: &HeadEdits<'_>) {
    let mut new_out = b"before".to_vec();
    let mut old_out = b"before".to_vec();
    let new = parse_head(raw, client, edits, &mut new_out);
    let old = reference::parse_head(raw, client, edits, &mut old_out);
    assert_eq!(
        new,
        old,
        "decision for {:?} ({client:?})",
        String::from_utf8_lossy(raw)
    );
    assert_eq!(
        String::from_utf8_lossy(&new_out),
        String::from_utf8_lossy(&old_out),
        "output for {:?} ({client:?})",
        String::from_utf8_lossy(raw)
    );
    assert_eq!(new_out, old_out);
}

/// [`agree`] on `raw` and on every prefix of it.
pub fn agree_on_prefixes(raw: &[u8], client: ClientSide, edits: &HeadEdits<'_>) {
    for end in 0..=raw.len() {
        agree(&raw[..end], client, edits);
    }
}

/// Response rules of every kind (remove, set once, add with a variable), for the edited cases.
pub fn rules() -> HeaderRules {
    HeaderRules::new(
        [
            "remove Server",
            "set X-A once",
            "add X-From $server",
            "remove x-internal",
        ]
        .iter()
        .map(|l| rule("ResponseHeader", Direction::Response, l).unwrap())
        .collect(),
    )
}

/// Runs `check` with the edits of kind `kind`: 0 none, 1 `rules` alone, any other `rules` and
/// an extra field line such as the exchange adds.
pub fn with_edits(kind: u8, rules: &HeaderRules, check: impl FnOnce(&HeadEdits<'_>)) {
    let vars = Vars {
        server: "10.0.0.1:80",
        ..Vars::default()
    };
    let applied = Applied { rules, vars: &vars };
    let edits = match kind {
        0 => HeadEdits::default(),
        1 => HeadEdits {
            rules: Some(applied),
            extra_lines: b"",
        },
        _ => HeadEdits {
            rules: Some(applied),
            extra_lines: b"Set-Cookie: s=1\r\n",
        },
    };
    check(&edits);
}

/// What the memo of a backend's previous head `first` recalls for its next head `next` (and
/// for `first` again, and `next` again) is what reading that head gives: the same facts and
/// the same bytes for the client; where it recalls nothing it writes nothing.
pub fn memo_agrees(first: &[u8], next: &[u8], client: ClientSide) {
    let edits = HeadEdits::default();
    let mut memo = HeadMemo::default();
    let mut out = Vec::new();
    if let Ok(Some(head)) = parse_head(first, client, &edits, &mut out) {
        memo.remember(first, client, &head, &out);
    }
    for raw in [next, first, next] {
        let mut recalled = b"before".to_vec();
        let mut read = b"before".to_vec();
        let got = memo.recall(raw, client, &mut recalled);
        let want = parse_head(raw, client, &edits, &mut read);
        let shown = String::from_utf8_lossy(raw);
        match got {
            Some(head) => {
                assert_eq!(Ok(Some(head)), want, "recalled for {shown:?}");
                assert_eq!(recalled, read, "bytes recalled for {shown:?}");
            }
            None => assert_eq!(
                recalled,
                b"before".to_vec(),
                "nothing recalled for {shown:?}"
            ),
        }
    }
}
