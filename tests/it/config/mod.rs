//! Configuration files: `regdrop check` on real files and on the machine (secrets, register,
//! folders, the service user), mutated files never panic, and
//! the rule for unencrypted (open-data) deliveries.

mod check_command;
mod environment;
mod mutated_files;
mod unencrypted_open_data;
