//! How an error reads: its message, then each cause once (`what failed: why: why`).
//!
//! The house rule (docs/design.md §9): a cause is either part of an error's message or its
//! [`source()`](std::error::Error::source), never both. So printing the chain repeats
//! nothing, and nothing needs to strip repeated text.

use std::error::Error;
use std::fmt;

/// Displays an error with its chain of causes, joined by `": "`.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

/// The error and its causes as one line (for the attempts table and run reasons).
pub fn chain(e: &(dyn Error + 'static)) -> String {
    Chain(e).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("writing the artifact")]
        Write(#[source] std::io::Error),
        #[error("nothing below")]
        Leaf,
    }

    #[test]
    fn each_cause_once_in_order() {
        let e = Outer::Write(std::io::Error::other("disk full"));
        assert_eq!(chain(&e), "writing the artifact: disk full");
        assert_eq!(chain(&Outer::Leaf), "nothing below");
    }
}
