//! Response body framing (RFC 9112 §6.3) and the incremental reader that finds the body's end.

use super::chunked::{ChunkError, ChunkedDecoder};

/// How a response body is delimited, decided from the response head and the request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD request, 1xx, 204, 304).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the backend closes the connection.
    UntilClose,
}

/// Tracks how much of a response body has been seen and where it ends.
#[derive(Debug, Clone)]
pub struct BodyReader {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Empty,
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

/// The result of feeding body bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// How many of the given bytes belong to the body.
    pub used: usize,
    /// Whether the body is complete.
    pub done: bool,
}

impl BodyReader {
    /// A reader for a body delimited by `framing`.
    pub fn new(framing: Framing) -> BodyReader {
        let kind = match framing {
            Framing::None | Framing::Length(0) => Kind::Empty,
            Framing::Length(n) => Kind::Length(n),
            Framing::Chunked => Kind::Chunked(ChunkedDecoder::default()),
            Framing::UntilClose => Kind::UntilClose,
        };
        BodyReader { kind }
    }

    /// Whether the body is complete without reading anything more.
    pub fn is_done(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Length(n) => *n == 0,
            Kind::Chunked(d) => d.is_done(),
            Kind::UntilClose => false,
        }
    }

    /// Whether the body ends only when the connection closes.
    pub fn until_close(&self) -> bool {
        matches!(self.kind, Kind::UntilClose)
    }

    /// What a body delimited by a length has left (`None` for every other framing).
    pub fn length_left(&self) -> Option<u64> {
        match self.kind {
            Kind::Length(n) => Some(n),
            _ => None,
        }
    }

    /// Counts `n` bytes of a body delimited by a length that went by without being fed
    /// (moved by the kernel, never seen here); at most what [`BodyReader::length_left`] said.
    pub fn pass(&mut self, n: u64) {
        if let Kind::Length(left) = &mut self.kind {
            *left = left.saturating_sub(n);
        }
    }

    /// Consumes body bytes; data bytes (chunked framing removed) go to `on_data`.
    pub fn feed(
        &mut self,
        input: &[u8],
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<Fed, ChunkError> {
        match &mut self.kind {
            Kind::Empty => Ok(Fed {
                used: 0,
                done: true,
            }),
            Kind::Length(left) => {
                let n = (*left).min(input.len() as u64) as usize;
                on_data(&input[..n]);
                *left -= n as u64;
                Ok(Fed {
                    used: n,
                    done: *left == 0,
                })
            }
            Kind::Chunked(d) => {
                let used = d.feed(input, on_data)?;
                Ok(Fed {
                    used,
                    done: d.is_done(),
                })
            }
            Kind::UntilClose => {
                on_data(input);
                Ok(Fed {
                    used: input.len(),
                    done: false,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_stops_at_the_end() {
        let mut r = BodyReader::new(Framing::Length(3));
        assert_eq!(
            r.feed(b"ab", |_| {}).unwrap(),
            Fed {
                used: 2,
                done: false
            }
        );
        assert_eq!(
            r.feed(b"cdef", |_| {}).unwrap(),
            Fed {
                used: 1,
                done: true
            }
        );
    }

    #[test]
    fn bytes_passed_unseen_count_against_a_length_only() {
        let mut r = BodyReader::new(Framing::Length(10));
        assert_eq!(r.length_left(), Some(10));
        r.pass(4);
        assert_eq!(r.length_left(), Some(6));
        assert_eq!(r.feed(b"abcdefgh", |_| {}).unwrap().used, 6);
        assert!(r.is_done());
        let mut c = BodyReader::new(Framing::Chunked);
        c.pass(4);
        assert_eq!(c.length_left(), None);
        assert!(!c.is_done());
        assert_eq!(BodyReader::new(Framing::UntilClose).length_left(), None);
        assert_eq!(BodyReader::new(Framing::None).length_left(), None);
    }

    #[test]
    fn empty_bodies_are_done_at_once() {
        assert!(BodyReader::new(Framing::None).is_done());
        assert!(BodyReader::new(Framing::Length(0)).is_done());
        assert!(!BodyReader::new(Framing::UntilClose).is_done());
    }
}
