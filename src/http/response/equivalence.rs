//! The one-pass parser against the httparse-based one it replaced ([`super::reference`]):
//! random and mutated heads, every prefix of each, every client and edit kind. Both must take
//! the same decision (refuse, wait, accept), and on accepting give the same facts and write
//! the same bytes for the client.

use proptest::prelude::*;

use super::agree::{agree, agree_on_prefixes, memo_agrees, rules, with_edits};
use super::{reference, ClientSide, HeadEdits};

const NAMES: &[&str] = &[
    "Content-Length",
    "content-length",
    "CONTENT-LENGTH",
    "Transfer-Encoding",
    "transfer-encoding",
    "Connection",
    "connection",
    "Keep-Alive",
    "Proxy-Connection",
    "Upgrade",
    "TE",
    "Trailer",
    "Server",
    "X-A",
    "x-a",
    "X-Internal",
    "close",
    "Date",
    "Set-Cookie",
    "ETag",
    "X-Very-Long-Field-Name-Beyond-Eight",
];

const VALUES: &[&str] = &[
    "0",
    "5",
    "1024",
    " 12 ",
    "5, 5",
    "-1",
    "99999999999999999999",
    "chunked",
    "Chunked",
    "gzip, chunked",
    "chunked, chunked",
    ",chunked,",
    "identity",
    "close",
    "keep-alive",
    "Keep-Alive, Upgrade",
    "x-internal, keep-alive",
    "close, x-a",
    "upgrade",
    "websocket",
    "",
    "   ",
    "a\tb",
    "\tlead",
    "trail\t ",
    "caf\u{e9}",
    "nginx/1.22.1",
    "Fri, 27 Nov 2026 19:36:03 GMT",
    "\"6b0968a0-400\"",
    "a value long enough to take several words of eight bytes each",
];

const SEPARATORS: &[&str] = &[":", ": ", ":\t", ":  ", " :", ":\t \t"];
/// Mostly valid line ends, and the invalid ones: obs-fold, a lone CR, LF then CR.
const LINE_ENDS: &[&str] = &[
    "\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\n", "\n", "\r\n ", "\r\n\t",
    "\r", "\n\r",
];
const VALID_SEPARATORS: &[&str] = &[":", ": ", ":\t", ":  ", ":\t \t"];
const VALID_LINE_ENDS: &[&str] = &["\r\n", "\r\n", "\r\n", "\n"];
const STATUSES: &[&str] = &[
    "200", "200", "204", "304", "101", "100", "103", "404", "502", "099", "000", "999", "2000",
    "20", "2x0",
];
const VERSIONS: &[&str] = &[
    "HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "http/1.1", "HTTP/1.", "HTTP/11",
];
const REASONS: &[&str] = &[
    " OK",
    " OK",
    " Not  Found ",
    "",
    " ",
    "  two spaces",
    " caf\u{e9}",
    " tab\there",
    "\tOK",
    " a\x7fb",
];
const INTERIMS: &[&str] = &[
    "",
    "",
    "",
    "HTTP/1.1 100 Continue\r\n\r\n",
    "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n",
    "HTTP/1.1 100 Continue\n\n",
    "\r\n",
    "\n\r\n",
];
/// Bytes inserted or written over: the ones a parser must treat with care.
const NASTY: &[u8] = b"\r\n\0 \t:,\x7f\x80\xff\x01a;\"";

prop_compose! {
    fn field()(
        name in prop::sample::select(NAMES),
        sep in prop::sample::select(SEPARATORS),
        value in prop::sample::select(VALUES),
        end in prop::sample::select(LINE_ENDS),
    ) -> String {
        format!("{name}{sep}{value}{end}")
    }
}

prop_compose! {
    /// A field line of valid pieces only (whatever its meaning).
    fn valid_field()(
        name in prop::sample::select(NAMES),
        sep in prop::sample::select(VALID_SEPARATORS),
        value in prop::sample::select(VALUES),
        end in prop::sample::select(VALID_LINE_ENDS),
    ) -> String {
        format!("{name}{sep}{value}{end}")
    }
}

