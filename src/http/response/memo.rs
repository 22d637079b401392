//! A backend's previous response head, kept to recognise the next one without reading it.
//!
//! A backend that serves the same kind of resource answers with the same head again and
//! again: the same status line, the same fields in the same order, often byte for byte, and
//! otherwise usually different only in its `Date`. [`parse_head`](super::parse_head) is a
//! pure function of the head's bytes, the [`ClientSide`] and the edits, so a head equal to
//! the one before it (for the same client side, with no edits) gets the same decision and
//! the same client head: [`HeadMemo::recall`] compares the bytes (one `memcmp`) and copies
//! the client head it gave last time, instead of checking and classifying every field line
//! again.
//!
//! A head that differs from the previous one only inside a `Date` field's value is
//! recognised too, if the new value is plain (visible ASCII, spaces and tabs: bytes both
//! readers accept in a value and copy as they are) and the previous client head held that
//! line as received, after the received lines before it and nothing else. That field is not
//! one the proxy reads, so its new value goes into the copy at the same place. Anything else
//! (a different length, status, field, or value) is not recognised, and the head is read
//! as usual, then remembered in place of the old one.

use super::{ClientSide, ResponseHead};

/// Longest head remembered: larger heads are rare, and a memo must stay small.
const MAX_MEMO_HEAD: usize = 2048;

/// Heads in a row not recognised after which a memo remembers only now and then.
const GIVE_UP: u32 = 8;

/// While it has given up, a memo remembers one head in this many (a power of two).
const PROBE_EVERY: u32 = 64;

/// Where the `Date` value of the remembered head is, in the backend's head and in the
/// client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DateValue {
    /// The value's bytes in the backend's head (after the colon, up to the line's CR).
    start: usize,
    end: usize,
    /// Where the same bytes start in the client's head.
    out_start: usize,
}

/// Whether the place of the `Date` value is known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum DatePlace {
    /// Not looked for yet: looked for when a head differs from the remembered one first in
    /// a `Date` value.
    #[default]
    Unknown,
    /// The remembered head's client head does not hold its `Date` line as received.
    None,
    /// Found.
    At(DateValue),
}

/// One backend's previous response head and what it made (the module's documentation,
/// `http::response::memo`, says when it is used).
#[derive(Debug, Clone, Default)]
pub struct HeadMemo {
    /// What the head was read as (`None`: nothing remembered).
    head: Option<ResponseHead>,
    /// The client side it was read for (meaningless while `head` is `None`).
    client: ClientSide,
    /// The backend's head, `head_len` bytes.
    received: Vec<u8>,
    /// The client head it gave.
    sent: Vec<u8>,
    /// Where its `Date` value is, once looked for.
    date: DatePlace,
    /// Heads in a row not recognised (see [`HeadMemo::remember`]).
    misses: u32,
    /// Heads not remembered since the memo gave up.
    skipped: u32,
}

impl HeadMemo {
    /// If `buf` starts with the remembered head (or one that differs only in a plain `Date`
    /// value) and `client` is the side it was read for, appends the client head to `out` and
    /// returns what [`parse_head`](super::parse_head) would have. The memo then holds the
    /// new `Date`, so the heads after it are equal again.
    #[inline]
    pub fn recall(
        &mut self,
        buf: &[u8],
        client: ClientSide,
        out: &mut Vec<u8>,
    ) -> Option<ResponseHead> {
        let head = self.head?;
        let len = self.received.len();
        if buf.len() < len {
            // Not all of it yet, or shorter: asked again with more bytes, or read.
            return None;
        }
        let new = &buf[..len];
        if self.client != client || new != self.received.as_slice() && !self.take_new_date(new) {
            self.misses = self.misses.saturating_add(1);
            return None;
        }
        self.misses = 0;
        out.extend_from_slice(&self.sent);
        Some(head)
    }

    /// Remembers `head`, read from the start of `buf` for `client` with no edits, and the
    /// client head `sent` it gave (a head too large to keep, or a `101`, forgets instead).
    ///
    /// After `GIVE_UP` heads in a row that were not recognised, the backend's heads are
    /// taken to change every time (a length, an `ETag`): the memo then remembers only one
    /// head in `PROBE_EVERY`, so that such a backend pays almost nothing for it, and wakes
    /// up when that head's successor is recognised.
    pub fn remember(&mut self, buf: &[u8], client: ClientSide, head: &ResponseHead, sent: &[u8]) {
        if self.misses >= GIVE_UP {
            // Wrapping: 2^32 is a multiple of PROBE_EVERY, so the probes stay evenly spaced.
            self.skipped = self.skipped.wrapping_add(1);
            if self.skipped % PROBE_EVERY != 0 {
                self.head = None;
                return;
            }
        }
        if head.upgrade || head.head_len > MAX_MEMO_HEAD || sent.len() > MAX_MEMO_HEAD {
            self.head = None;
            return;
        }
        self.head = Some(*head);
        self.client = client;
        self.received.clear();
        self.received.extend_from_slice(&buf[..head.head_len]);
        self.sent.clear();
        self.sent.extend_from_slice(sent);
        self.date = DatePlace::Unknown;
    }

