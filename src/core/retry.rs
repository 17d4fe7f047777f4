//! Error classes (retryable or permanent) and the retry policy: exponential backoff with
//! full jitter, bounded by attempts and a deadline. Pure: no clocks, no randomness of its own.

use serde::Deserialize;
use std::time::Duration;

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Connect refused or timed out, disconnect, I/O error mid-transfer, server out of space.
    Retryable,
    /// Host-key mismatch, authentication refused, permission denied, missing folder,
    /// invalid configuration: needs an operator.
    Permanent,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Retryable => "retryable",
            ErrorClass::Permanent => "permanent",
        }
    }
}

/// Where a run's attempt stopped: the label of the attempts table, the logs and the
/// metrics (`stage` label). Stored as its [`as_str`](Stage::as_str) text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The state store itself.
    Store,
    /// Opening or reading the register.
    Register,
    /// The spool folder: writing, reading or checking a sealed artifact.
    Spool,
    /// Writing the extract (formats, values).
    Extract,
    /// A configuration the run cannot use (credentials not present, no recipients).
    Config,
    /// The file-name template for this run.
    FileName,
    /// A task of regdrop's own failed (a bug or a killed thread).
    Internal,
    /// Another regdrop process holds the run.
    Busy,
    /// TCP connect.
    Connect,
    /// Host-key pinning.
    HostKey,
    /// Login.
    Auth,
    /// SSH or SFTP transport.
    Transport,
    /// A request the server refused.
    Remote,
    /// The target folder.
    RemoteDir,
    /// The final name (taken, no free version, invalid).
    FinalName,
    /// The commit to the final name.
    Commit,
    /// Size or read-back check.
    Verify,
    /// The process died during the attempt (closed on the next start).
    Interrupted,
    /// Stopped by a shutdown.
    Shutdown,
    /// The mail: its server, size limit, or answer.
    Mail,
    /// The passphrase SMS (the gateway).
    Sms,
}

impl Stage {
    pub const ALL: [Stage; 21] = [
        Stage::Store,
        Stage::Register,
        Stage::Spool,
        Stage::Extract,
        Stage::Config,
        Stage::FileName,
        Stage::Internal,
        Stage::Busy,
        Stage::Connect,
        Stage::HostKey,
        Stage::Auth,
        Stage::Transport,
        Stage::Remote,
        Stage::RemoteDir,
        Stage::FinalName,
        Stage::Commit,
        Stage::Verify,
        Stage::Interrupted,
        Stage::Shutdown,
        Stage::Mail,
        Stage::Sms,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Store => "store",
            Stage::Register => "register",
            Stage::Spool => "spool",
            Stage::Extract => "extract",
            Stage::Config => "config",
            Stage::FileName => "file_name",
            Stage::Internal => "internal",
            Stage::Busy => "busy",
            Stage::Connect => "connect",
            Stage::HostKey => "host_key",
            Stage::Auth => "auth",
            Stage::Transport => "transport",
            Stage::Remote => "remote",
            Stage::RemoteDir => "remote_dir",
            Stage::FinalName => "final_name",
            Stage::Commit => "commit",
            Stage::Verify => "verify",
            Stage::Interrupted => "interrupted",
            Stage::Shutdown => "shutdown",
            Stage::Mail => "mail",
            Stage::Sms => "sms",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Stage::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a stage"))
    }
}

/// Implemented by every adapter's error type.
pub trait Classify {
    fn class(&self) -> ErrorClass;
    fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }
}

/// Backoff policy. Defaults: 30 s base, factor 2, cap 30 min, at most 8 attempts, and no
/// attempt starts later than 6 h after the first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub factor: f64,
    pub cap: Duration,
    pub max_attempts: u32,
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(30),
            factor: 2.0,
            cap: Duration::from_secs(30 * 60),
            max_attempts: 8,
            deadline: Duration::from_secs(6 * 3600),
        }
    }
}

/// The raw, optional overrides a config file may carry (`[retry]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryOverrides {
    /// First delay in seconds.
    pub base_secs: Option<u64>,
    pub factor: Option<f64>,
    /// Largest delay in seconds.
    pub cap_secs: Option<u64>,
    pub max_attempts: Option<u32>,
    /// No new attempt starts this many seconds after the first one.
    pub deadline_secs: Option<u64>,
}

