//! Strict parsing of a backend's response head and the head the client receives instead.

use super::framing::Framing;
use super::headers::{
    eq_lowercase, named_in_connection, parse_decimal, push_decimal, tokens, trim,
    ConnectionOptions, Field,
};
use super::rules::Applied;

/// Most header fields accepted in one response head.
const MAX_HEADERS: usize = 100;

/// Why a backend response is refused (the client gets 502, the connection is discarded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// Not an HTTP/1.x response head, invalid header bytes, obs-fold, or too many fields.
    Malformed,
    /// Several `Content-Length` fields, or one with an invalid value (RFC 9112 §6.3 (5)).
    BadContentLength,
    /// Both `Transfer-Encoding` and `Content-Length` (RFC 9112 §6.3 (3): "ought to be handled
    /// as an error").
    LengthAndTransferEncoding,
    /// A transfer coding other than a lone `chunked`. The proxy sends no `TE`, so a backend
    /// may apply no other (RFC 9112 §7.4); passed on without its coding (hop-by-hop) the
    /// body would reach the client silently corrupted, as nginx also refuses it.
    UnsupportedTransferEncoding,
}

/// What the relay needs to know about a parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Bytes of the head (status line through the empty line) in the parsed buffer.
    pub head_len: usize,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the backend will close the connection after this response.
    pub backend_closes: bool,
    /// Whether the client connection must close after this response.
    pub client_closes: bool,
    /// Whether the body must be de-chunked for the client (HTTP/1.0 client, chunked body).
    pub dechunk: bool,
    /// Whether a body that ends when the backend closes goes to the client chunked, so that
    /// an HTTP/1.1 client keeps its connection (as nginx does) instead of losing it with the
    /// backend's.
    pub enchunk: bool,
    /// A `101 Switching Protocols` to a requested upgrade: the connection becomes a tunnel.
    pub upgrade: bool,
}

/// Facts about the exchange that shape the client's response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientSide {
    /// The request was `HEAD`.
    pub head_request: bool,
    /// The client's HTTP minor version.
    pub minor_version: u8,
    /// The client connection ends after this exchange anyway.
    pub wants_close: bool,
    /// The request asked to upgrade the connection and the upgrade was forwarded, so a
    /// `101 Switching Protocols` is acceptable.
    pub upgrade: bool,
}

/// What the proxy changes in a backend's response head besides the framing and hop-by-hop
/// fields it owns: the entry's `ResponseHeader` rules, and complete field lines the exchange
/// adds (such as a `Set-Cookie` of its own). The default changes nothing. Both kinds are
/// written after the backend's kept fields, rules first, before the proxy's framing lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeadEdits<'a> {
    /// The entry's response rules with the exchange's values (`None`: no rules).
    pub rules: Option<Applied<'a>>,
    /// More field lines, each `Name: value\r\n`, appended as they are (empty: none).
    pub extra_lines: &'a [u8],
}

/// Parses a response head at the start of `buf`.
///
/// Returns `Ok(None)` while the head is incomplete; interim 1xx responses (other than 101) are
/// skipped (`head_len` then covers them too). On success the head the client should receive is
/// appended to `out`: status line and end-to-end headers, without hop-by-hop fields and
/// without the fields the backend's `Connection` names, re-framed for the client, with
/// `edits` made. Otherwise `out` is left as it was.
///
/// One pass reads, checks and classifies each field line and copies the kept ones as it
/// goes. The grammar is httparse's (the parser this replaced, kept as the tests' reference):
/// `HTTP/1.0` or `HTTP/1.1`, a space, three digits, then a space and a reason of HTAB, SP,
/// VCHAR and obs-text, or the line's end; field names of token characters followed at once
/// by `:`; values of HTAB, SP, VCHAR and obs-text; lines ending in CRLF or a bare LF; empty
/// lines before the status line skipped; no obs-fold (a line starting with whitespace is no
/// field name); at most `MAX_HEADERS` fields a head.
pub fn parse_head(
    buf: &[u8],
    client: ClientSide,
    edits: &HeadEdits<'_>,
    out: &mut Vec<u8>,
) -> Result<Option<ResponseHead>, ResponseError> {
    // The usual head first, read knowing less can go wrong; anything else from the start
    // again, by the reader that tells every case apart.
    if let Some(done) = fast::parse_head(buf, client, edits, out) {
        return done.map(Some);
    }
    let mark = out.len();
    let mut start = 0;
    let stop = loop {
        let line = match status_line(buf, start) {
            Ok(line) => line,
            Err(stop) => break stop,
        };
        if (100..200).contains(&line.status) && line.status != 101 {
            // Interim responses (100 Continue, 103 Early Hints) are dropped: the client's whole
            // request was already received by the server in front of us.
            match skip_fields(buf, line.next) {
                Ok(end) => start = end,
                Err(stop) => break stop,
            }
            continue;
        }
        match final_head(buf, &line, client, edits, out) {
            Ok(head) => return Ok(Some(head)),
            Err(stop) => break stop,
        }
    };
    out.truncate(mark);
    match stop {
        Stop::Incomplete => Ok(None),
        Stop::Refused(e) => Err(e),
    }
}

/// Why reading a head stopped short of a result.
pub(super) enum Stop {
    /// More bytes are needed.
    Incomplete,
    /// The head is refused.
    Refused(ResponseError),
}