    /// Whether `new` (as long as the remembered head) differs from it only in a plain value
    /// of a `Date` field; if so, the memo takes the new value in both heads.
    #[inline(never)]
    fn take_new_date(&mut self, new: &[u8]) -> bool {
        let at = match self.date {
            DatePlace::At(at) => at,
            DatePlace::None => return false,
            DatePlace::Unknown => {
                // Looked for only around the first difference: a head that differs in
                // another line first (a length, an `ETag`) costs no search for its `Date`.
                let Some(first) = first_difference(new, &self.received) else {
                    return false;
                };
                match date_value(&self.received, &self.sent, first) {
                    Found::At(at) => {
                        self.date = DatePlace::At(at);
                        at
                    }
                    Found::NotHeld => {
                        self.date = DatePlace::None;
                        return false;
                    }
                    Found::NoDate => return false,
                }
            }
        };
        let value = &new[at.start..at.end];
        if new[..at.start] != self.received[..at.start]
            || new[at.end..] != self.received[at.end..]
            || !value.iter().all(|&b| plain_value_byte(b))
        {
            return false;
        }
        self.received[at.start..at.end].copy_from_slice(value);
        self.sent[at.out_start..at.out_start + value.len()].copy_from_slice(value);
        true
    }
}

/// Where the first byte of `a` that differs from `b`'s (as long) is, sixteen bytes a step
/// (exact chunks: no bounds test in the loop).
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    let b = &b[..a.len()];
    let (mut x, mut y) = (a.chunks_exact(16), b.chunks_exact(16));
    let mut at = 0;
    for (p, q) in (&mut x).zip(&mut y) {
        let p = u128::from_le_bytes(p.try_into().unwrap());
        let q = u128::from_le_bytes(q.try_into().unwrap());
        if p != q {
            return Some(at + ((p ^ q).trailing_zeros() / 8) as usize);
        }
        at += 16;
    }
    let mut tail = x.remainder().iter().zip(y.remainder());
    tail.position(|(p, q)| p != q).map(|i| at + i)
}

/// Visible ASCII, space or tab: a value byte every reader accepts and copies as it is.
fn plain_value_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x21..=0x7e)
}

/// What [`date_value`] found around a difference.
enum Found {
    /// The difference is in a `Date` value the client head holds as received.
    At(DateValue),
    /// It is in a `Date` value, but the client head does not hold that line as received
    /// (dropped, moved or rewritten): no date of this head can be replaced in place.
    NotHeld,
    /// It is not in a `Date` value.
    NoDate,
}

/// Whether the byte at `differs` in `received` is in the value of a `Date` field, and if so,
/// the value's place, provided `sent` holds that line as received right after the received
/// field lines before it, just as received, and after a status line.
fn date_value(received: &[u8], sent: &[u8], differs: usize) -> Found {
    // The line of the difference: a field line, not the status line.
    let Some(line) = received[..differs].iter().rposition(|&b| b == b'\n') else {
        return Found::NoDate;
    };
    let line = line + 1;
    let name = received.get(line..line + 5);
    if differs < line + 5 || !name.is_some_and(|n| n.eq_ignore_ascii_case(b"date:")) {
        return Found::NoDate;
    }
    let (Some(status_end), Some(sent_status_end), Some(line_end)) = (
        line_after(received, 0),
        line_after(sent, 0),
        line_after(received, line),
    ) else {
        return Found::NoDate;
    };
    // The lines before it and the line itself, as received, right after the status line.
    let out_line = sent_status_end + (line - status_end);
    let copied = sent.get(sent_status_end..out_line + (line_end - line));
    if copied != Some(&received[status_end..line_end]) {
        return Found::NotHeld;
    }
    Found::At(DateValue {
        start: line + 5,
        // Without the CRLF (or bare LF) that ends the line.
        end: line_end
            - if received[line_end - 2] == b'\r' {
                2
            } else {
                1
            },
        out_start: out_line + 5,
    })
}

/// The end (past its LF) of the line that starts at `at`.
fn line_after(bytes: &[u8], at: usize) -> Option<usize> {
    let lf = bytes.get(at..)?.iter().position(|&b| b == b'\n')?;
    Some(at + lf + 1)
}

#[cfg(test)]
mod tests {
    use super::super::{parse_head, HeadEdits};
    use super::*;

    const CLIENT: ClientSide = ClientSide {
        head_request: false,
        minor_version: 1,
        wants_close: false,
        upgrade: false,
    };