prop_compose! {
    /// A head of valid syntax: every decision then rests on the fields' meaning.
    fn valid_head()(
        interim in prop::sample::select(&INTERIMS[..6]),
        version in prop::sample::select(&VERSIONS[..3]),
        status in prop::sample::select(&STATUSES[..9]),
        reason in prop::sample::select(&REASONS[..9]),
        status_end in prop::sample::select(VALID_LINE_ENDS),
        fields in prop::collection::vec(valid_field(), 0..12),
        end in prop::sample::select(VALID_LINE_ENDS),
    ) -> Vec<u8> {
        format!("{interim}{version} {status}{reason}{status_end}{}{end}", fields.concat())
            .into_bytes()
    }
}

prop_compose! {
    fn head()(
        interim in prop::sample::select(INTERIMS),
        version in prop::sample::select(VERSIONS),
        status in prop::sample::select(STATUSES),
        reason in prop::sample::select(REASONS),
        status_end in prop::sample::select(&["\r\n", "\r\n", "\n"][..]),
        fields in prop::collection::vec(field(), 0..10),
        end in prop::sample::select(&["\r\n", "\r\n", "\n"][..]),
        body in prop::sample::select(&["", "hello", "HTTP/1.1 200 OK\r\n\r\n"][..]),
    ) -> Vec<u8> {
        format!("{interim}{version} {status}{reason}{status_end}{}{end}{body}", fields.concat())
            .into_bytes()
    }
}

/// One byte mutation: `(kind, position as a fraction of the length, byte)`.
fn mutate(raw: &mut Vec<u8>, (kind, at, byte): (u8, f64, u8)) {
    let at = ((raw.len() as f64) * at) as usize;
    match kind {
        0 => raw.insert(at.min(raw.len()), byte),
        1 if at < raw.len() => raw[at] = byte,
        2 if at < raw.len() => {
            raw.remove(at);
        }
        _ => {}
    }
}