const MALFORMED: Stop = Stop::Refused(ResponseError::Malformed);

/// The byte at `at`, or [`Stop::Incomplete`] past the end.
fn byte(buf: &[u8], at: usize) -> Result<u8, Stop> {
    buf.get(at).copied().ok_or(Stop::Incomplete)
}

/// Token characters (RFC 9110 §5.6.2), the bytes of a field name.
static TOKEN: [bool; 256] = {
    let mut map = [false; 256];
    let mut b = 0;
    while b < 256 {
        map[b] = matches!(b as u8,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'!' | b'#' | b'$' | b'%' | b'&' | b'\''
            | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~');
        b += 1;
    }
    map
};

/// Whether `b` may stand in a field value or a reason phrase: HTAB, SP, VCHAR, obs-text
/// (RFC 9110 §5.5, RFC 9112 §4). CR, LF, NUL, the other controls and DEL may not.
fn text_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// The first index from `at` whose byte is no [`text_byte`], or `buf.len()`. Eight bytes at a
/// time: values are most of a head's bytes.
fn skip_text(buf: &[u8], mut at: usize) -> usize {
    while let Some(word) = buf.get(at..at + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let stops = text_stops(u64::from_le_bytes(w));
        if stops == 0 {
            at += 8;
            continue;
        }
        at += (stops.trailing_zeros() / 8) as usize;
        if buf[at] != b'\t' {
            return at;
        }
        at += 1;
    }
    while at < buf.len() && text_byte(buf[at]) {
        at += 1;
    }
    at
}

/// The high bit of each byte of `w` below 0x20 or equal to 0x7f, exact up to the lowest such
/// byte (a borrow sets bits only above a byte that stops anyway). A byte with its high bit set
/// (obs-text) never stops: the subtractions' high bits are masked with `!w`.
#[inline(always)]
fn text_stops(w: u64) -> u64 {
    const LOW: u64 = 0x2020_2020_2020_2020;
    const ONES: u64 = 0x0101_0101_0101_0101;
    const DEL: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    (w.wrapping_sub(LOW) | (w ^ DEL).wrapping_sub(ONES)) & !w & HIGH
}

/// The high bit of every byte.
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The end of the line terminator at `at` (CRLF or a bare LF; a CR without LF is refused), or
/// `None` when no terminator starts there.
fn line_end(buf: &[u8], at: usize) -> Result<Option<usize>, Stop> {
    match byte(buf, at)? {
        b'\n' => Ok(Some(at + 1)),
        b'\r' => match byte(buf, at + 1)? {
            b'\n' => Ok(Some(at + 2)),
            _ => Err(MALFORMED),
        },
        _ => Ok(None),
    }
}

/// A parsed status line.
struct StatusLine {
    /// Where the head starts (after skipped empty lines).
    start: usize,
    minor: u8,
    status: u16,
    /// The reason phrase, empty when it holds obs-text (as httparse gave it).
    reason: std::ops::Range<usize>,
    /// Whether the line is exactly `HTTP/1.1 ddd reason\r\n` and can go as received.
    verbatim: bool,
    /// Where the field lines start.
    next: usize,
}

/// Reads the status line of the head at `at`, after any empty lines.
fn status_line(buf: &[u8], mut at: usize) -> Result<StatusLine, Stop> {
    while let Some(end) = line_end(buf, at)? {
        at = end;
    }
    let start = at;
    let minor = match buf.get(at..at + 9) {
        Some(b"HTTP/1.1 ") => 1,
        Some(b"HTTP/1.0 ") => 0,
        _ => {
            // Byte by byte, to tell a prefix that may still become a version (incomplete)
            // from one that cannot (refused); nine bytes that got here are refused.
            for (i, &want) in b"HTTP/1.".iter().enumerate() {
                if byte(buf, at + i)? != want {
                    return Err(MALFORMED);
                }
            }
            if !matches!(byte(buf, at + 7)?, b'0' | b'1') {
                return Err(MALFORMED);
            }
            byte(buf, at + 8)?;
            return Err(MALFORMED);
        }
    };
    let mut status = 0u16;
    for i in 9..12 {
        let d = byte(buf, at + i)?;
        if !d.is_ascii_digit() {
            return Err(MALFORMED);
        }
        status = status * 10 + u16::from(d - b'0');
    }
    at += 12;
    let (reason, crlf, next) = if byte(buf, at)? == b' ' {
        let from = at + 1;
        let i = skip_text(buf, from);
        let Some(next) = line_end(buf, i)? else {
            return Err(MALFORMED);
        };
        // A reason with obs-text goes empty (httparse gave no text for it).
        let plain = buf[from..i].is_ascii();
        let reason = if plain { from..i } else { from..from };
        (reason, next == i + 2 && plain, next)
    } else {
        match line_end(buf, at)? {
            Some(end) => (at..at, false, end),
            None => return Err(MALFORMED),
        }
    };
    Ok(StatusLine {
        start,
        minor,
        status,
        reason,
        verbatim: crlf && minor == 1,
        next,
    })
}

/// One field line, checked.
#[derive(Clone)]
pub(super) struct FieldLine {
    /// Where the line (its name) starts.
    pub(super) start: usize,
    /// The name's end (the colon).
    pub(super) name_end: usize,
    /// The value without the whitespace around it, as [`field_line`] finds it. The fast
    /// reader (`fast`) leaves the whitespace in: its lines all end in CRLF, so they go as
    /// received and nothing reads this range; the value its writer reads comes from the
    /// closure it hands to [`Fields::take`], without the leading whitespace (each reader of
    /// it ignores the trailing).
    pub(super) value: std::ops::Range<usize>,
    /// Where the line ends, after its terminator.
    pub(super) end: usize,
    /// The line ends in CRLF (not a bare LF), so it can go as received.
    crlf: bool,
}

/// Reads the field line at `at`: `Ok(Err(end))` at the empty line that ends the head.
// Inlined: the hot loop of [`final_head`] then keeps the line in registers.
#[inline(always)]
pub(super) fn field_line(buf: &[u8], at: usize) -> Result<Result<FieldLine, usize>, Stop> {
    let rest = &buf[at..];
    let first = *rest.first().ok_or(Stop::Incomplete)?;
    if !TOKEN[usize::from(first)] {
        // The empty line, or a line without a name (obs-fold's leading whitespace
        // included): refused.
        return match line_end(buf, at)? {
            Some(end) => Ok(Err(end)),
            None => Err(MALFORMED),
        };
    }
    let name_len = token_len(rest).ok_or(Stop::Incomplete)?;
    // No whitespace between the name and the colon.
    if rest[name_len] != b':' {
        return Err(MALFORMED);
    }
    let name_end = at + name_len;
    let from = name_end
        + 1
        + buf[name_end + 1..]
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .ok_or(Stop::Incomplete)?;
    let to = skip_text(buf, from);
    let (end, crlf) = match buf.get(to) {
        Some(b'\n') => (to + 1, false),
        Some(b'\r') => match buf.get(to + 1) {
            Some(b'\n') => (to + 2, true),
            Some(_) => return Err(MALFORMED),
            None => return Err(Stop::Incomplete),
        },
        Some(_) => return Err(MALFORMED),
        None => return Err(Stop::Incomplete),
    };
    Ok(Ok(FieldLine {
        start: at,
        name_end,
        value: from..trimmed_end(buf, from, to),
        end,
        crlf,
    }))
}

/// The end of the value `buf[from..to]` without its trailing spaces and tabs. It starts with a
/// byte other than whitespace (when it is not empty), so trimming stops there.
#[inline(always)]
fn trimmed_end(buf: &[u8], from: usize, to: usize) -> usize {
    if to > from && matches!(buf[to - 1], b' ' | b'\t') {
        buf[from..to]
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(from, |p| from + p + 1)
    } else {
        to
    }
}

/// The index of the first byte of `rest` that is no token character, `None` when all are.
/// Eight bytes at a time while they are letters, digits and `-` (nearly every name's bytes),
/// the other token characters one by one.
#[inline(always)]
fn token_len(rest: &[u8]) -> Option<usize> {
    const fn each(b: u8) -> u64 {
        u64::from_le_bytes([b; 8])
    }
    // The high bit of each byte of `x` that lies strictly between `m` and `n` (both below
    // 0x80): the sums stay inside each byte, so every byte's answer is exact.
    fn between(x: u64, m: u8, n: u8) -> u64 {
        let low = x & each(0x7f);
        (each(127 + n) - low) & !x & (low + each(127 - m)) & each(0x80)
    }
    let mut at = 0;
    while let Some(word) = rest.get(at..at + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        // Letters of either case (setting 0x20 maps only letters onto `a`..=`z`), digits,
        // `-`.
        let good = between(w | each(0x20), b'a' - 1, b'z' + 1)
            | between(w, b'0' - 1, b'9' + 1)
            | between(w, b'-' - 1, b'-' + 1);
        let other = !good & each(0x80);
        if other == 0 {
            at += 8;
            continue;
        }
        at += (other.trailing_zeros() / 8) as usize;
        if !TOKEN[usize::from(rest[at])] {
            return Some(at);
        }
        at += 1;
    }
    rest[at..]
        .iter()
        .position(|&b| !TOKEN[usize::from(b)])
        .map(|n| at + n)
}

/// The hop-by-hop or framing field a response's field name denotes, or [`Field::Other`]: the
/// only kinds a response head's rules tell apart (`Host` and the like pass as any other).
/// The length and the first letter leave at most one name to compare.
#[inline(always)]
fn hop_field(name: &[u8]) -> Field {
    // Most names have none of the hop-by-hop names' lengths: one test tells them.
    const LENGTHS: u32 = 1 << 2 | 1 << 7 | 1 << 10 | 1 << 14 | 1 << 16 | 1 << 17;
    if name.len() >= 32 || LENGTHS >> name.len() & 1 == 0 {
        return Field::Other;
    }
    let (lower, field): (&[u8], Field) = match (name.len(), name.first().map_or(0, |b| b | 0x20)) {
        (2, b't') => (b"te", Field::Te),
        (7, b't') => (b"trailer", Field::Trailer),
        (7, b'u') => (b"upgrade", Field::Upgrade),
        (10, b'c') => (b"connection", Field::Connection),
        (10, b'k') => (b"keep-alive", Field::KeepAlive),
        (14, b'c') => (b"content-length", Field::ContentLength),
        (16, b'p') => (b"proxy-connection", Field::ProxyConnection),
        (17, b't') => (b"transfer-encoding", Field::TransferEncoding),
        _ => return Field::Other,
    };
    if eq_lowercase(name, lower) {
        field
    } else {
        Field::Other
    }
}

/// Checks the field lines from `at` (at most [`MAX_HEADERS`]); returns the head's end.
fn skip_fields(buf: &[u8], mut at: usize) -> Result<usize, Stop> {
    let mut count = 0;
    loop {
        match field_line(buf, at)? {
            Ok(line) => {
                count += 1;
                if count > MAX_HEADERS {
                    return Err(MALFORMED);
                }
                at = line.end;
            }
            Err(end) => return Ok(end),
        }
    }
}

/// The field lines of a head already checked, from `at`.
#[derive(Clone)]
struct Lines<'b> {
    buf: &'b [u8],
    at: usize,
}

