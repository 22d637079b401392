//! Request text made safe for a log line: what a client sent is never trusted to be
//! printable.
//!
//! The escaping is nginx's for its access log (`escape=default`): `"`, `\`, control bytes and
//! bytes from 0x7F up become `\xHH`, so a quoted field never ends early, a line never breaks
//! and a terminal never receives an escape sequence. Log readers that understand nginx's
//! format read it back unchanged.

/// Appends `text` to `out`, escaped. At most `max` bytes of `text` are used; a longer text is
/// cut there and `...` follows.
pub fn push_escaped(out: &mut Vec<u8>, text: &[u8], max: usize) {
    let (shown, cut) = match text.get(..max) {
        Some(head) if head.len() < text.len() => (head, true),
        _ => (text, false),
    };
    // Most text needs nothing: one pass without branches tells, then one copy.
    if shown
        .iter()
        .fold(true, |clean, &b| clean & !needs_escape(b))
    {
        out.extend_from_slice(shown);
        if cut {
            out.extend_from_slice(b"...");
        }
        return;
    }
    let mut plain = 0;
    for (i, &b) in shown.iter().enumerate() {
        if needs_escape(b) {
            out.extend_from_slice(&shown[plain..i]);
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]);
            plain = i + 1;
        }
    }
    out.extend_from_slice(&shown[plain..]);
    if cut {
        out.extend_from_slice(b"...");
    }
}

/// Appends `text` escaped, or `-` when it is empty (an absent field, as nginx writes it).
pub fn push_field(out: &mut Vec<u8>, text: &[u8], max: usize) {
    if text.is_empty() {
        out.push(b'-');
    } else {
        push_escaped(out, text, max);
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

#[inline]
fn needs_escape(b: u8) -> bool {
    !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(text: &[u8], max: usize) -> String {
        let mut out = Vec::new();
        push_escaped(&mut out, text, max);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn control_bytes_quotes_and_high_bytes_are_escaped_and_long_text_is_cut() {
        assert_eq!(esc(b"/plain/path?q=1", 100), "/plain/path?q=1");
        assert_eq!(
            esc(b"/a\"b\\c\r\n\x1b[31m\x7f\xc3\xa9", 100),
            "/a\\x22b\\x5Cc\\x0D\\x0A\\x1B[31m\\x7F\\xC3\\xA9"
        );
        assert_eq!(esc(b"abcdef", 3), "abc...");
        assert_eq!(esc(b"abc", 3), "abc");
        let mut out = Vec::new();
        push_field(&mut out, b"", 10);
        assert_eq!(out, b"-");
    }
}