    const HEAD: &str =
        "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Thu, 03 Dec 2026 14:30:00 GMT\r\n\
        Content-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello";

    /// Reads `raw` as the proxy does without a memo: the head and the client's bytes.
    fn read(raw: &str, client: ClientSide) -> (ResponseHead, Vec<u8>) {
        let mut out = Vec::new();
        let head = parse_head(raw.as_bytes(), client, &HeadEdits::default(), &mut out)
            .unwrap()
            .unwrap();
        (head, out)
    }

    /// A memo that remembers `raw`.
    fn memo_of(raw: &str, client: ClientSide) -> HeadMemo {
        let (head, out) = read(raw, client);
        let mut memo = HeadMemo::default();
        memo.remember(raw.as_bytes(), client, &head, &out);
        memo
    }

    /// Whether the memo recognises `raw`, and if so, that it gives what reading it gives.
    fn recalls_as_read(memo: &mut HeadMemo, raw: &str, client: ClientSide) -> bool {
        let mut out = b"before".to_vec();
        let Some(head) = memo.recall(raw.as_bytes(), client, &mut out) else {
            assert_eq!(out, b"before", "a head not recognised leaves out as it was");
            return false;
        };
        let (want, want_out) = read(raw, client);
        assert_eq!(head, want, "{raw:?}");
        assert_eq!(&out[6..], want_out.as_slice(), "{raw:?}");
        true
    }

    #[test]
    fn the_same_head_again_is_recalled_with_the_bytes_reading_gives() {
        let mut memo = memo_of(HEAD, CLIENT);
        assert!(recalls_as_read(&mut memo, HEAD, CLIENT));
        // The body bytes after the head are not the memo's concern.
        let other_body = HEAD.replace("hello", "world and more");
        assert!(recalls_as_read(&mut memo, &other_body, CLIENT));
    }

    #[test]
    fn a_new_plain_date_is_taken_in_place_and_kept_for_the_next_head() {
        let mut memo = memo_of(HEAD, CLIENT);
        let later = HEAD.replace("14:30:00", "14:30:01");
        assert!(recalls_as_read(&mut memo, &later, CLIENT));
        assert!(recalls_as_read(&mut memo, &later, CLIENT));
        // Back to the first date: again a change of the value only.
        assert!(recalls_as_read(&mut memo, HEAD, CLIENT));
        assert!(recalls_as_read(
            &mut memo,
            &HEAD.replace("Thu, 03", "Fri, 04"),
            CLIENT
        ));
    }

    #[test]
    fn anything_but_a_plain_date_value_is_read_anew() {
        let mut memo = memo_of(HEAD, CLIENT);
        for changed in [
            HEAD.replace("200 OK", "404 NO"),
            HEAD.replace("Length: 5", "Length: 6"),
            HEAD.replace("keep-alive", "close-only"),
            HEAD.replace("Server: nginx", "Server: nginy"),
            HEAD.replace("Date:", "Dade:"),
            // A value with a control byte, or a line end moved into the value.
            HEAD.replace("14:30:00", "14:30\x0100"),
            HEAD.replace("14:30:00 GMT\r\n", "14:30:00\r\nX:abc\r\n"),
            // Longer or shorter than the remembered head.
            HEAD.replace("14:30:00", "14:30:0"),
        ] {
            assert!(!recalls_as_read(&mut memo, &changed, CLIENT), "{changed:?}");
            // Still the remembered head.
            assert!(recalls_as_read(&mut memo, HEAD, CLIENT));
        }
        // Not for another client side.
        for client in [
            ClientSide {
                minor_version: 0,
                ..CLIENT
            },
            ClientSide {
                head_request: true,
                ..CLIENT
            },
            ClientSide {
                wants_close: true,
                ..CLIENT
            },
        ] {
            assert!(!recalls_as_read(&mut memo, HEAD, client));
        }
        // Nor a head cut short.
        assert!(!recalls_as_read(&mut memo, &HEAD[..40], CLIENT));
    }

    #[test]
    fn a_date_the_client_head_does_not_hold_as_received_is_never_replaced() {
        // The backend's Connection names Date: the client head has no Date line.
        // The same head again is recalled; the same one a second later is read again.
        let new_date_is_read = |head: &str| {
            let mut memo = memo_of(head, CLIENT);
            assert!(recalls_as_read(&mut memo, head, CLIENT));
            let later = head.replace("14:30:00", "14:30:01");
            assert!(!recalls_as_read(&mut memo, &later, CLIENT), "{head}");
        };
        new_date_is_read(&HEAD.replace("keep-alive", "date      "));
        // A line dropped before the Date (Keep-Alive is hop-by-hop) moves it in the client
        // head: not replaced either.
        new_date_is_read(&HEAD.replace("Server: nginx", "Keep-Alive: 5"));
        // No Date at all.
        new_date_is_read(&HEAD.replace("Date:", "Dade:"));
    }