impl Iterator for Lines<'_> {
    type Item = FieldLine;

    fn next(&mut self) -> Option<FieldLine> {
        match field_line(self.buf, self.at) {
            Ok(Ok(line)) => {
                self.at = line.end;
                Some(line)
            }
            _ => None,
        }
    }
}

/// What the framing and connection rules read from a head's fields, gathered while they are
/// read.
#[derive(Clone, Copy, Default)]
struct Facts<'b> {
    /// The first `Content-Length` value, trimmed (once: the length rules and the written
    /// digits both read it).
    first_length: Option<&'b [u8]>,
    /// More than one `Content-Length`.
    more_lengths: bool,
    /// A `Transfer-Encoding` field.
    has_codings: bool,
    /// Transfer codings listed, counted up to 2.
    codings: u8,
    /// The first transfer coding is `chunked`.
    first_chunked: bool,
    /// An `Upgrade` field.
    has_upgrade: bool,
    /// The `Connection` values.
    connection: ConnectionOptions,
}

/// Reads, checks and writes the fields of a final (or 101) head whose status line is `line`.
fn final_head(
    buf: &[u8],
    line: &StatusLine,
    client: ClientSide,
    edits: &HeadEdits<'_>,
    out: &mut Vec<u8>,
) -> Result<ResponseHead, Stop> {
    let mut fields = Fields::start(buf, line, client, edits, out);
    let mut count = 0;
    let mut at = line.next;
    let head_end = loop {
        let field = match field_line(buf, at)? {
            Ok(field) => field,
            Err(end) => break end,
        };
        count += 1;
        if count > MAX_HEADERS {
            return Err(MALFORMED);
        }
        at = field.end;
        let name = &buf[field.start..field.name_end];
        fields.take(buf, &field, name, || &buf[field.value.clone()], out);
    };
    fields
        .finish(buf, line, head_end, client, edits, out)
        .map_err(Stop::Refused)
}

