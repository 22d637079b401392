//! The Monkey adapter (work in progress).
