//! The usual response head, read knowing that it is one: complete in the buffer, a final
//! status (200 and up) with a plain reason, CRLF line ends, names of token characters
//! (letters and `-` eight bytes at a time). Such a head cannot be incomplete, so nothing here
//! tells "wait" from "refuse": any doubt hands the buffer to the general reader
//! ([`super::parse_head`]'s own loop), which tells every case apart. What is read is checked
//! as strictly as there, and the lines go through the same [`Fields`] writer, so a head this
//! reader accepts gets the decision, facts and bytes the general one gives it (the
//! `equivalence` tests hold both to the httparse-based reference).
//!
//! The field lines are found by [`scan`], a tight loop that checks each line and classifies
//! its name by length alone, and stops only at the lines the writer must see: those whose
//! name has a hop-by-hop name's length (or every line when the rules drop fields). The lines
//! it passes over are kept lines ending in CRLF, so they join the writer's run as a whole.

use super::{
    text_byte, text_stops, ClientSide, FieldLine, Fields, HeadEdits, ResponseError, ResponseHead,
    StatusLine, HIGH, MAX_HEADERS, TOKEN,
};

/// Parses the head at the start of `buf` when it is the usual kind; `None` when it is not, or
/// not complete, or not valid: the general reader then decides. Unless the head is accepted,
/// `out` is left as it was.
pub(super) fn parse_head(
    buf: &[u8],
    client: ClientSide,
    edits: &HeadEdits<'_>,
    out: &mut Vec<u8>,
) -> Option<Result<ResponseHead, ResponseError>> {
    let mark = out.len();
    let done = complete_head(buf, client, edits, out);
    if !matches!(done, Some(Ok(_))) {
        out.truncate(mark);
    }
    done
}

/// [`parse_head`] without restoring `out` when it gives up.
#[inline(always)]
fn complete_head(
    buf: &[u8],
    client: ClientSide,
    edits: &HeadEdits<'_>,
    out: &mut Vec<u8>,
) -> Option<Result<ResponseHead, ResponseError>> {
    let line = status_line(buf)?;
    let mut fields = Fields::start(buf, &line, client, edits, out);
    // Rules that drop fields must see every name.
    let every = fields.rule_drops.is_some();
    let mut count = 0usize;
    let mut at = line.next;
    let head_end = loop {
        let found = if every {
            scan::<true>(buf, at, &mut count)
        } else {
            scan::<false>(buf, at, &mut count)
        };
        match found? {
            Found::Line { start, colon, end } => {
                // The lines passed over are kept as received.
                fields.keep(buf, at..start, out);
                at = end;
                let field = FieldLine {
                    start,
                    name_end: colon,
                    value: colon + 1..end - 2,
                    end,
                    crlf: true,
                };
                let rest = &buf[colon + 1..end - 2];
                fields.take(buf, &field, &buf[start..colon], || trim_start(rest), out);
            }
            Found::End { start } => {
                fields.keep(buf, at..start, out);
                break start + 2;
            }
        }
    };
    // Counted once at the end: a head over the limit is the general reader's to refuse.
    if count > MAX_HEADERS {
        return None;
    }
    Some(fields.finish(buf, &line, head_end, client, edits, out))
}

/// `value` without the spaces and tabs it starts with.
fn trim_start(value: &[u8]) -> &[u8] {
    let blank = value
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    &value[blank..]
}

/// `HTTP/1.1` or `HTTP/1.0`, a status of 200 to 999, then `\r\n` or a space, an ASCII reason
/// and `\r\n`.
#[inline(always)]
fn status_line(buf: &[u8]) -> Option<StatusLine> {
    let minor = match buf.get(..9)? {
        b"HTTP/1.1 " => 1,
        b"HTTP/1.0 " => 0,
        _ => return None,
    };
    let &[hundreds, tens, units, after] = buf.get(9..13)? else {
        return None;
    };
    // 1xx (interim, 101) and what is no status are the general reader's.
    if !matches!(hundreds, b'2'..=b'9') || !tens.is_ascii_digit() || !units.is_ascii_digit() {
        return None;
    }
    let status =
        u16::from(hundreds - b'0') * 100 + u16::from(tens - b'0') * 10 + u16::from(units - b'0');
    let (reason, verbatim, next) = match after {
        b' ' => {
            // A reason with obs-text goes out empty: the general reader writes that.
            let end = 13 + text_len::<false>(&buf[13..], HIGH);
            if buf.get(end..end + 2) != Some(b"\r\n") {
                return None;
            }
            (13..end, minor == 1, end + 2)
        }
        b'\r' if buf.get(13) == Some(&b'\n') => (12..12, false, 14),
        _ => return None,
    };
    Some(StatusLine {
        start: 0,
        minor,
        status,
        reason,
        verbatim,
        next,
    })
}