/// The writing of a final head's fields, shared by both line readers ([`final_head`] and
/// [`fast::parse_head`]): what is gathered from the fields and the run of kept lines.
struct Fields<'b, 'e> {
    /// Where the client's head starts in `out`.
    mark: usize,
    /// `Content-Length` goes on although no body follows (HEAD, 304).
    keep_lengths: bool,
    /// The rules, when they drop fields.
    rule_drops: Option<&'e Applied<'e>>,
    /// The run of kept lines not copied yet.
    pending: std::ops::Range<usize>,
    /// What the framing and connection rules need.
    facts: Facts<'b>,
}

impl<'b, 'e> Fields<'b, 'e> {
    /// Starts the client's head: the status line, as received when it can go so.
    #[inline(always)]
    fn start(
        buf: &'b [u8],
        line: &StatusLine,
        client: ClientSide,
        edits: &'e HeadEdits<'e>,
        out: &mut Vec<u8>,
    ) -> Self {
        let status = line.status;
        let mark = out.len();
        // A response without a body keeps its length (HEAD, 304: the length a GET would have
        // had), except where none may be sent (RFC 9110 §8.6: 1xx, 204). These are the heads
        // [`decide`] gives no body, known from the status line already.
        let keep_lengths = (client.head_request || status == 304)
            && status != 204
            && !(100..200).contains(&status);
        // Kept lines are copied as received, runs of neighbouring lines at once (most heads
        // lose only their framing and `Connection` lines). `pending` is the run not copied
        // yet; the status line starts it when it can go as it is.
        let pending = if line.verbatim {
            line.start..line.next
        } else {
            write_status_line(buf, line, out);
            line.next..line.next
        };
        Fields {
            mark,
            keep_lengths,
            // Fields a `set` or `remove` rule names end a run like the hop-by-hop ones.
            rule_drops: edits.rules.as_ref().filter(|r| r.rules.drops_any()),
            pending,
            facts: Facts::default(),
        }
    }

