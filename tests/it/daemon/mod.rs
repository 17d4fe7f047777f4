//! The daemon: scheduling with paused time and fake work, real deliveries to a real sshd,
//! the real `regdrop run` process (signals, `kill -9`, sd_notify, metrics), and closing the
//! loop on failures (`regdrop resolve`, the attention and invalid-files gauges, `status`'s
//! exit code).

mod multinode;
mod process;
mod real_deliveries;
mod resolve;
mod scheduling;
