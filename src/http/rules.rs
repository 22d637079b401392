//! Header rules at run time: the values of the variables for one request, and the field
//! lines a compiled [`HeaderRules`] appends. The request writer
//! ([`super::request::ProxyRequest::write_upstream`]) and the response head rewrite
//! ([`super::response::parse_head`]) call these only for an entry that has rules.

use std::net::IpAddr;

use super::headers::push_ip;
use crate::config::headers::{HeaderRule, HeaderRules, ValuePart, Variable};

/// A per-request id: a prefix random per worker (so ids of different workers and
/// processes do not collide) and the worker's serial number of the request, written as 32
/// hex digits. Zero when the entry's rules do not use `$request_id` (then none is made).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestId {
    /// Random per worker thread.
    pub prefix: u64,
    /// The worker's count of ids made.
    pub serial: u64,
}

impl RequestId {
    /// Appends the id as 32 lowercase hex digits.
    pub fn push(self, out: &mut Vec<u8>) {
        // Built on the stack, a byte at a time, and appended once: a push per digit checked
        // the capacity 32 times (about 700 instructions for a request's two ids, measured
        // under callgrind; a digit at a time from the stack still 465).
        let mut text = [0u8; 32];
        let bytes = self.prefix.to_be_bytes().into_iter();
        for (pair, byte) in text
            .chunks_exact_mut(2)
            .zip(bytes.chain(self.serial.to_be_bytes()))
        {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
        }
        out.extend_from_slice(&text);
    }
}

/// Every byte as two lowercase hex digits: one lookup per byte of an id.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let digits = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        pairs[b] = [digits[b >> 4], digits[b & 15]];
        b += 1;
    }
    pairs
};

/// The values the variables stand for in one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars<'a> {
    /// `$client_addr`: the connection's peer (nothing is written without one).
    pub client: Option<IpAddr>,
    /// `$entry`: the entry's name.
    pub entry: &'a str,
    /// `$server`: the server's `host:port` (empty while none is chosen).
    pub server: &'a str,
    /// `$request_id`.
    pub request_id: RequestId,
}

/// An entry's rules of one direction with the values of one request: two references, so
/// that passing "no rules" (`None`) costs the request path one word.
#[derive(Debug, Clone, Copy)]
pub struct Applied<'a> {
    /// The compiled rules (never empty: an entry without rules passes no `Applied`).
    pub rules: &'a HeaderRules,
    /// The variables' values.
    pub vars: &'a Vars<'a>,
}

impl Applied<'_> {
    /// Whether a received field named `name` is not passed on.
    pub fn drops(&self, name: &[u8]) -> bool {
        self.rules.drops(name)
    }

    /// Appends the rules' field lines (a response's).
    pub fn write_lines(&self, out: &mut Vec<u8>) {
        for rule in self.rules.lines() {
            self.write_line(rule, out);
        }
    }

    /// Appends the rules' field lines but `Host`, which a request writes apart
    /// ([`Applied::write_host`]).
    pub fn write_request_lines(&self, out: &mut Vec<u8>) {
        for rule in self.rules.lines_but_host() {
            self.write_line(rule, out);
        }
    }

    /// Appends the `set Host` line if a rule sets it; false when none does.
    pub fn write_host(&self, out: &mut Vec<u8>) -> bool {
        match self.rules.host() {
            Some(rule) => {
                self.write_line(rule, out);
                true
            }
            None => false,
        }
    }

    fn write_line(&self, rule: &HeaderRule, out: &mut Vec<u8>) {
        out.extend_from_slice(rule.name.as_bytes());
        out.extend_from_slice(b": ");
        for part in &rule.value {
            match part {
                ValuePart::Text(text) => out.extend_from_slice(text.as_bytes()),
                ValuePart::Var(Variable::ClientAddr) => {
                    if let Some(ip) = self.vars.client {
                        push_ip(out, ip);
                    }
                }
                ValuePart::Var(Variable::Entry) => {
                    out.extend_from_slice(self.vars.entry.as_bytes())
                }
                ValuePart::Var(Variable::Server) => {
                    out.extend_from_slice(self.vars.server.as_bytes())
                }
                ValuePart::Var(Variable::RequestId) => self.vars.request_id.push(out),
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::headers::{rule, Direction};

    #[test]
    fn lines_expand_their_variables() {
        let rules = HeaderRules::new(
            [
                "set X-Who $client_addr via $entry to $server",
                "add X-Id $request_id",
                "set Host $server",
            ]
            .iter()
            .map(|t| rule("RequestHeader", Direction::Request, t).unwrap())
            .collect(),
        );
        let applied = Applied {
            rules: &rules,
            vars: &Vars {
                client: Some("2001:db8::7".parse().unwrap()),
                entry: "api",
                server: "10.0.0.1:80",
                request_id: RequestId {
                    prefix: 0xabc,
                    serial: 17,
                },
            },
        };
        let mut out = Vec::new();
        applied.write_request_lines(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "X-Who: 2001:db8::7 via api to 10.0.0.1:80\r\n\
             X-Id: 0000000000000abc0000000000000011\r\n"
        );
        let mut host = Vec::new();
        assert!(applied.write_host(&mut host));
        assert_eq!(host, b"Host: 10.0.0.1:80\r\n");
    }
}