    /// Classifies one field line (`name` is its slice of `buf`, `value` gives its value's),
    /// gathers what
    /// the rules need from it and keeps it unless it is hop-by-hop or a rule drops it.
    #[inline(always)]
    fn take(
        &mut self,
        buf: &'b [u8],
        field: &FieldLine,
        name: &[u8],
        value: impl FnOnce() -> &'b [u8],
        out: &mut Vec<u8>,
    ) {
        let facts = &mut self.facts;
        let kind = hop_field(name);
        // Only the fields the rules read need their value: most lines never find where it
        // starts.
        let value = if kind == Field::Other {
            &[][..]
        } else {
            value()
        };
        match kind {
            Field::Other => {}
            // The usual values at once, any other list token by token.
            Field::Connection if eq_lowercase(value, b"keep-alive") => {
                facts.connection.keep_alive = true
            }
            Field::Connection if eq_lowercase(value, b"close") => {
                facts.connection.close = true;
                facts.connection.names_fields = true;
            }
            Field::Connection => facts.connection.add(value),
            Field::ContentLength if facts.first_length.is_some() => facts.more_lengths = true,
            Field::ContentLength => facts.first_length = Some(trim(value)),
            Field::TransferEncoding => {
                facts.has_codings = true;
                for coding in tokens(value) {
                    if facts.codings == 0 {
                        facts.first_chunked = coding.eq_ignore_ascii_case(b"chunked");
                    }
                    facts.codings = (facts.codings + 1).min(2);
                }
            }
            Field::Upgrade => facts.has_upgrade = true,
            _ => {}
        }
        if (kind.is_hop_by_hop() && !(self.keep_lengths && kind == Field::ContentLength))
            || self.rule_drops.is_some_and(|r| r.drops(name))
        {
            return;
        }
        push_kept(buf, field, &mut self.pending, out);
    }

    /// Keeps `run`, whole field lines that end in CRLF, none hop-by-hop or dropped by a rule.
    #[inline(always)]
    fn keep(&mut self, buf: &[u8], run: std::ops::Range<usize>, out: &mut Vec<u8>) {
        keep_run(buf, run, &mut self.pending, out);
    }

    /// Decides the framing once every field line up to `head_end` was taken, and writes the
    /// rest of the client's head.
    fn finish(
        self,
        buf: &[u8],
        line: &StatusLine,
        head_end: usize,
        client: ClientSide,
        edits: &HeadEdits<'_>,
        out: &mut Vec<u8>,
    ) -> Result<ResponseHead, ResponseError> {
        let Fields {
            mark,
            keep_lengths,
            rule_drops,
            mut pending,
            facts,
        } = self;
        if line.status < 100 {
            return Err(ResponseError::Malformed);
        }
        let head = decide(line.status, line.minor, &facts, client)?;
        if facts.connection.names_fields {
            // The `Connection` values name fields to drop, earlier ones included: the rare
            // head is written again, now checking each name against them.
            out.truncate(mark);
            let connection: Vec<&[u8]> = Lines { buf, at: line.next }
                .filter(|f| hop_field(&buf[f.start..f.name_end]) == Field::Connection)
                .map(|f| &buf[f.value])
                .collect();
            pending = if line.verbatim {
                line.start..line.next
            } else {
                write_status_line(buf, line, out);
                line.next..line.next
            };
            for field in (Lines { buf, at: line.next }) {
                let name = &buf[field.start..field.name_end];
                let kind = hop_field(name);
                if (kind.is_hop_by_hop() && !(keep_lengths && kind == Field::ContentLength))
                    || named_in_connection(connection.iter().copied(), name)
                    || rule_drops.is_some_and(|r| r.drops(name))
                {
                    continue;
                }
                push_kept(buf, &field, &mut pending, out);
            }
        }
        out.extend_from_slice(&buf[pending]);
        let upgrades = Lines { buf, at: line.next }
            .filter(|f| hop_field(&buf[f.start..f.name_end]) == Field::Upgrade)
            .map(|f| &buf[f.value]);
        // The backend's digits are the length's decimal unless they have leading zeros.
        let digits = facts
            .first_length
            .filter(|v| v.len() == 1 || v.first() != Some(&b'0'));
        write_tail(&head, client, edits, upgrades, digits, out);
        Ok(ResponseHead {
            head_len: head_end,
            ..head
        })
    }
}

/// Writes `HTTP/1.1`, the status and the reason (a status line that cannot go as received).
fn write_status_line(buf: &[u8], line: &StatusLine, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(line.status));
    out.push(b' ');
    out.extend_from_slice(&buf[line.reason.clone()]);
    out.extend_from_slice(b"\r\n");
}

/// Passes a kept field line on: added to the run of lines to copy when it ends in CRLF,
/// rewritten with CRLF otherwise (a bare LF never reaches the client).
#[inline(always)]
fn push_kept(
    buf: &[u8],
    field: &FieldLine,
    pending: &mut std::ops::Range<usize>,
    out: &mut Vec<u8>,
) {
    if field.crlf {
        keep_run(buf, field.start..field.end, pending, out);
        return;
    }
    out.extend_from_slice(&buf[pending.clone()]);
    *pending = field.end..field.end;
    out.extend_from_slice(&buf[field.start..field.name_end]);
    out.extend_from_slice(b": ");
    out.extend_from_slice(&buf[field.value.clone()]);
    out.extend_from_slice(b"\r\n");
}

/// Passes on `run`, kept lines that end in CRLF: it joins the run of lines to copy when it
/// follows it, else that run is copied and `run` starts the next.
#[inline(always)]
fn keep_run(
    buf: &[u8],
    run: std::ops::Range<usize>,
    pending: &mut std::ops::Range<usize>,
    out: &mut Vec<u8>,
) {
    if run.is_empty() {
        return;
    }
    if pending.end != run.start {
        out.extend_from_slice(&buf[pending.clone()]);
        pending.start = run.start;
    }
    pending.end = run.end;
}