/// What [`scan`] stopped at.
enum Found {
    /// A field line ending in CRLF whose name is `buf[start..colon]`, followed by a colon; the
    /// line ends at `end` (after its CRLF).
    Line {
        start: usize,
        colon: usize,
        end: usize,
    },
    /// The empty line that ends the head, at `start`.
    End { start: usize },
}

/// The lengths of the hop-by-hop and framing names (`TE`, `Trailer`, `Upgrade`,
/// `Connection`, `Keep-Alive`, `Content-Length`, `Proxy-Connection`, `Transfer-Encoding`):
/// a name of any other length is none of them (see `super::hop_field`).
const HOP_LENGTHS: u32 = 1 << 2 | 1 << 7 | 1 << 10 | 1 << 14 | 1 << 16 | 1 << 17;

/// Checks the field lines from `at` and passes over those whose name is of no hop-by-hop
/// length (unless `EVERY`), counting each line in `count`; stops at the first other line or
/// at the head's end. `None` at anything the general reader must judge: a bare LF, a line
/// without a name or colon, a bad byte, the buffer's end.
// Out of line: the loop then keeps the head and its constants in registers.
#[inline(never)]
fn scan<const EVERY: bool>(buf: &[u8], at: usize, count: &mut usize) -> Option<Found> {
    // The rest of the buffer from the line's start: its length tells where the line is.
    let mut line = buf.get(at..)?;
    // Counted here, stored once: the loop keeps it in a register.
    let mut lines = *count;
    let found = loop {
        let start = buf.len() - line.len();
        let colon = name_len(line);
        if colon == 0 || line.get(colon) != Some(&b':') {
            break line.starts_with(b"\r\n").then_some(Found::End { start });
        }
        let value = &line[colon + 1..];
        let cr = text_len::<true>(value, 0);
        let Some(rest) = value.get(cr..).and_then(|v| v.strip_prefix(b"\r\n")) else {
            break None;
        };
        lines += 1;
        if EVERY || (colon < 32 && HOP_LENGTHS >> colon & 1 != 0) {
            break Some(Found::Line {
                start,
                colon: start + colon,
                end: buf.len() - rest.len(),
            });
        }
        line = rest;
    };
    *count = lines;
    found
}

/// The length of the run of token characters that starts `s`: letters and `-` sixteen, then
/// eight bytes at a time, any other token character (and the last few bytes of `s`) one at a time.
#[inline(always)]
fn name_len(s: &[u8]) -> usize {
    let mut rest = s;
    // Sixteen at a time first: `Content-Length`, `Last-Modified` and the like take one step.
    while let Some(bytes) = rest.first_chunk::<16>() {
        let (low, high) = bytes.split_at(8);
        let low = not_letter_or_dash(word(low));
        let high = not_letter_or_dash(word(high));
        if low | high == 0 {
            rest = &rest[16..];
            continue;
        }
        // The answers are exact in every byte, so the first is the low word's if it has one.
        let i = if low != 0 {
            (low.trailing_zeros() / 8) as usize
        } else {
            8 + (high.trailing_zeros() / 8) as usize
        };
        if !TOKEN[usize::from(rest[i])] {
            return s.len() - rest.len() + i;
        }
        rest = &rest[i + 1..];
    }
    while let Some(bytes) = rest.first_chunk::<8>() {
        let others = not_letter_or_dash(u64::from_le_bytes(*bytes));
        if others == 0 {
            rest = &rest[8..];
            continue;
        }
        let i = (others.trailing_zeros() / 8) as usize;
        if !TOKEN[usize::from(rest[i])] {
            return s.len() - rest.len() + i;
        }
        rest = &rest[i + 1..];
    }
    let tail = rest.iter().take_while(|&&b| TOKEN[usize::from(b)]).count();
    s.len() - rest.len() + tail
}

/// The length of the run of text bytes (`super::text_byte`: HTAB, SP, VCHAR, obs-text) that
/// starts `s`, ended also by a byte with a bit of `also` (`HIGH`: obs-text ends it too).
/// With `WIDE`, sixteen bytes at a time while they last (field values such as `Date` are two
/// to four words: one test for two words halves the loop's steps); then eight, a tab stepped
/// over; the last few bytes of `s` one at a time. The reason phrase, mostly `OK`, is read
/// without `WIDE`: a first word that stops costs less alone.
#[inline(always)]
fn text_len<const WIDE: bool>(s: &[u8], also: u64) -> usize {
    let mut rest = s;
    while let Some(bytes) = rest.first_chunk::<16>().filter(|_| WIDE) {
        let (low, high) = bytes.split_at(8);
        let (low, high) = (word(low), word(high));
        // Each word's stops are exact up to its own first stop (`text_stops`), so the first
        // stop of the pair is the low word's, or the high word's when the low has none.
        let low_stops = text_stops(low) | low & also;
        let high_stops = text_stops(high) | high & also;
        if low_stops | high_stops == 0 {
            rest = &rest[16..];
            continue;
        }
        let i = if low_stops != 0 {
            (low_stops.trailing_zeros() / 8) as usize
        } else {
            8 + (high_stops.trailing_zeros() / 8) as usize
        };
        if rest[i] != b'\t' {
            return s.len() - rest.len() + i;
        }
        rest = &rest[i + 1..];
    }
    while let Some(bytes) = rest.first_chunk::<8>() {
        let w = u64::from_le_bytes(*bytes);
        let stops = text_stops(w) | w & also;
        if stops == 0 {
            rest = &rest[8..];
            continue;
        }
        let i = (stops.trailing_zeros() / 8) as usize;
        if rest[i] != b'\t' {
            return s.len() - rest.len() + i;
        }
        rest = &rest[i + 1..];
    }
    let tail = rest
        .iter()
        .take_while(|&&b| text_byte(b) && b & also as u8 == 0)
        .count();
    s.len() - rest.len() + tail
}

