//! reactor (work in progress).
