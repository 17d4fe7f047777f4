//! The open-data report and the rule that only reports without identifying or
//! personal fields may go out unencrypted (`encryption.mode = "none"`).

use regdrop::core::catalog::ReportKind;
use regdrop::core::config::raw::RawSubscription;
use regdrop::core::config::validate::{validate_subscription, Inherited};
use regdrop::core::retry::RetryPolicy;
use std::path::{Path, PathBuf};

fn inherited() -> Inherited {
    Inherited {
        timezone: "Europe/Oslo".into(),
        retry: RetryPolicy::default(),
        secrets_dir: PathBuf::from("secrets"),
        offers: regdrop::core::config::validate::Offers::ASSUMED,
    }
}

/// A subscription for `report` (plus `extra` lines in `[extract]`) with `mode = "none"`.
fn unencrypted(report: &str, extra: &str) -> String {
    format!(
        r#"id = "open"
customer = "Kunde AS"
legal_basis = "needed by the personal reports, so that only the encryption rule decides"
[schedule]
cron = "0 6 * * MON"
[target]
host = "sftp.kunde.example"
username = "u"
host_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL8KQRoLcAyA3HjT2XTLV/KiImqim5ZNP9y7enr60/qj"]
auth = {{ password_file = "open.password" }}
remote_dir = "/in"
[extract]
report = "{report}"
{extra}
[encryption]
mode = "none"
"#
    )
}

fn problems(text: &str) -> Vec<String> {
    let raw: RawSubscription = toml::from_str(text).unwrap();
    match validate_subscription(&raw, &inherited(), Path::new("t.toml")) {
        Ok(_) => vec![],
        Err(ps) => ps
            .into_iter()
            .map(|p| format!("{}: {}", p.key, p.message))
            .collect(),
    }
}

fn extra_for(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::Custom => "columns = [\"TEKN_KJM\", \"TEKN_MERKENAVN\"]",
        ReportKind::CodeTables => "code_tables = [\"make\"]",
        _ => "",
    }
}

#[test]
fn mode_none_is_refused_for_every_report_with_identifying_or_personal_fields() {
    let mut accepted = Vec::new();
    for kind in ReportKind::ALL {
        let ps = problems(&unencrypted(kind.as_str(), extra_for(kind)));
        let columns = kind.columns().unwrap_or_else(|| {
            ["TEKN_KJM", "TEKN_MERKENAVN"]
                .iter()
                .map(|n| regdrop::core::catalog::field(n).unwrap())
                .collect()
        });
        let sensitive = columns.iter().any(|f| f.identifying || f.personal);
        if sensitive {
            assert!(
                ps.iter().any(|p| p.starts_with(
                    "encryption.mode: this report holds identifying or personal fields"
                )),
                "{}: mode = \"none\" must be refused: {ps:?}",
                kind.as_str()
            );
        } else {
            assert!(ps.is_empty(), "{}: {ps:?}", kind.as_str());
            accepted.push(kind);
        }
    }
    // Exactly the open-data report and the code tables (public code lists) may go out
    // unencrypted; every other standard report is refused.
    assert_eq!(
        accepted,
        [ReportKind::TechnicalOpen, ReportKind::CodeTables]
    );
}

#[test]
fn mode_none_is_accepted_for_technical_open_and_a_custom_list_without_identifying_fields() {
    assert_eq!(
        problems(&unencrypted("technical_open", "")),
        Vec::<String>::new()
    );
    assert_eq!(
        problems(&unencrypted(
            "technical_open",
            "code_tables = [\"make\", \"load_index\", \"speed_index\"]"
        )),
        Vec::<String>::new()
    );
    let open_custom =
        "columns = [\"TEKN_MERKENAVN\", \"TEKN_MODELL\", \"TEKN_DRIVST\", \"TEKN_CO2_UTSLIPP\"]";
    assert_eq!(
        problems(&unencrypted("custom", open_custom)),
        Vec::<String>::new()
    );
    // The chassis number alone makes a custom list identifying; an owner column personal.
    for cols in [
        "columns = [\"TEKN_MERKENAVN\", \"TEKN_UNR\"]",
        "columns = [\"TEKN_MERKENAVN\", \"EIER_NAVN\"]",
    ] {
        assert!(
            problems(&unencrypted("custom", cols))
                .iter()
                .any(|p| p.starts_with("encryption.mode:")),
            "{cols}"
        );
    }
}

#[test]
fn open_report_without_mode_none_is_encrypted_as_usual() {
    // Without an explicit mode = "none" the open report needs recipients like any other.
    let text = unencrypted("technical_open", "").replace("mode = \"none\"\n", "");
    let ps = problems(&text);
    assert!(
        ps.iter()
            .any(|p| p.starts_with("encryption.recipients: no age recipient")),
        "{ps:?}"
    );
}

#[test]
fn code_table_names_are_checked() {
    let ps = problems(&unencrypted(
        "technical_open",
        "code_tables = [\"make\", \"tyres\", \"make\"]",
    ));
    assert!(
        ps.iter()
            .any(|p| p.starts_with("extract.code_tables[1]: `tyres` is not a code table")),
        "{ps:?}"
    );
    assert!(
        ps.iter()
            .any(|p| p.starts_with("extract.code_tables[2]: `make` is listed twice")),
        "{ps:?}"
    );
    let ps = problems(&unencrypted("code_tables", ""));
    assert!(
        ps.iter()
            .any(|p| p.starts_with("extract.code_tables: report code_tables needs")),
        "{ps:?}"
    );
    let ps = problems(&unencrypted(
        "code_tables",
        "code_tables = [\"fuel\"]\nfilter = { fuel = [\"5\"] }",
    ));
    assert!(
        ps.iter()
            .any(|p| p.starts_with("extract.filter: code tables are delivered whole")),
        "{ps:?}"
    );
}