/// The little-endian word of `bytes`, eight of them.
#[inline(always)]
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(bytes);
    u64::from_le_bytes(w)
}

/// The high bit of each byte of `w` that is neither an ASCII letter nor `-`. The sums stay
/// inside each byte (the bytes' high bits are cleared first), so every byte's answer is
/// exact.
#[inline(always)]
fn not_letter_or_dash(w: u64) -> u64 {
    const fn each(b: u8) -> u64 {
        u64::from_le_bytes([b; 8])
    }
    let low = w & each(0x7f);
    // Setting 0x20 maps exactly the letters of either case onto `a`..=`z`.
    let folded = low | each(0x20);
    let from_a = folded + each(0x80 - b'a');
    let past_z = folded + each(0x80 - b'z' - 1);
    let not_dash = (low ^ each(b'-')) + each(0x7f);
    ((!from_a | past_z) & not_dash | w) & each(0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_scans_match_byte_by_byte_ones() {
        // Every byte at every place of a name or value long enough for whole words, and the
        // same cut short by the end of the buffer (where the words are padded with zeros).
        let naive = |s: &[u8], stop: &dyn Fn(u8) -> bool| {
            s.iter().position(|&c| stop(c)).unwrap_or(s.len())
        };
        let not_token = |c: u8| !TOKEN[usize::from(c)];
        let not_text = |c: u8| !text_byte(c);
        let not_ascii_text = |c: u8| !text_byte(c) || c >= 0x80;
        for b in 0..=255u8 {
            let base = b"Abc-Def_9.xYz-Content-Length\t1 \tx";
            // Every place: both words of the sixteen-byte steps and the eight-byte one after.
            for at in 0..base.len() {
                let mut s = base.to_vec();
                s[at] = b;
                for end in 0..=s.len() {
                    let s = &s[..end];
                    let name = name_len(s);
                    assert_eq!(name, naive(s, &not_token), "{b:#x} at {at}, {end}");
                    let text = naive(s, &not_text);
                    assert_eq!(text_len::<true>(s, 0), text, "{b:#x} at {at}, {end}");
                    assert_eq!(text_len::<false>(s, 0), text, "{b:#x} at {at}, {end}");
                    let ascii = naive(s, &not_ascii_text);
                    assert_eq!(text_len::<true>(s, HIGH), ascii, "{b:#x} at {at}, {end}");
                    assert_eq!(text_len::<false>(s, HIGH), ascii, "{b:#x} at {at}, {end}");
                }
            }
        }
    }

    #[test]
    fn the_scan_passes_over_only_lines_of_no_hop_by_hop_length() {
        let head = b"Server: x\r\nDate: d\r\nConnection: close\r\nETag: e\r\n\r\n";
        let mut count = 0;
        let Some(Found::Line { start, colon, end }) = scan::<false>(head, 0, &mut count) else {
            panic!("no line");
        };
        assert_eq!(&head[start..colon], b"Connection");
        assert_eq!(&head[start..end], b"Connection: close\r\n");
        assert_eq!(count, 3);
        let Some(Found::End { start }) = scan::<false>(head, end, &mut count) else {
            panic!("no end");
        };
        assert_eq!(start, head.len() - 2);
        assert_eq!(count, 4);
        let Some(Found::Line { start, .. }) = scan::<true>(head, 0, &mut count) else {
            panic!("no line");
        };
        assert_eq!(start, 0);
        // Anything unusual is left to the general reader.
        for bad in [
            &b"Server: x\nDate: d\r\n\r\n"[..],
            b"Server: x\r\nDate: d\r\n",
            b"Server: x\r\nDate: d\r\n\r",
            b"Server : x\r\n\r\n",
            b" Server: x\r\n\r\n",
            b"Server: x\ry\r\n\r\n",
            b"Server: x\x00\r\n\r\n",
            b"Server: x\x7f\r\n\r\n",
            b"Server",
            b"",
        ] {
            assert!(
                scan::<false>(bad, 0, &mut count).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
