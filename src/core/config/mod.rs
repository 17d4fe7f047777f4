//! Configuration: the daemon file and one file per subscription.
//! `shape` (every key and value type, all problems) -> `raw` (serde mirror) -> `validate`
//! (pure, all problems) ->
//! (file I/O with file:line:column lives in [`crate::loader`]).
pub mod limits;
pub mod location;
pub mod raw;
pub mod raw_mail;
pub mod recipient;
pub mod shape;
pub mod template;
pub mod validate;

pub use location::{DbLocation, PgUrl};
pub use recipient::{Recipient, RecipientError};
pub use validate::{
    node_name_problem, AuthSpec, CommitMode, DaemonConfig, EmailSpec, ExtractSpec, Filter, Format,
    IfExists, NotifySpec, PeriodSpec, SecretRef, SmsFormat, SmsSpec, SmtpAuthSpec, SmtpSpec,
    SmtpTls, Subscription, TargetSpec, TargetTuning, Transport, VerifyLevel, WebhookSpec,
};
