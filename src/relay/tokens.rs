//! How the worker's tokens name their owners (hosts treat tokens as opaque; see
//! [`crate::reactor::Token`]).

use std::os::fd::RawFd;

use crate::reactor::Token;

/// Tokens with this bit name an idle upstream connection by its descriptor; the others an
/// exchange by slot (low 32 bits) and serial number (the 30 bits above, never 0). Bit 62 is
/// never set (see [`Token`]).
pub(super) const IDLE: u64 = 1 << 63;

/// Serial numbers stay below this (30 bits).
pub(super) const SERIAL_LIMIT: u32 = 1 << 30;

/// The token idle connection `fd` is watched under.
pub(super) fn idle_token(fd: RawFd) -> Token {
    Token::from_raw(IDLE | u64::from(fd as u32))
}

/// The token of the exchange in `slot` with serial number `serial` (the slot in the low 32
/// bits, which [`Token::index`] returns).
pub(super) fn exchange_token(slot: usize, serial: u32) -> Token {
    Token::from_raw((u64::from(serial) << 32) | slot as u64)
}

/// Whom a token names.
pub(super) enum Owner {
    /// The idle upstream connection on this descriptor.
    Idle(RawFd),
    /// The exchange in this slot, if its serial number is this.
    Exchange { slot: usize, serial: u32 },
}

pub(super) fn owner(token: Token) -> Owner {
    let raw = token.raw();
    if raw & IDLE != 0 {
        Owner::Idle(raw as u32 as RawFd)
    } else {
        Owner::Exchange {
            slot: raw as u32 as usize,
            serial: (raw >> 32) as u32,
        }
    }
}
