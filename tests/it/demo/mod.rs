//! `regdrop demo` and the embedded demo SFTP server it delivers to.

mod demo_command;
mod embedded_server;
