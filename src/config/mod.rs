//! Configuration: the daemon file and one file per subscription.
//! `raw` (serde mirror, unknown keys refused) -> `validate` (pure, all problems) ->
//! `load` (file I/O, file:line:column).
pub mod limits;
pub mod load;
pub mod raw;
pub mod template;
pub mod validate;

pub use load::{load, Loaded, Located};
pub use validate::{
    AuthSpec, CommitMode, DaemonConfig, ExtractSpec, Filter, Format, IfExists, PeriodSpec,
    Subscription, TargetSpec, TargetTuning, VerifyLevel,
};
