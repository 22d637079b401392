//! An incremental decoder of the chunked transfer coding (RFC 9112 §7.1).
//!
//! The relay forwards chunked bodies as they arrive; this decoder only has to find where the
//! message ends (and, for HTTP/1.0 clients, which bytes are data). It never buffers: each call
//! looks at the bytes given and reports how many belong to the message.

/// Largest chunk size accepted (2^62): larger sizes are an attack, not a body.
const MAX_CHUNK: u64 = 1 << 62;

/// Where the decoder is inside the chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size (`digits` seen so far).
    Size { digits: u32 },
    /// After the size: optional whitespace then `;` extensions until CR.
    Extension,
    /// Expecting LF after the CR ending a size line.
    SizeLf,
    /// Inside chunk data with this many bytes left.
    Data(u64),
    /// Expecting CR after chunk data.
    DataCr,
    /// Expecting LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer field line.
    Trailer,
    /// Expecting LF after a trailer line's CR.
    TrailerLf,
    /// Expecting the LF of the final empty line.
    EndLf,
    /// The whole body has been seen.
    Done,
}

/// The chunked body is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkError;

/// Incremental chunked-body decoder.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            size: 0,
        }
    }
}

impl ChunkedDecoder {
    /// Whether the terminating chunk and trailer section have been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes bytes of `input` that belong to the message; returns how many. Data bytes are
    /// reported to `on_data` as sub-slices of `input`. Stops at the end of the message, so a
    /// return value below `input.len()` with [`is_done`](Self::is_done) means extra bytes
    /// followed the message.
    pub fn feed(
        &mut self,
        input: &[u8],
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Size { digits } => match hex_value(b) {
                    Some(v) => {
                        if digits >= 16 {
                            return Err(ChunkError);
                        }
                        self.size = (self.size << 4) | u64::from(v);
                        if self.size > MAX_CHUNK {
                            return Err(ChunkError);
                        }
                        self.state = State::Size { digits: digits + 1 };
                    }
                    None if digits == 0 => return Err(ChunkError),
                    None if b == b'\r' => self.state = State::SizeLf,
                    None if b == b';' || b == b' ' || b == b'\t' => self.state = State::Extension,
                    None => return Err(ChunkError),
                },
                State::Extension => match b {
                    b'\r' => self.state = State::SizeLf,
                    b'\n' | 0 => return Err(ChunkError),
                    _ => {}
                },
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError);
                    }
                    self.state = if self.size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data(self.size)
                    };
                    self.size = 0;
                }
                State::Data(left) => {
                    let n = (left.min((input.len() - i) as u64)) as usize;
                    on_data(&input[i..i + n]);
                    i += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data(left)
                    };
                    continue;
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkError);
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError);
                    }
                    self.state = State::Size { digits: 0 };
                }
                State::TrailerStart => match b {
                    b'\r' => self.state = State::EndLf,
                    b'\n' => return Err(ChunkError),
                    _ => self.state = State::Trailer,
                },
                State::Trailer => match b {
                    b'\r' => self.state = State::TrailerLf,
                    b'\n' | 0 => return Err(ChunkError),
                    _ => {}
                },
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(ChunkError);
                    }
                    self.state = State::TrailerStart;
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(ChunkError);
                    }
                    self.state = State::Done;
                    return Ok(i + 1);
                }
                State::Done => return Ok(i),
            }
            i += 1;
        }
        Ok(i)
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(input: &[u8], piece: usize) -> Result<(Vec<u8>, usize, bool), ChunkError> {
        let mut d = ChunkedDecoder::default();
        let mut data = Vec::new();
        let mut used = 0;
        for part in input.chunks(piece) {
            let n = d.feed(part, |s| data.extend_from_slice(s))?;
            used += n;
            if d.is_done() {
                break;
            }
        }
        Ok((data, used, d.is_done()))
    }

    #[test]
    fn decodes_across_any_split() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
        for piece in 1..body.len() {
            let (data, used, done) = decode_in_pieces(body, piece).unwrap();
            assert_eq!(data, b"hello world");
            assert_eq!(used, body.len());
            assert!(done);
        }
    }

    #[test]
    fn stops_at_the_end_of_the_message() {
        let mut d = ChunkedDecoder::default();
        let input = b"0\r\n\r\nEXTRA";
        assert_eq!(d.feed(input, |_| {}), Ok(5));
        assert!(d.is_done());
    }

    #[test]
    fn rejects_malformed_sizes() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\nhello",
            b"5\r\nhelloX",
            b"11111111111111111\r\n",
            b"-1\r\n",
        ] {
            let mut d = ChunkedDecoder::default();
            assert!(
                d.feed(bad, |_| {}).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