fn client() -> impl Strategy<Value = ClientSide> {
    (any::<bool>(), 0u8..2, any::<bool>(), any::<bool>()).prop_map(
        |(head_request, minor_version, wants_close, upgrade)| ClientSide {
            head_request,
            minor_version,
            wants_close,
            upgrade,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// Heads built from plausible and hostile pieces, then mutated byte by byte.
    #[test]
    fn same_decisions_and_bytes_on_mutated_heads(
        raw in head(),
        mutations in prop::collection::vec(
            (0u8..3, 0.0f64..1.0, prop::sample::select(NASTY)), 0..4),
        client in client(),
        edits in 0u8..3,
    ) {
        let mut raw = raw;
        for m in mutations {
            mutate(&mut raw, m);
        }
        let rules = rules();
        with_edits(edits, &rules, |edits| agree_on_prefixes(&raw, client, edits));
    }

    /// Heads of valid syntax, unmutated: framing, `Connection`, rules and bare LFs decide.
    #[test]
    fn same_decisions_and_bytes_on_valid_heads(
        raw in valid_head(),
        client in client(),
        edits in 0u8..3,
    ) {
        let rules = rules();
        with_edits(edits, &rules, |edits| agree_on_prefixes(&raw, client, edits));
    }

    /// Arbitrary bytes after a valid status line, and arbitrary bytes outright.
    #[test]
    fn same_decisions_on_random_bytes(
        tail in prop::collection::vec(prop::sample::select(NASTY), 0..60),
        noise in prop::collection::vec(any::<u8>(), 0..40),
        client in client(),
    ) {
        let mut raw = b"HTTP/1.1 200 OK\r\nX-A: b\r\n".to_vec();
        raw.extend_from_slice(&tail);
        agree_on_prefixes(&raw, client, &HeadEdits::default());
        agree(&noise, client, &HeadEdits::default());
    }

    /// Field counts around the limit, in an interim head and in the final one.
    #[test]
    fn same_decisions_around_the_field_limit(
        interim_fields in 0usize..3,
        count in 90usize..110,
        lf in any::<bool>(),
        client in client(),
    ) {
        let end = if lf { "\n" } else { "\r\n" };
        let many = |n: usize| (0..n).map(|i| format!("X-F{i}: {i}{end}")).collect::<String>();
        let interim = if interim_fields == 0 {
            String::new()
        } else {
            format!("HTTP/1.1 100 Continue\r\n{}\r\n", many(if interim_fields == 1 { 30 } else { 101 }))
        };
        let raw = format!("{interim}HTTP/1.1 200 OK\r\n{}Content-Length: 0{end}{end}", many(count));
        for end in [raw.len(), raw.len() - 1, raw.len() - 3] {
            agree(&raw.as_bytes()[..end], client, &HeadEdits::default());
        }
    }
}

/// Every prefix and every single-byte change of real heads (nginx's, a chunked application
/// response, a 101, bare LFs throughout).
#[test]
fn every_prefix_and_byte_of_known_heads() {
    let heads: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Fri, 27 Nov 2026 19:36:03 GMT\r\nContent-Type: application/octet-stream\r\nContent-Length: 1024\r\nLast-Modified: Fri, 27 Nov 2026 11:25:20 GMT\r\nConnection: keep-alive\r\nETag: \"6b0968a0-400\"\r\nAccept-Ranges: bytes\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close, x-a\r\nX-A: 1\r\nVary: Accept-Encoding\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
        b"\r\nHTTP/1.0 200 OK\nX-A: 1\nContent-Length: 3\n\nabc",
    ];
    let upgrade = ClientSide {
        head_request: false,
        minor_version: 1,
        wants_close: false,
        upgrade: true,
    };
    for raw in heads {
        agree_on_prefixes(raw, upgrade, &HeadEdits::default());
        for at in 0..raw.len() {
            for &b in NASTY {
                let mut changed = raw.to_vec();
                changed[at] = b;
                agree(&changed, upgrade, &HeadEdits::default());
            }
        }
    }
}

/// Names the fast reader must tell apart: every hop-by-hop name in mixed case, names of the
/// same length and first letter as one, names with other token characters, long ones.
const FAST_NAMES: &[&str] = &[
    "cOnNeCtIoN",
    "CONNECTION",
    "Content-LENGTH",
    "content-length",
    "TRANSFER-encoding",
    "Transfer-Encoding",
    "tE",
    "Te",
    "kEEP-aLIVE",
    "PROXY-connection",
    "TRAILER",
    "uPgRaDe",
    "Tx",
    "Trailex",
    "Upgradz",
    "Connectiom",
    "Keep-alivf",
    "Content-Lengtx",
    "Proxy-Connectiox",
    "Transfer-Encodinx",
    "Content-Type",
    "Server",
    "ETag",
    "X_1",
    "X-F0",
    "x.y~z!#$%&'*+^`|",
    "A-Name-Of-Many-Words-Beyond-Thirty-Two-Bytes",
];

const FAST_VALUES: &[&str] = &[
    "1024",
    "0",
    "0001024",
    " 7 ",
    "chunked",
    "keep-alive",
    "close",
    "x-a, keep-alive",
    "upgrade",
    "nginx/1.22.1",
    "Fri, 27 Nov 2026 19:36:03 GMT",
    "",
    "a\tb",
    "trail\t ",
    "caf\u{e9}",
    "a value long enough to take several words of eight bytes each, and then some more words",
];

prop_compose! {
    /// A field line of the kind the fast reader takes, now and then with a bare LF.
    fn fast_field()(
        name in prop::sample::select(FAST_NAMES),
        sep in prop::sample::select(&[": ", ":", ":  ", ":\t"][..]),
        value in prop::sample::select(FAST_VALUES),
        end in prop::sample::select(&["\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\n"][..]),
    ) -> String {
        format!("{name}{sep}{value}{end}")
    }
}

prop_compose! {
    /// Heads of up to 80 fields built for the fast reader, one byte sometimes changed.
    fn fast_head()(
        status in prop::sample::select(&["200 OK", "200 OK", "204 No Content", "304 Not Modified", "404 Not Found", "200", "999 x", "200 caf\u{e9}", "101 Switching Protocols"][..]),
        version in prop::sample::select(&["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"][..]),
        fields in prop::collection::vec(fast_field(), 0..80),
        body in prop::sample::select(&["", "hello"][..]),
        change in (0.0f64..1.0, prop::sample::select(NASTY), 0u8..4),
    ) -> Vec<u8> {
        let mut raw = format!("{version} {status}\r\n{}\r\n{body}", fields.concat()).into_bytes();
        if change.2 == 0 {
            mutate(&mut raw, (1, change.0, change.1));
        }
        raw
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Heads the fast reader takes (and near misses it must hand on): long, many fields,
    /// hop-by-hop names in any case and their look-alikes, bare LFs, obs-text.
    #[test]
    fn same_decisions_and_bytes_on_fast_reader_heads(
        raw in fast_head(),
        client in client(),
        edits in 0u8..3,
    ) {
        let rules = rules();
        with_edits(edits, &rules, |edits| {
            agree(&raw, client, edits);
            // Where the fast reader answers, it answers as the reference.
            let mut fast_out = b"before".to_vec();
            let mut old_out = b"before".to_vec();
            if let Some(fast) = super::fast::parse_head(&raw, client, edits, &mut fast_out) {
                let old = reference::parse_head(&raw, client, edits, &mut old_out);
                assert_eq!(Some(fast), old.transpose(), "{:?}", String::from_utf8_lossy(&raw));
                assert_eq!(fast_out, old_out);
            }
            for end in (0..raw.len()).step_by(7) {
                agree(&raw[..end], client, edits);
            }
        });
    }
}

/// The fast reader takes the usual heads (else the comparisons would not reach it) and hands
/// on the others.
#[test]
fn the_fast_reader_takes_the_usual_heads() {
    let client = ClientSide {
        head_request: false,
        minor_version: 1,
        wants_close: false,
        upgrade: false,
    };
    let fast = |raw: &[u8]| {
        let mut out = Vec::new();
        super::fast::parse_head(raw, client, &HeadEdits::default(), &mut out)
    };
    let fields: String = (0..70).map(|i| format!("X-Field-{i}: {i}\r\n")).collect();
    let many = format!("HTTP/1.1 200 OK\r\n{fields}Content-Length: 0\r\n\r\n");
    for raw in [
        &b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Fri, 27 Nov 2026 19:36:03 GMT\r\nContent-Type: application/octet-stream\r\nContent-Length: 1024\r\nLast-Modified: Fri, 27 Nov 2026 11:25:20 GMT\r\nConnection: keep-alive\r\nETag: \"6b0968a0-400\"\r\nAccept-Ranges: bytes\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close, x-a\r\nX-A: 1\r\n\r\n",
        b"HTTP/1.0 404 Not Found\r\nX-A:\tcaf\xc3\xa9 \t\r\n\r\nbody",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        // Short lines at the buffer's end (the scans' last bytes one at a time), names with
        // other token characters.
        b"HTTP/1.1 200 OK\r\nA: 1\r\nB:\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-B3-Id: 7\r\nContent-MD5: x\r\nP3P: y\r\n\r\n",
        many.as_bytes(),
    ] {
        assert!(fast(raw).is_some(), "{:?}", String::from_utf8_lossy(raw));
    }
    for raw in [
        &b"HTTP/1.1 200 OK\r\nServer: nginx\r\n"[..],
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\nX-A: 1\n\n",
        b"\r\nHTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200 caf\xc3\xa9\r\n\r\n",
    ] {
        assert!(fast(raw).is_none(), "{:?}", String::from_utf8_lossy(raw));
    }
}

prop_compose! {
    /// A head the fast reader takes, with a `Date` line in some place, and the same head
    /// with a one-byte change (often in the date's digits): what a backend's next head may be.
    fn head_and_next()(
        raw in fast_head(),
        date_line in 0usize..4,
        change in (0u8..3, 0.0f64..1.0, prop::sample::select(b"\r\n\0 \t:,\x7f\x80a0123456789".as_slice())),
        in_date in any::<bool>(),
    ) -> (Vec<u8>, Vec<u8>) {
        let date = b"Date: Thu, 03 Dec 2026 14:30:00 GMT\r\n";
        let mut raw = raw;
        // After the status line and `date_line` field lines (or the head's end).
        let mut at = raw.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
        for _ in 0..date_line {
            match raw[at..].iter().position(|&b| b == b'\n') {
                Some(p) if p > 1 => at += p + 1,
                _ => break,
            }
        }
        raw.splice(at..at, date.iter().copied());
        let mut next = raw.clone();
        if in_date {
            // A byte of the date's value, so that the memo's in-place case is tried.
            let offset = 6 + ((date.len() - 8) as f64 * change.1) as usize;
            next[at + offset] = change.2;
        } else {
            mutate(&mut next, change);
        }
        (raw, next)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// What the memo of a backend's previous head recalls for its next head is what reading
    /// that head gives: the same facts and the same bytes for the client.
    #[test]
    fn the_memo_recalls_only_what_reading_gives(
        (first, next) in head_and_next(),
        client in client(),
    ) {
        memo_agrees(&first, &next, client);
    }
}
