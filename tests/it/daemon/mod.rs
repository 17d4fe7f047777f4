//! The daemon: scheduling with paused time and fake work, real deliveries to a real sshd,
//! and the real `regdrop run` process (signals, `kill -9`, sd_notify, metrics).

mod process;
mod real_deliveries;
mod scheduling;
