//! Shared scans (issue 12, item 1): several runs with the same query sealed from one scan
//! of the register. `pipeline`: the artifacts of a shared scan against the solo ones (the
//! `age` CLI decrypts each to exactly the plaintext a solo run seals), a member whose
//! sealer fails dropping out alone. `daemon`: the real daemon groups the fires, each run
//! keeps its own receipt, retries and failures. `streaming`: the runs of a scan upload
//! while it seals; a cut member is delivered once from its spool copy, a stalled one holds
//! up nobody.

mod daemon;
mod pipeline;
mod streaming;
