//! `regdrop completions SHELL` and `regdrop man`: the shell completion scripts and the man
//! page, generated from the command line's own definition (clap_complete, clap_mangen), so
//! they name every subcommand and flag the binary has.

use crate::cmd::cli::Cli;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::io::Write;
use std::process::ExitCode;

pub(super) fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    std::io::stdout()
        .write_all(completion(shell).as_bytes())
        .context("writing the completion script")?;
    Ok(ExitCode::SUCCESS)
}

/// The completion script for `shell` (also installed by `regdrop init`).
pub(super) fn completion(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "regdrop", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The man page: regdrop(1) with every subcommand's section in one page (a page per
/// subcommand would be regdrop-deliver(1) and so on; one page is what `man regdrop` finds).
pub(super) fn man() -> Result<ExitCode> {
    std::io::stdout()
        .write_all(man_page().as_bytes())
        .context("writing the man page")?;
    Ok(ExitCode::SUCCESS)
}

/// The man page's roff text (also installed by `regdrop init`).
pub(super) fn man_page() -> String {
    let mut out = Vec::new();
    // Rendering into memory cannot fail: every write goes to a Vec.
    render(&mut out).expect("rendering into memory");
    String::from_utf8_lossy(&out).into_owned()
}

fn render(out: &mut Vec<u8>) -> std::io::Result<()> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    // Each subcommand (and sub-subcommand) as a section of its own, with its options.
    for sub in cmd.get_subcommands() {
        section(out, "regdrop", sub)?;
    }
    man.render_version_section(out)?;
    writeln!(
        out,
        ".SH FILES\n.TP\n/etc/regdrop/regdrop.toml\nThe daemon config (docs/config.md in the source lists every key).\n.TP\n/etc/regdrop/subscriptions/*.toml\nOne file per subscription.\n.TP\n/etc/regdrop/secrets/\nPasswords and keys (owned by regdrop, mode 0700; files 0600).\n.SH EXIT STATUS\n0 success, 1 failure, 2 usage error, 78 invalid configuration (EX_CONFIG), 130 interrupted."
    )
}

fn section(out: &mut Vec<u8>, parent: &str, sub: &clap::Command) -> std::io::Result<()> {
    if sub.is_hide_set() {
        return Ok(());
    }
    let name = format!("{parent} {}", sub.get_name());
    writeln!(out, ".SH \"{}\"", name.to_uppercase())?;
    let sub = sub.clone().bin_name(&name).display_name(&name);
    let man = clap_mangen::Man::new(sub.clone());
    man.render_synopsis_section(&mut strip_heading(out))?;
    if let Some(about) = sub.get_long_about().or(sub.get_about()) {
        writeln!(out, ".PP\n{}", roff_text(&about.to_string()))?;
    }
    let has_args = sub
        .get_arguments()
        .any(|a| !a.is_hide_set() && a.get_id() != "help" && a.get_id() != "version");
    if has_args {
        man.render_options_section(&mut strip_heading(out))?;
    }
    for s in sub.get_subcommands() {
        section(out, &name, s)?;
    }
    Ok(())
}

/// Escapes text for a roff paragraph (a leading `.` or `'` would be a request).
fn roff_text(s: &str) -> String {
    s.lines()
        .map(|l| {
            let l = l.replace('\\', "\\\\");
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A writer that drops the `.SH` heading clap_mangen puts before a section, so a
/// subcommand's synopsis and options sit under its own heading.
fn strip_heading(out: &mut Vec<u8>) -> StripHeading<'_> {
    StripHeading {
        out,
        buf: Vec::new(),
    }
}

struct StripHeading<'a> {
    out: &'a mut Vec<u8>,
    buf: Vec<u8>,
}

impl Write for StripHeading<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for StripHeading<'_> {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        for line in text.split_inclusive('\n') {
            if line.starts_with(".SH ") {
                continue;
            }
            self.out.extend_from_slice(line.as_bytes());
        }
    }
}
