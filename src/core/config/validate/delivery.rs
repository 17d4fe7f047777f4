//! The `[delivery]` table: the remote file name template (tried on a sample run),
//! `if_exists`, `verify`, the manifest and the done marker -> [`DeliverySpec`].

use super::super::raw::RawDelivery;
use super::super::template::{self, NameContext};
use super::types::{DeliverySpec, ExtractSpec, IfExists, VerifyLevel};
use super::Problem;
use chrono::NaiveDate;

/// The delivery of subscription `id`; the file name is tried only when the extract is
/// valid (its report and period fill the template).
pub(super) fn validate_delivery(
    d: &RawDelivery,
    id: &str,
    extract: Option<&ExtractSpec>,
    p: &mut Vec<Problem>,
) -> DeliverySpec {
    let if_exists = match d.if_exists.as_deref().unwrap_or("fail") {
        "fail" => IfExists::Fail,
        "overwrite" => IfExists::Overwrite,
        "version" => IfExists::Version,
        other => {
            p.push(Problem::new(
                "delivery.if_exists",
                format!("`{other}` is not a choice; use \"fail\", \"overwrite\" or \"version\""),
            ));
            IfExists::Fail
        }
    };
    let verify = match d.verify.as_deref().unwrap_or("size") {
        "size" => VerifyLevel::Size,
        "read-back" => VerifyLevel::ReadBack,
        other => {
            p.push(Problem::new(
                "delivery.verify",
                format!("`{other}` is not a level; use \"size\" or \"read-back\""),
            ));
            VerifyLevel::Size
        }
    };
    let file_name = d
        .file_name
        .clone()
        .unwrap_or_else(|| "{id}_{run:%Y%m%dT%H%M%S}.{ext}".into());
    if let Some(x) = extract {
        let sample = NameContext {
            id,
            report: x.report.as_str(),
            ext: "dsv.age",
            run: NaiveDate::from_ymd_opt(2026, 12, 31)
                .unwrap()
                .and_hms_opt(23, 59, 0)
                .unwrap(),
            period_start: x.period.map(|_| {
                NaiveDate::from_ymd_opt(2026, 12, 1)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
            }),
            period_end: x.period.map(|_| {
                NaiveDate::from_ymd_opt(2026, 12, 30)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
            }),
        };
        if let Err(e) = template::render(&file_name, &sample) {
            p.push(Problem::new("delivery.file_name", e));
        }
    }
    DeliverySpec {
        file_name,
        if_exists,
        verify,
        manifest: d.manifest.unwrap_or(true),
        done_marker: d.done_marker.unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{extract, keys, message_at};
    use super::*;

    fn delivery(toml_text: &str, x: Option<&ExtractSpec>) -> (DeliverySpec, Vec<Problem>) {
        let raw: RawDelivery = toml::from_str(toml_text).expect("a [delivery] table");
        let mut p = Vec::new();
        (validate_delivery(&raw, "acme", x, &mut p), p)
    }

    #[test]
    fn an_empty_table_takes_the_defaults() {
        let x = extract("report = \"technical\"");
        let (d, p) = delivery("", Some(&x));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(d.file_name, "{id}_{run:%Y%m%dT%H%M%S}.{ext}");
        assert_eq!(d.if_exists, IfExists::Fail);
        assert_eq!(d.verify, VerifyLevel::Size);
        assert!(d.manifest);
        assert!(!d.done_marker);
    }

    #[test]
    fn given_choices_are_kept() {
        let (d, p) = delivery(
            "file_name = \"{report}.{ext}\"\nif_exists = \"version\"\nverify = \"read-back\"\nmanifest = false\ndone_marker = true",
            None,
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(d.file_name, "{report}.{ext}");
        assert_eq!(d.if_exists, IfExists::Version);
        assert_eq!(d.verify, VerifyLevel::ReadBack);
        assert!(!d.manifest);
        assert!(d.done_marker);
        let (d, _) = delivery("if_exists = \"overwrite\"", None);
        assert_eq!(d.if_exists, IfExists::Overwrite);
    }

    #[test]
    fn unknown_words_are_refused_at_their_key() {
        let (_, p) = delivery("if_exists = \"replace\"\nverify = \"sha256\"", None);
        assert_eq!(keys(&p), ["delivery.if_exists", "delivery.verify"]);
        assert_eq!(
            message_at(&p, "delivery.if_exists"),
            "`replace` is not a choice; use \"fail\", \"overwrite\" or \"version\""
        );
        assert_eq!(
            message_at(&p, "delivery.verify"),
            "`sha256` is not a level; use \"size\" or \"read-back\""
        );
    }

    #[test]
    fn the_file_name_is_tried_against_the_extract() {
        let no_period = extract("report = \"technical\"");
        let (_, p) = delivery("file_name = \"{period_start:%Y}.{ext}\"", Some(&no_period));
        assert_eq!(
            message_at(&p, "delivery.file_name"),
            "`{period_start}` needs a `period` in [extract]; remove it or add a period"
        );
        let monthly = extract("report = \"technical\"\nperiod = \"previous_month\"");
        let (_, p) = delivery("file_name = \"{period_start:%Y%m}.{ext}\"", Some(&monthly));
        assert!(p.is_empty(), "{p:?}");
        // Without a valid extract there is nothing to try it on.
        let (_, p) = delivery("file_name = \"{period_start:%Y}.{ext}\"", None);
        assert!(p.is_empty(), "{p:?}");
    }
}
