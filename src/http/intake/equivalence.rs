//! The one-pass intake against the httparse-based intake and validation it replaced
//! ([`super::reference`] then [`ProxyRequest::validate`]): random and mutated requests, every
//! prefix of each, field counts around the limits, every byte at every place of real
//! requests. Both must take the same decision (wait, malformed, read), and on reading fill
//! the request alike, take the same bytes and give the same verdict.

use proptest::prelude::*;

use super::agree::agree;
use super::RawRequest;

fn raw_request<'a>(
    (method, path, query, minor): &'a (Vec<u8>, Vec<u8>, Option<Vec<u8>>, u8),
    rest: &'a [u8],
    closes: bool,
) -> RawRequest<'a> {
    RawRequest {
        method,
        path,
        query: query.as_deref(),
        minor_version: *minor,
        rest,
        peer: Some("10.0.0.7:4000".parse().unwrap()),
        host_closes: closes,
    }
}

/// [`agree`] on `rest` and on every prefix of it.
fn agree_on_prefixes(line: &(Vec<u8>, Vec<u8>, Option<Vec<u8>>, u8), rest: &[u8], closes: bool) {
    for end in 0..=rest.len() {
        agree(&raw_request(line, &rest[..end], closes));
    }
}

const NAMES: &[&str] = &[
    "Host",
    "host",
    "HOST",
    "Content-Length",
    "content-length",
    "Transfer-Encoding",
    "transfer-encoding",
    "Connection",
    "connection",
    "Upgrade",
    "upgrade",
    "Keep-Alive",
    "Expect",
    "X-Forwarded-For",
    "Forwarded",
    "TE",
    "Cookie",
    "User-Agent",
    "X-Very-Long-Field-Name-Beyond-Eight",
];

const VALUES: &[&str] = &[
    "example.com",
    "example.com:8080",
    "127.0.0.1:8080",
    "[::1]:80",
    "[zz]",
    "a b",
    "user@h",
    "h:80x",
    "0",
    "5",
    "3",
    " 12 ",
    "5, 5",
    "+5",
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
    "upgrade",
    "x, close",
    "websocket",
    "100-continue",
    "",
    "   ",
    "a\tb",
    "\tlead",
    "trail\t ",
    "caf\u{e9}",
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
const METHODS: &[&[u8]] = &[b"GET", b"HEAD", b"POST", b"PATCH", b"DELETE", b"G\xffT"];
const PATHS: &[&[u8]] = &[
    b"/",
    b"/1k",
    b"/a%20b/~x",
    b"/caf\xc3\xa9",
    b"/\xff",
    b"/a b",
    b"/a\rb",
    b"/a\0",
    b"/a\x7f",
    b"/admin#.php",
    b"*",
    b"http://h/a",
    b"",
    b"/a/long/path/of/more/than/eight/bytes/index.html",
    b"/a/long/path/of/more/than/eight/bytes#index.html",
];
const QUERIES: &[Option<&[u8]>] = &[
    None,
    None,
    Some(b""),
    Some(b"x=1&y=%2F"),
    Some(b"x y"),
    Some(b"x#y"),
    Some(b"q=\xc3\xa9"),
    Some(b"a-long-query=with-more-than-eight-bytes\x01"),
];
const BODIES: &[&str] = &[
    "",
    "abc",
    "hello",
    "3\r\nabc\r\n0\r\n\r\n",
    "zz\r\n",
    "GET /next HTTP/1.1\r\n\r\n",
];
/// Bytes inserted or written over: the ones a parser must treat with care.
const NASTY: &[u8] = b"\r\n\0 \t:,\x7f\x80\xff\x01a;\"#@[]";

fn line() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, Option<Vec<u8>>, u8)> {
    (
        prop::sample::select(METHODS),
        prop::sample::select(PATHS),
        prop::sample::select(QUERIES),
        0u8..2,
    )
        .prop_map(|(m, p, q, v)| (m.to_vec(), p.to_vec(), q.map(<[u8]>::to_vec), v))
}

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
    fn rest()(
        fields in prop::collection::vec(field(), 0..10),
        end in prop::sample::select(&["\r\n", "\r\n", "\n"][..]),
        body in prop::sample::select(BODIES),
    ) -> Vec<u8> {
        format!("{}{end}{body}", fields.concat()).into_bytes()
    }
}