    #[test]
    fn heads_after_an_interim_one_or_with_bare_line_feeds_are_recalled_only_as_they_were() {
        let interim = format!("HTTP/1.1 100 Continue\r\n\r\n{HEAD}");
        let mut memo = memo_of(&interim, CLIENT);
        assert!(recalls_as_read(&mut memo, &interim, CLIENT));
        // Its Date follows the interim head, not the status line it is compared with.
        let mut memo = memo_of(&interim, CLIENT);
        assert!(!recalls_as_read(
            &mut memo,
            &interim.replace("14:30:00", "14:30:09"),
            CLIENT
        ));
        // Bare line feeds become CRLF: the Date line is not held as received.
        let bare = HEAD.replace("\r\n", "\n");
        let mut memo = memo_of(&bare, CLIENT);
        assert!(recalls_as_read(&mut memo, &bare, CLIENT));
        assert!(!recalls_as_read(
            &mut memo,
            &bare.replace("14:30:00", "14:30:09"),
            CLIENT
        ));
    }

    #[test]
    fn the_first_difference_is_found_at_every_place_of_a_word_and_of_the_tail() {
        for len in 0..40 {
            let a = vec![b'x'; len];
            assert_eq!(first_difference(&a, &a), None);
            for at in 0..len {
                let mut b = a.clone();
                b[at] = b'y';
                b[len - 1] = b'z';
                assert_eq!(first_difference(&a, &b), Some(at), "len {len}");
            }
        }
    }

    #[test]
    fn a_second_date_line_is_replaced_where_the_client_head_holds_it() {
        let twice = HEAD.replace(
            "Server: nginx\r\n",
            "Date: Thu, 03 Dec 2026 14:29:59 GMT\r\n",
        );
        let mut memo = memo_of(&twice, CLIENT);
        assert!(recalls_as_read(
            &mut memo,
            &twice.replace("14:30:00", "14:30:01"),
            CLIENT
        ));
        // The memo keeps the place it found: the other Date changing is read anew.
        assert!(!recalls_as_read(
            &mut memo,
            &twice.replace("14:29:59", "14:30:01"),
            CLIENT
        ));
        let mut memo = memo_of(&twice, CLIENT);
        assert!(recalls_as_read(
            &mut memo,
            &twice.replace("14:29:59", "14:30:01"),
            CLIENT
        ));
        // Both at once: the first difference's line is taken, the other one differs.
        let both = twice
            .replace("14:29:59", "14:30:03")
            .replace("14:30:00", "14:30:02");
        assert!(!recalls_as_read(&mut memo, &both, CLIENT));
    }

    #[test]
    fn a_backend_whose_heads_always_change_is_remembered_only_now_and_then() {
        let nth = |i: usize| HEAD.replace("Server: nginx", &format!("Server: n{:05}", i));
        let mut memo = HeadMemo::default();
        // Each head read and remembered in turn, none recognised.
        let through = |memo: &mut HeadMemo, raw: &str| {
            if recalls_as_read(memo, raw, CLIENT) {
                return true;
            }
            let (head, out) = read(raw, CLIENT);
            memo.remember(raw.as_bytes(), CLIENT, &head, &out);
            false
        };
        let mut remembered = 0;
        let mut i = 0;
        while i < GIVE_UP as usize + 2 * PROBE_EVERY as usize {
            assert!(!through(&mut memo, &nth(i)));
            remembered += usize::from(memo.head.is_some());
            i += 1;
        }
        // The first GIVE_UP and one in PROBE_EVERY after them.
        assert_eq!(remembered, GIVE_UP as usize + 2);
        // A head remembered by a probe (the last one fed), then recognised: the memo is
        // awake again.
        while memo.head.is_none() {
            assert!(!through(&mut memo, &nth(i)));
            i += 1;
        }
        assert!(through(&mut memo, &nth(i - 1)));
        assert!(!through(&mut memo, &nth(i)));
        assert!(memo.head.is_some(), "awake: the head was remembered");
        assert!(through(&mut memo, &nth(i)));
    }

    #[test]
    fn upgrades_and_large_heads_are_not_remembered() {
        let upgrade = ClientSide {
            upgrade: true,
            ..CLIENT
        };
        let switching = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
            Connection: upgrade\r\n\r\n";
        let memo = memo_of(switching, upgrade);
        assert!(memo.head.is_none());
        let large = HEAD.replace("Server: nginx", &format!("Server: {}", "n".repeat(3000)));
        let mut memo = memo_of(&large, CLIENT);
        assert!(!recalls_as_read(&mut memo, &large, CLIENT));
    }
}
