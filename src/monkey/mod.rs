//! The Monkey adapter (work in progress).

pub mod sys;

#[cfg(test)]
mod layout_tests;