prop_compose! {
    /// Fields of valid syntax: every decision then rests on their meaning.
    fn valid_rest()(
        fields in prop::collection::vec(valid_field(), 0..12),
        end in prop::sample::select(VALID_LINE_ENDS),
        body in prop::sample::select(BODIES),
    ) -> Vec<u8> {
        format!("{}{end}{body}", fields.concat()).into_bytes()
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// Requests built from plausible and hostile pieces, then mutated byte by byte.
    #[test]
    fn same_decisions_on_mutated_requests(
        line in line(),
        rest in rest(),
        mutations in prop::collection::vec(
            (0u8..3, 0.0f64..1.0, prop::sample::select(NASTY)), 0..4),
        closes in any::<bool>(),
    ) {
        let mut rest = rest;
        for m in mutations {
            mutate(&mut rest, m);
        }
        agree_on_prefixes(&line, &rest, closes);
    }

    /// Fields of valid syntax, unmutated: framing, `Host`, `Connection` and the target
    /// decide.
    #[test]
    fn same_decisions_on_valid_requests(line in line(), rest in valid_rest(), closes in any::<bool>()) {
        agree_on_prefixes(&line, &rest, closes);
    }

    /// Arbitrary bytes after a valid field, and arbitrary bytes outright.
    #[test]
    fn same_decisions_on_random_bytes(
        line in line(),
        tail in prop::collection::vec(prop::sample::select(NASTY), 0..60),
        noise in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut rest = b"Host: h\r\n".to_vec();
        rest.extend_from_slice(&tail);
        agree_on_prefixes(&line, &rest, false);
        agree(&raw_request(&line, &noise, false));
    }

    /// Field counts around both limits of the former parser (its small array of 24 and the
    /// 128 a request may have).
    #[test]
    fn same_decisions_around_the_field_limits(
        count in prop::sample::select(&[22usize, 23, 24, 25, 26, 125, 126, 127, 128, 129, 130][..]),
        lf in any::<bool>(),
    ) {
        let end = if lf { "\n" } else { "\r\n" };
        let many = (0..count).map(|i| format!("X-F{i}: {i}{end}")).collect::<String>();
        let rest = format!("Host: h{end}{many}{end}");
        let line = (b"GET".to_vec(), b"/".to_vec(), None, 1);
        for cut in [rest.len(), rest.len() - 1, rest.len() - 3] {
            agree(&raw_request(&line, &rest.as_bytes()[..cut], false));
        }
    }
}

/// Every prefix and every single-byte change of real requests (wrk's, curl's, a browser's,
/// a chunked POST, a WebSocket upgrade with its first frame, bare LFs throughout).
#[test]
fn every_prefix_and_byte_of_known_requests() {
    let requests: &[(&[u8], &[u8])] = &[
        (b"GET", b"Host: 127.0.0.1:8080\r\n\r\n"),
        (b"GET", b"Host: localhost:2001\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"),
        (b"GET", b"Host: example.com\r\nConnection: keep-alive\r\nAccept-Language: en-US,en;q=0.9\r\nCookie: a=1; b=2\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"),
        (b"POST", b"Host: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n"),
        (b"POST", b"Host: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello"),
        (b"GET", b"Host: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"),
        (b"GET", b"Host: h\nConnection: x, close\nX-A: 1\n\n"),
    ];
    for &(method, rest) in requests {
        let line = (method.to_vec(), b"/a?".to_vec(), Some(b"x=1".to_vec()), 1);
        agree_on_prefixes(&line, rest, false);
        for at in 0..rest.len() {
            for &b in NASTY {
                let mut changed = rest.to_vec();
                changed[at] = b;
                agree(&raw_request(&line, &changed, false));
            }
        }
    }
}