/// RFC 9112 §6.3: the message-length rules, in their order.
fn decide(
    status: u16,
    minor: u8,
    facts: &Facts<'_>,
    client: ClientSide,
) -> Result<ResponseHead, ResponseError> {
    let Facts {
        first_length,
        more_lengths,
        has_codings,
        codings,
        first_chunked,
        has_upgrade,
        connection,
    } = *facts;

    // Strictness before the rules: a response with conflicting framing is refused even when
    // its status says no body follows, since the backend connection is in an unknown state.
    if has_codings && first_length.is_some() {
        return Err(ResponseError::LengthAndTransferEncoding);
    }
    if more_lengths {
        return Err(ResponseError::BadContentLength);
    }
    // A lone `chunked` is the only coding accepted.
    if has_codings && !(codings == 1 && first_chunked) {
        return Err(ResponseError::UnsupportedTransferEncoding);
    }
    let length = match first_length {
        Some(v) => {
            // At most 19 digits: every such length fits in a u64 (and 20 would be absurd).
            if v.len() > 19 {
                return Err(ResponseError::BadContentLength);
            }
            Some(parse_decimal(v).ok_or(ResponseError::BadContentLength)?)
        }
        None => None,
    };

    // (1) HEAD responses and 1xx, 204, 304 have no body.
    let framing =
        if client.head_request || status == 204 || status == 304 || (100..200).contains(&status) {
            Framing::None
        // (3) Transfer-Encoding with chunked last means chunked (and a lone `chunked` is the
        // only coding accepted, checked above).
        } else if has_codings {
            Framing::Chunked
        // (5) A valid Content-Length gives the length.
        } else if let Some(n) = length {
            Framing::Length(n)
        // (7) Otherwise the body lasts until the connection closes.
        } else {
            Framing::UntilClose
        };

    let backend_closes = connection.close
        || (minor == 0 && !connection.keep_alive)
        || framing == Framing::UntilClose
        || status == 101;
    let dechunk = framing == Framing::Chunked && client.minor_version == 0;
    // RFC 9112 §7.1: chunked lets the end of the body be told without closing.
    let enchunk =
        framing == Framing::UntilClose && client.minor_version == 1 && !client.wants_close;
    let client_closes = client.wants_close
        || client.minor_version == 0
        || (framing == Framing::UntilClose && !enchunk)
        || dechunk;
    // RFC 9110 §15.2.2: 101 only answers a request's Upgrade, and names the new protocol.
    let upgrade = status == 101;
    if upgrade && (!client.upgrade || !has_upgrade) {
        return Err(ResponseError::Malformed);
    }
    Ok(ResponseHead {
        status,
        head_len: 0,
        framing,
        backend_closes,
        client_closes,
        dechunk,
        enchunk,
        upgrade,
    })
}

