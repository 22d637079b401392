//! relay (work in progress).
