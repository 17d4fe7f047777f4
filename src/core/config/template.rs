//! Remote file-name templates: `{id}_{run:%Y%m%d}.{ext}` -> one safe file name that can
//! never leave the target folder. Pure.

use chrono::NaiveDateTime;

/// Values a template can use.
#[derive(Debug, Clone)]
pub struct NameContext<'a> {
    pub id: &'a str,
    pub report: &'a str,
    pub ext: &'a str,
    /// The run's scheduled time, in the subscription's zone.
    pub run: NaiveDateTime,
    pub period_start: Option<NaiveDateTime>,
    pub period_end: Option<NaiveDateTime>,
}

const VARS: [&str; 6] = ["id", "report", "ext", "run", "period_start", "period_end"];

/// Renders `template` into a file name; every error is a sentence an operator can act on.
pub fn render(template: &str, ctx: &NameContext<'_>) -> Result<String, String> {
    let out = render_text(template, ctx)?;
    check_name(&out)?;
    Ok(out)
}

/// Renders `template` as text (an e-mail subject): the variables of [`render`], none of
/// its file-name rules.
pub fn render_text(template: &str, ctx: &NameContext<'_>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("`{{` at byte {open} is never closed"))?;
        let inner = &after[..close];
        let (var, fmt) = match inner.split_once(':') {
            Some((v, f)) => (v, Some(f)),
            None => (inner, None),
        };
        let value = match var {
            "id" => ctx.id.to_string(),
            "report" => ctx.report.to_string(),
            "ext" => ctx.ext.to_string(),
            "run" | "period_start" | "period_end" => {
                let t = match var {
                    "run" => Some(ctx.run),
                    "period_start" => ctx.period_start,
                    _ => ctx.period_end,
                };
                let t = t.ok_or_else(|| {
                    format!("`{{{var}}}` needs a `period` in [extract]; remove it or add a period")
                })?;
                let fmt = fmt.unwrap_or("%Y%m%d");
                let mut s = String::new();
                use std::fmt::Write;
                write!(s, "{}", t.format(fmt))
                    .map_err(|_| format!("`{fmt}` is not a valid strftime format"))?;
                s
            }
            other => {
                return Err(format!(
                    "unknown variable `{{{other}}}`; use one of {}",
                    VARS.map(|v| format!("{{{v}}}")).join(", ")
                ))
            }
        };
        if fmt.is_some() && !matches!(var, "run" | "period_start" | "period_end") {
            return Err(format!("`{{{var}}}` takes no format"));
        }
        out.push_str(&value);
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err("`}` without a matching `{`".into());
    }
    out.push_str(rest);
    Ok(out)
}

/// A remote name must be one plain path component.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(
            "the file name is empty; write a template like \"{id}_{run:%Y%m%d}.{ext}\"".into(),
        );
    }
    if name.trim().is_empty() {
        return Err(
            "the file name is only spaces; write a template like \"{id}_{run:%Y%m%d}.{ext}\""
                .into(),
        );
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return Err(format!(
            "`{name}` starts or ends with a space, which customers' scripts trip over; remove it"
        ));
    }
    if name.contains('/') || name.contains('\\') {
        return Err(format!(
            "`{name}` contains a path separator; file names cannot leave the target folder"
        ));
    }
    if name == "." || name == ".." || name.starts_with('.') {
        return Err(format!(
            "`{name}` starts with `.`; hidden names are reserved for temporary files"
        ));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err("the file name contains a control character".into());
    }
    if name.len() > 200 {
        return Err(format!(
            "the file name is {} bytes long; keep it under 200",
            name.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> NameContext<'static> {
        NameContext {
            id: "acme",
            report: "owners",
            ext: "dsv.age",
            run: "2026-11-23T06:00:00".parse().unwrap(),
            period_start: Some("2026-11-16T00:00:00".parse().unwrap()),
            period_end: Some("2026-11-22T00:00:00".parse().unwrap()),
        }
    }

    #[test]
    fn renders_variables_and_formats() {
        assert_eq!(
            render("{id}_{period_end:%Y%m%d}.{ext}", &ctx()).unwrap(),
            "acme_20261122.dsv.age"
        );
        assert_eq!(
            render("{report}-{run:%Y-%m-%dT%H%M}", &ctx()).unwrap(),
            "owners-2026-11-23T0600"
        );
    }

    #[test]
    fn refuses_escapes_and_unknowns() {
        assert!(render("../{id}", &ctx()).is_err());
        assert!(render("sub/{id}", &ctx()).is_err());
        assert!(render("{run:%Y/%m}", &ctx()).is_err());
        assert!(render(".{id}", &ctx()).is_err());
        assert!(render("{customer}", &ctx())
            .unwrap_err()
            .contains("unknown variable"));
        assert!(render("{id", &ctx()).is_err());
        let mut c = ctx();
        c.period_end = None;
        assert!(render("{period_end}", &c).unwrap_err().contains("period"));
    }
}