impl RetryPolicy {
    /// Applies overrides on top of `self`.
    pub fn with(mut self, o: &RetryOverrides) -> RetryPolicy {
        if let Some(v) = o.base_secs {
            self.base = Duration::from_secs(v);
        }
        if let Some(v) = o.factor {
            self.factor = v;
        }
        if let Some(v) = o.cap_secs {
            self.cap = Duration::from_secs(v);
        }
        if let Some(v) = o.max_attempts {
            self.max_attempts = v;
        }
        if let Some(v) = o.deadline_secs {
            self.deadline = Duration::from_secs(v);
        }
        self
    }

    /// The upper bound of the delay after failed attempt number `attempt` (1-based):
    /// `min(cap, base * factor^(attempt-1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        // Checked: whatever the numbers (validation bounds them), no overflow or NaN panics.
        let exp = self.factor.powi(attempt.saturating_sub(1).min(64) as i32);
        let secs = (self.base.as_secs_f64() * exp).min(self.cap.as_secs_f64());
        if secs.is_nan() {
            return self.cap;
        }
        Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(self.cap)
    }

    /// Full jitter: a delay uniformly in `[0, ceiling]`; `unit` is a random number in [0,1).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        self.ceiling(attempt).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// What to do after failed attempt `attempt` (1-based), `elapsed` since the first start.
    pub fn next(&self, class: ErrorClass, attempt: u32, elapsed: Duration, unit: f64) -> Next {
        if class == ErrorClass::Permanent {
            return Next::GiveUp(GiveUp::Permanent);
        }
        if attempt >= self.max_attempts {
            return Next::GiveUp(GiveUp::Attempts);
        }
        let wait = self.delay(attempt, unit);
        if elapsed.checked_add(wait).is_none_or(|t| t > self.deadline) {
            return Next::GiveUp(GiveUp::Deadline);
        }
        Next::RetryAfter(wait)
    }

    /// A problem with the policy's numbers, if any.
    pub fn problem(&self) -> Option<&'static str> {
        if self.max_attempts == 0 {
            Some("max_attempts must be at least 1")
        } else if !(self.factor >= 1.0 && self.factor.is_finite()) {
            Some("factor must be a number >= 1.0")
        } else if self.cap < self.base {
            Some("cap_secs must not be smaller than base_secs")
        } else {
            None
        }
    }
}

/// Decision after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    RetryAfter(Duration),
    GiveUp(GiveUp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    Permanent,
    Attempts,
    Deadline,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_read_back_from_their_text() {
        for st in Stage::ALL {
            assert_eq!(st.as_str().parse::<Stage>(), Ok(st));
        }
        assert!("nope".parse::<Stage>().is_err());
    }

    #[test]
    fn extreme_numbers_never_panic() {
        let p = RetryPolicy {
            base: Duration::from_secs(u64::MAX),
            factor: 1e300,
            cap: Duration::from_secs(u64::MAX),
            max_attempts: u32::MAX,
            deadline: Duration::from_secs(u64::MAX),
        };
        for n in [1, 2, 64, u32::MAX] {
            let _ = p.ceiling(n);
            let _ = p.next(ErrorClass::Retryable, n, Duration::MAX, 0.999);
        }
        let nan = RetryPolicy {
            factor: f64::NAN,
            ..RetryPolicy::default()
        };
        assert_eq!(nan.ceiling(3), nan.cap);
    }

    #[test]
    fn ceiling_grows_then_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling(1), Duration::from_secs(30));
        assert_eq!(p.ceiling(2), Duration::from_secs(60));
        assert_eq!(p.ceiling(4), Duration::from_secs(240));
        assert_eq!(p.ceiling(7), Duration::from_secs(1800));
        assert_eq!(p.ceiling(60), Duration::from_secs(1800));
    }

    #[test]
    fn full_jitter_stays_in_bounds() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(3, 0.0), Duration::ZERO);
        assert_eq!(p.delay(3, 0.5), Duration::from_secs(60));
        assert!(p.delay(3, 0.999) < Duration::from_secs(120));
    }

    #[test]
    fn permanent_stops_at_once_and_limits_hold() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.next(ErrorClass::Permanent, 1, Duration::ZERO, 0.5),
            Next::GiveUp(GiveUp::Permanent)
        );
        assert_eq!(
            p.next(ErrorClass::Retryable, 8, Duration::ZERO, 0.5),
            Next::GiveUp(GiveUp::Attempts)
        );
        assert_eq!(
            p.next(ErrorClass::Retryable, 2, Duration::from_secs(6 * 3600), 0.5),
            Next::GiveUp(GiveUp::Deadline)
        );
        assert_eq!(
            p.next(ErrorClass::Retryable, 1, Duration::ZERO, 0.5),
            Next::RetryAfter(Duration::from_secs(15))
        );
    }
}
