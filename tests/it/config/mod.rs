//! Configuration files: `regdrop check` on real files, mutated files never panic, and
//! the rule for unencrypted (open-data) deliveries.

mod check_command;
mod mutated_files;
mod unencrypted_open_data;
