//! The vehicle register: the synthetic generator and the import of the authority's dump
//! (library and `regdrop register import`).

mod generator;
mod import_command;
mod import_dump;
mod pg_commands;
