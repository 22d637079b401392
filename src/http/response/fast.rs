//! The usual response head, read knowing that it is one: complete in the buffer, a final
//! status (200 and up) with a plain reason, CRLF line ends, names of token characters
//! (letters and `-` eight bytes at a time). Such a head cannot be incomplete, so nothing here
//! tells "wait" from "refuse": any doubt hands the buffer to the general reader
//! ([`super::parse_head`]'s own loop), which tells every case apart. What is read is checked
//! as strictly as there, and the lines go through the same [`Fields`] writer, so a head this
//! reader accepts gets the decision, facts and bytes the general one gives it (the
//! `equivalence` tests hold both to the httparse-based reference).

use super::{
    skip_text, ClientSide, FieldLine, Fields, HeadEdits, ResponseError, ResponseHead, StatusLine,
    MAX_HEADERS, TOKEN,
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
    let mut count = 0usize;
    let mut at = line.next;
    let head_end = loop {
        match field_line(buf, at)? {
            Ok((field, name, rest)) => {
                count += 1;
                at = field.end;
                let value = || trim_start(rest);
                fields.take(buf, &field, name, value, out);
            }
            Err(end) => break end,
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
            let end = skip_text(buf, 13);
            // A reason with obs-text goes out empty: the general reader writes that.
            if !matches!(buf.get(end..end + 2), Some(b"\r\n")) || !buf[13..end].is_ascii() {
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

/// Reads the field line at `at`, ending in CRLF, with its name and what follows the colon
/// (the value, not trimmed): `Some(Err(end))` at the empty line that ends the head, `None`
/// for anything else the general reader must judge.
#[inline(always)]
#[allow(clippy::type_complexity)]
fn field_line(buf: &[u8], at: usize) -> Option<Result<(FieldLine, &[u8], &[u8]), usize>> {
    // Indices in the line from here: what is proven about them spares bounds checks.
    let line = buf.get(at..)?;
    let colon = name_end(line, 0);
    if colon == 0 || line.get(colon) != Some(&b':') {
        return match line.get(..2) {
            Some(b"\r\n") => Some(Err(at + 2)),
            _ => None,
        };
    }
    // Spaces and tabs are text: the value's start is found only when it is read.
    let from = colon + 1;
    let to = skip_text(line, from);
    if line.get(to + 1) != Some(&b'\n') || line[to] != b'\r' {
        return None;
    }
    // The value keeps any trailing whitespace: every reader of a value trims it (the
    // framing rules, `Connection` and `Transfer-Encoding` lists), and a kept line goes
    // as received. `value` is the rest of the line (it is read only through the slice,
    // and a line ending in CRLF is passed on whole).
    let field = FieldLine {
        start: at,
        name_end: at + colon,
        value: at + from..at + to,
        end: at + to + 2,
        crlf: true,
    };
    Some(Ok((field, &line[..colon], &line[from..to])))
}

/// The first index from `at` whose byte is no token character (`buf.len()` at most): letters
/// and `-` eight bytes at a time, any other token character (and the last few bytes of the
/// buffer) byte by byte.
#[inline(always)]
fn name_end(buf: &[u8], mut at: usize) -> usize {
    while let Some(bytes) = buf.get(at..at + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(bytes);
        let others = not_letter_or_dash(u64::from_le_bytes(w));
        if others != 0 {
            at += (others.trailing_zeros() / 8) as usize;
            break;
        }
        at += 8;
    }
    while buf.get(at).is_some_and(|&b| TOKEN[usize::from(b)]) {
        at += 1;
    }
    at
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
    fn name_scan_matches_the_token_table() {
        // Every byte at every place of a name long enough for whole words, and names cut
        // short by the end of the buffer.
        for b in 0..=255u8 {
            for at in 0..20 {
                let mut name = b"Abc-Def_9.xYz-Content-Length".to_vec();
                name[at] = b;
                let naive = name
                    .iter()
                    .position(|&c| !TOKEN[usize::from(c)])
                    .unwrap_or(name.len());
                assert_eq!(name_end(&name, 0), naive, "{b:#x} at {at}");
                for end in 0..name.len() {
                    let naive = name[..end]
                        .iter()
                        .position(|&c| !TOKEN[usize::from(c)])
                        .unwrap_or(end);
                    assert_eq!(name_end(&name[..end], 0), naive, "{b:#x} at {at}, {end}");
                }
            }
        }
    }
}
