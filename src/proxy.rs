//! proxy (work in progress).
