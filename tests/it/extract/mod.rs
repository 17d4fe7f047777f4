//! Extracts: what the filters, periods and formats select from real registers, and the
//! sealed artifacts `regdrop extract` writes (decryptable, no plaintext on disk).

mod parallel;
mod pg_commit;
mod pg_parallel;
mod pg_register;
mod sealed_artifacts;
mod selection_and_formats;