/// Writes what follows the backend's kept fields: the edits' lines, then the proxy's own
/// framing and connection lines, then the empty line. `length_digits` are the backend's
/// `Content-Length` digits when they are the length's decimal (no leading zeros).
fn write_tail<'b>(
    head: &ResponseHead,
    client: ClientSide,
    edits: &HeadEdits<'_>,
    upgrades: impl Iterator<Item = &'b [u8]>,
    length_digits: Option<&[u8]>,
    out: &mut Vec<u8>,
) {
    if let Some(rules) = &edits.rules {
        rules.write_lines(out);
    }
    if !edits.extra_lines.is_empty() {
        out.extend_from_slice(edits.extra_lines);
    }
    if head.upgrade {
        // The tunnel's own hop-by-hop pair, which the fields' pass left out.
        for value in upgrades {
            out.extend_from_slice(b"Upgrade: ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Connection: upgrade\r\n\r\n");
        return;
    }
    match head.framing {
        Framing::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            match length_digits {
                // The length came from them, so they are its decimal already.
                Some(digits) => out.extend_from_slice(digits),
                None => push_decimal(out, n),
            }
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked if !head.dechunk => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n")
        }
        Framing::UntilClose if head.enchunk => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n")
        }
        _ => {}
    }
    if head.client_closes {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if client.minor_version == 0 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

mod fast;
mod memo;

pub use memo::HeadMemo;

// The reference reader and the checks against it: for the tests, and for the fuzz targets
// through the `fuzz-reference` feature (which brings in httparse).
#[cfg(any(test, feature = "fuzz-reference"))]
pub mod reference;

#[cfg(any(test, feature = "fuzz-reference"))]
pub mod agree;

#[cfg(test)]
mod equivalence;

#[cfg(test)]
mod tests {
    use super::*;

    const GET11: ClientSide = ClientSide {
        head_request: false,
        minor_version: 1,
        wants_close: false,
        upgrade: false,
    };

    fn parse(
        raw: &str,
        client: ClientSide,
    ) -> Result<Option<(ResponseHead, String)>, ResponseError> {
        let mut out = Vec::new();
        Ok(
            parse_head(raw.as_bytes(), client, &HeadEdits::default(), &mut out)?
                .map(|h| (h, String::from_utf8(out).unwrap())),
        )
    }

    fn parse_with_rules(raw: &str, lines: &[&str], extra: &[u8]) -> String {
        use super::super::rules::Vars;
        use crate::config::headers::{rule, Direction, HeaderRules};
        let rules = HeaderRules::new(
            lines
                .iter()
                .map(|l| rule("ResponseHeader", Direction::Response, l).unwrap())
                .collect(),
        );
        let edits = HeadEdits {
            rules: Some(Applied {
                rules: &rules,
                vars: &Vars {
                    server: "10.0.0.1:80",
                    ..Vars::default()
                },
            }),
            extra_lines: extra,
        };
        let mut out = Vec::new();
        parse_head(raw.as_bytes(), GET11, &edits, &mut out)
            .unwrap()
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn response_rules_cut_runs_and_append_before_the_framing() {
        let raw = "HTTP/1.1 200 OK\r\nServer: nginx\r\nA: 1\r\nX-Twice: 1\r\nB:  2\r\nx-twice: 2\nC: 3\r\nContent-Length: 0\r\n\r\n";
        let out = parse_with_rules(
            raw,
            &[
                "remove Server",
                "set X-Twice once",
                "add X-From $server",
                "set Host h",
            ],
            b"Set-Cookie: s=1\r\n",
        );
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nA: 1\r\nB:  2\r\nC: 3\r\nX-Twice: once\r\nX-From: 10.0.0.1:80\r\nHost: h\r\n\
             Set-Cookie: s=1\r\nContent-Length: 0\r\n\r\n"
        );
        // A 101's rules and extra lines come before its Upgrade pair.
        let raw = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nServer: x\r\n\r\n";
        let asked = ClientSide {
            upgrade: true,
            ..GET11
        };
        use super::super::rules::Vars;
        use crate::config::headers::{rule, Direction, HeaderRules};
        let rules = HeaderRules::new(vec![rule(
            "ResponseHeader",
            Direction::Response,
            "remove server",
        )
        .unwrap()]);
        let edits = HeadEdits {
            rules: Some(Applied {
                rules: &rules,
                vars: &Vars::default(),
            }),
            extra_lines: b"",
        };
        let mut out = Vec::new();
        parse_head(raw.as_bytes(), asked, &edits, &mut out)
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        );
    }

    #[test]
    fn many_fields_are_kept_and_too_many_refused() {
        let fields: String = (0..60).map(|i| format!("X-F{i}: {i}\r\n")).collect();
        let raw = format!("HTTP/1.1 200 OK\r\n{fields}Content-Length: 2\r\n\r\nok");
        let (h, out) = parse(&raw, GET11).unwrap().unwrap();
        assert_eq!(h.framing, Framing::Length(2));
        assert!(
            out.contains("X-F0: 0\r\n") && out.contains("X-F59: 59\r\n"),
            "{out}"
        );
        let fields: String = (0..MAX_HEADERS)
            .map(|i| format!("X-F{i}: {i}\r\n"))
            .collect();
        let raw = format!("HTTP/1.1 200 OK\r\n{fields}Content-Length: 2\r\n\r\nok");
        assert_eq!(parse(&raw, GET11), Err(ResponseError::Malformed));
    }

    #[test]
    fn token_and_text_scans_match_byte_by_byte_ones() {
        // Every byte at every place of a name or value long enough for whole words.
        for b in 0..=255u8 {
            for at in 0..20 {
                let mut name = b"Abc-Def_9.xYz-Content-Length".to_vec();
                name[at] = b;
                let naive = name.iter().position(|&c| !TOKEN[usize::from(c)]);
                assert_eq!(token_len(&name), naive, "{b:#x} at {at}");
                let naive = name
                    .iter()
                    .position(|&c| !text_byte(c))
                    .unwrap_or(name.len());
                assert_eq!(skip_text(&name, 0), naive, "{b:#x} at {at}");
            }
        }
    }

    #[test]
    fn content_length_response() {
        let (h, out) = parse(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
            GET11,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Length(5));
        assert_eq!(h.head_len, 46);
        assert!(!h.backend_closes && !h.client_closes);
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nX-A: b\r\nContent-Length: 5\r\n\r\n"
        );
    }

    #[test]
    fn partial_head_waits() {
        assert_eq!(parse("HTTP/1.1 200 OK\r\nContent-Le", GET11).unwrap(), None);
    }

    #[test]
    fn no_body_for_head_204_304() {
        let head = ClientSide {
            head_request: true,
            ..GET11
        };
        let (h, out) = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", head)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::None);
        assert!(
            out.contains("Content-Length: 10\r\n"),
            "HEAD keeps the length of the GET body"
        );
        for s in ["204 No Content", "304 Not Modified"] {
            let (h, _) = parse(&format!("HTTP/1.1 {s}\r\n\r\n"), GET11)
                .unwrap()
                .unwrap();
            assert_eq!(h.framing, Framing::None);
        }
    }

    #[test]
    fn interim_responses_are_skipped() {
        let raw = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let (h, out) = parse(raw, GET11).unwrap().unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.head_len, raw.len());
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"));
    }

    #[test]
    fn chunked_passes_through_for_1_1_and_is_dechunked_for_1_0() {
        let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (h, out) = parse(raw, GET11).unwrap().unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        assert!(!h.dechunk && out.contains("Transfer-Encoding: chunked\r\n"));
        let old = ClientSide {
            minor_version: 0,
            ..GET11
        };
        let (h, out) = parse(raw, old).unwrap().unwrap();
        assert!(h.dechunk && h.client_closes && !out.contains("chunked"));
    }

    #[test]
    fn close_delimited_goes_chunked_to_1_1_clients_and_closes_the_others() {
        let raw = "HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\n";
        let (h, out) = parse(raw, GET11).unwrap().unwrap();
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(h.backend_closes && h.enchunk && !h.client_closes);
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        let old = ClientSide {
            minor_version: 0,
            ..GET11
        };
        let closing = ClientSide {
            wants_close: true,
            ..GET11
        };
        for client in [old, closing] {
            let (h, out) = parse(raw, client).unwrap().unwrap();
            assert!(h.backend_closes && !h.enchunk && h.client_closes);
            assert!(!out.contains("chunked") && out.contains("Connection: close\r\n"));
        }
    }

    #[test]
    fn backend_connection_header_names_are_dropped() {
        let raw = "HTTP/1.1 200 OK\r\nConnection: x-internal, keep-alive\r\nX-Internal: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n";
        let (_, out) = parse(raw, GET11).unwrap().unwrap();
        assert!(!out.to_ascii_lowercase().contains("internal"));
        assert!(!out.contains("Keep-Alive"));
    }

    #[test]
    fn kept_lines_go_as_received_and_bare_line_feeds_become_crlf() {
        // Neighbouring lines as received (spacing included), the Connection line between
        // them cut out, the proxy's framing appended.
        let raw = "HTTP/1.1 200 OK\r\nA:1\r\nB:  two  \r\nConnection: keep-alive\r\nC: 3\r\nContent-Length: 0\r\nD: 4\r\n\r\n";
        let (_, out) = parse(raw, GET11).unwrap().unwrap();
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nA:1\r\nB:  two  \r\nC: 3\r\nD: 4\r\nContent-Length: 0\r\n\r\n"
        );
        // A bare LF (accepted by the parser) never reaches the client, wherever it is:
        // between fields, ending the last field, ending the head.
        for raw in [
            "HTTP/1.1 200 OK\r\nA: 1\nB: 2\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nA: 1\r\nB: 2\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nA: 1\r\nB: 2\r\n\n",
            "HTTP/1.1 200 OK\nContent-Length: 0\nA: 1\nB: 2\n\n",
        ] {
            let (h, out) = parse(raw, GET11).unwrap().unwrap();
            assert_eq!(h.head_len, raw.len());
            assert!(
                out.contains("\r\nA: 1\r\nB: 2\r\n") && out.ends_with("Content-Length: 0\r\n\r\n"),
                "{raw:?} gave {out:?}"
            );
            assert_eq!(
                out.matches('\n').count(),
                out.matches("\r\n").count(),
                "{out:?}"
            );
        }
    }

    #[test]
    fn http_1_0_backend_closes_unless_keep_alive() {
        let (h, _) = parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", GET11)
            .unwrap()
            .unwrap();
        assert!(h.backend_closes);
        let (h, _) = parse(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            GET11,
        )
        .unwrap()
        .unwrap();
        assert!(!h.backend_closes);
    }

    #[test]
    fn attack_conflicting_lengths() {
        assert_eq!(
            parse(
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                GET11
            ),
            Err(ResponseError::BadContentLength)
        );
        assert_eq!(
            parse(
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                GET11
            ),
            Err(ResponseError::BadContentLength)
        );
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", GET11),
            Err(ResponseError::BadContentLength)
        );
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", GET11),
            Err(ResponseError::BadContentLength)
        );
        assert_eq!(
            parse(
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                GET11
            ),
            Err(ResponseError::LengthAndTransferEncoding)
        );
    }

    #[test]
    fn attack_obs_fold_and_bad_bytes() {
        assert_eq!(
            parse(
                "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
                GET11
            ),
            Err(ResponseError::Malformed)
        );
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nX A: a\r\n\r\n", GET11),
            Err(ResponseError::Malformed)
        );
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n", GET11),
            Err(ResponseError::Malformed)
        );
        assert_eq!(
            parse("garbage\r\n\r\n", GET11),
            Err(ResponseError::Malformed)
        );
        assert_eq!(
            parse("HTTP/1.1 20 OK\r\n\r\n", GET11),
            Err(ResponseError::Malformed)
        );
    }

    #[test]
    fn switching_protocols_only_answers_an_upgrade() {
        let raw = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n";
        assert_eq!(parse(raw, GET11), Err(ResponseError::Malformed));
        let asked = ClientSide {
            upgrade: true,
            ..GET11
        };
        let (h, out) = parse(raw, asked).unwrap().unwrap();
        assert!(h.upgrade);
        assert_eq!(
            out,
            "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        );
        let nameless = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
        assert_eq!(parse(nameless, asked), Err(ResponseError::Malformed));
    }

    #[test]
    fn transfer_codings_other_than_chunked_are_refused() {
        for codings in [
            "gzip",
            "gzip, chunked",
            "chunked, chunked",
            "identity",
            "chunked\r\nTransfer-Encoding: chunked",
        ] {
            let raw = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {codings}\r\n\r\n");
            assert_eq!(
                parse(&raw, GET11),
                Err(ResponseError::UnsupportedTransferEncoding),
                "{codings:?}"
            );
        }
        let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n";
        let (h, _) = parse(raw, GET11).unwrap().unwrap();
        assert_eq!(h.framing, Framing::Chunked);
    }

    #[test]
    fn no_content_length_where_none_may_be_sent() {
        let (_, out) = parse(
            "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
            GET11,
        )
        .unwrap()
        .unwrap();
        assert!(!out.contains("Content-Length"), "{out}");
        let (_, out) = parse(
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
            GET11,
        )
        .unwrap()
        .unwrap();
        assert!(out.contains("Content-Length: 7\r\n"), "{out}");
    }
}
