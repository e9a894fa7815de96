//! The OpenAPI forms of the inputs the handlers check (`validate`, the money parser, the
//! date bounds, the enumerations): each is a named schema component that says exactly
//! what the check accepts, so a request the document calls valid is never refused as
//! malformed, and a client generator gets the same rules. Schema-only types: nothing
//! is deserialised into them (the handlers keep their own checks; `tests/openapi.rs`
//! and the API fuzzer hold the two together).
//!
//! Regular expressions are ECMA-262 and count code points, as `validate::text` counts
//! `char`s. Control characters are Unicode's `Cc` (`char::is_control`).

use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// Characters `validate::text` refuses.
const CONTROL: &str = r"\x00-\x1F\x7F-\x9F";

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// `validate::key`: 1..=max printable ASCII characters, no spaces.
fn key(max: usize, what: &str) -> RefOr<Schema> {
    string()
        .description(Some(format!(
            "{what}: 1-{max} printable ASCII characters without spaces."
        )))
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some("^[!-~]+$"))
        .into()
}

/// `validate::text`: min..=max characters, none of them a control character.
fn text(min: usize, max: usize, what: &str) -> RefOr<Schema> {
    string()
        .description(Some(format!(
            "{what}: {min}-{max} characters without control characters."
        )))
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(format!("^[^{CONTROL}]*$")))
        .into()
}

/// Text the handler trims before `validate::text`: at least one character that is not
/// white space.
fn trimmed_text(max: usize, what: &str) -> RefOr<Schema> {
    string()
        .description(Some(format!(
            "{what}: 1-{max} characters without control characters, not only white space (trimmed)."
        )))
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(format!(r"^[^{CONTROL}]*[^\s{CONTROL}][^{CONTROL}]*$")))
        .into()
}

/// `schema`, or a blank string: the console's filter forms send empty fields, and a
/// blank filter means "any".
fn or_blank(schema: RefOr<Schema>) -> RefOr<Schema> {
    AnyOfBuilder::new()
        .item(schema)
        .item(string().pattern(Some(r"^\s*$")))
        .description(Some("blank = any"))
        .into()
}

fn one_of(values: &[&str], what: &str) -> RefOr<Schema> {
    string()
        .description(Some(what.to_string()))
        .enum_values(Some(values.iter().copied()))
        .into()
}

/// Declares a schema-only type whose schema is `$body`.
macro_rules! input_schema {
    ($(#[$doc:meta])* $name:ident => $body:expr) => {
        $(#[$doc])*
        pub struct $name;
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $body
            }
        }
        impl ToSchema for $name {}
    };
}

input_schema!(
    /// An id or number in a path or body (transaction numbers, user, device, settlement
    /// and exception ids).
    Key64 => key(64, "An id or number")
);
input_schema!(IdempotencyKey => key(128, "A retry key; the same key returns the first answer"));
input_schema!(RefreshToken => key(256, "The refresh token of a pair"));
input_schema!(DeviceSecret => key(128, "The enrolled terminal's secret"));
input_schema!(CardNo => key(32, "A card number, exactly as printed"));
input_schema!(TopupMethod => one_of(&crate::domain::topup::TOPUP_METHODS, "How the member paid for the top-up"));
input_schema!(AuditAction => key(64, "An audit action code, e.g. console.login"));
input_schema!(AuditActionFilter => or_blank(key(64, "An audit action code, e.g. console.login")));
input_schema!(AuditFamily => or_blank(one_of(&crate::domain::audit::family_names(), "A kind of event")));
input_schema!(ActorFilter => or_blank(text(1, 64, "Who (username or actor)")));
input_schema!(Username => text(1, 64, "A username"));
input_schema!(Password => text(1, 256, "The password"));
input_schema!(
    /// A manager's approval PIN (`domain::approval::pin_format_ok`).
    Pin => string()
        .description(Some("4 to 8 digits".to_string()))
        .min_length(Some(4))
        .max_length(Some(8))
        .pattern(Some("^[0-9]{4,8}$"))
        .into()
);
input_schema!(
    /// A password being set: the password policy (`auth::check_password_policy`).
    NewPassword => string()
        .description(Some("A new password: 8-256 characters without control characters."))
        .min_length(Some(8))
        .max_length(Some(256))
        .pattern(Some(format!("^[^{CONTROL}]*$")))
        .into()
);
input_schema!(NewUsername => trimmed_text(64, "A username"));
input_schema!(DeviceName => trimmed_text(64, "A name for the terminal"));
input_schema!(EnrollmentCodeText => text(1, 32, "The enrolment code shown in the console"));
input_schema!(Note => text(1, 1000, "A note"));
input_schema!(Reason => text(1, 500, "Why"));
input_schema!(VoidReason => trimmed_text(500, "Why the settlement is voided"));
input_schema!(ReceiptFormat => one_of(&["text", "html", "json"], "text for a thermal printer, html to print from a browser, json"));
input_schema!(ReportFormat => one_of(&["json", "text", "csv"], "json, text for a thermal printer, or csv"));
input_schema!(ReportBy => one_of(&["cashier", "terminal"], "Group the day by cashier or by terminal"));
input_schema!(ReceiptLang => one_of(&["zh-Hant", "en"], "The receipt's language"));
input_schema!(ReceiptWidth => string().description(Some("Printer columns: 32 (58 mm paper) or 48 (80 mm)")).enum_values(Some(["32", "48"])).into());
input_schema!(FreezeReason => trimmed_text(500, "Why the card is frozen or unfrozen"));
input_schema!(ExternalOrderId => text(1, 128, "The POS's own order number"));
input_schema!(Actor => text(1, 64, "Who (username or actor)"));
input_schema!(StoreName => trimmed_text(100, "The store name"));
input_schema!(SearchText => key(32, "Part of a card or transaction number"));
input_schema!(TxSortName => one_of(&["time_desc", "time_asc", "amount_desc", "amount_asc"], "The order"));
input_schema!(CurrencyLabel => trimmed_text(8, "The label shown with amounts, such as NT$"));
input_schema!(
    /// Every IANA zone name the server knows (the time zone database it was built with),
    /// so a name the document allows is one the server accepts.
    TimeZoneName => string()
        .description(Some("An IANA time zone, such as Asia/Taipei".to_string()))
        .enum_values(Some(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())))
        .into()
);

/// `money::parse_cents`, positive: at most 10 integer digits (leading zeros aside) and
/// 2 decimals, not zero.
const AMOUNT_PATTERN: &str = r"^(0*[1-9][0-9]{0,9}(\.[0-9]{1,2})?|0+\.(0[1-9]|[1-9][0-9]?))$";

input_schema!(
    /// An amount as the money parser accepts it: a positive decimal string with at most 2
    /// places, up to 9999999999.99, or a whole number. (A JSON number with decimals is
    /// accepted too, read exactly as written; a string is the portable form.)
    AmountInput => AnyOfBuilder::new()
        .item(
            string()
                .description(Some("e.g. \"12.30\""))
                .pattern(Some(AMOUNT_PATTERN)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(9_999_999_999_i64)),
        )
        .description(Some(
            "A positive amount with at most 2 decimals, up to 9999999999.99",
        ))
        .into()
);

input_schema!(
    /// `PUT /console/settings` `limits`: any of `LimitSettings`' fields. Each is judged by
    /// the field's own rules, then the whole against the installation's
    /// `[limit_ceilings]` (422 `LIMIT_ABOVE_CEILING`).
    LimitsInput => {
        let amount = || RefOr::Ref(utoipa::openapi::Ref::from_schema_name("AmountInput"));
        ObjectBuilder::new()
            .property("max_tx_amount", amount())
            .property("max_card_unsynced", amount())
            .property("max_site_unsynced", amount())
            .property("stale_max_tx_amount", amount())
            .property(
                "stale_after_secs",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(i64::MAX))
                    .description(Some("Seconds without a pull before only small charges pass; 0 = off")),
            )
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)))
            .into()
    }
);

input_schema!(
    /// An amount in a query string: a positive decimal with at most 2 places.
    AmountText => string()
        .description(Some("A positive amount with at most 2 decimals, e.g. 12.30"))
        .pattern(Some(AMOUNT_PATTERN))
        .into()
);

input_schema!(
    /// A scanned payment QR code: central's legacy token (32 bytes, standard base64), an
    /// mq1 token, or an offline code made on the phone (mq2) (`domain::qr::classify`).
    QrText => string()
        .description(Some(
            "The scanned text: a legacy token (44 characters of base64), an mq1 token (mq1.<card id>.<secret>) or an offline code (mq2.<card id>.<chain id>.<slot>.<value>).",
        ))
        .pattern(Some(
            r"^([A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=|mq1\.[0-9a-f]{32}\.[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]|mq2\.[0-9a-f]{32}\.[0-9a-f]{16}\.[1-9][0-9]{0,5}\.[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048])$",
        ))
        .into()
);

input_schema!(
    /// `merchant::parse_bound`: a day in the store's time zone, or an instant.
    DateBound => AnyOfBuilder::new()
        .item(string().format(Some(SchemaFormat::Custom("date".into()))))
        .item(string().format(Some(SchemaFormat::Custom("date-time".into()))))
        .description(Some(
            "YYYY-MM-DD (that day in the store's time zone; as an end, the whole day is included) or an RFC 3339 time",
        ))
        .into()
);
input_schema!(DateBoundFilter => or_blank(DateBound::schema()));
input_schema!(Day => string()
    .format(Some(SchemaFormat::Custom("date".into())))
    .description(Some("YYYY-MM-DD, a day in the store's time zone"))
    .into());

input_schema!(IngestTs => string()
    .description(Some("Unix seconds, 1-12 decimal digits; within 300 s of the store's clock"))
    .pattern(Some("^[0-9]{1,12}$"))
    .into());
input_schema!(IngestSign => string()
    .description(Some("64 lowercase hex digits: HMAC-SHA256 of ts \\n METHOD \\n path \\n body"))
    .pattern(Some("^[0-9a-f]{64}$"))
    .into());

/// The list's type filter: a transaction type, or `sales` for payments and refunds.
pub const TX_TYPE_FILTERS: &[&str] = &["payment", "refund", "recharge", "sales"];
input_schema!(TxType => one_of(TX_TYPE_FILTERS, "Transaction type; sales = payments and refunds"));
input_schema!(TxStatus => one_of(&["completed", "refunded"], "Transaction status"));
input_schema!(SyncStateFilter => one_of(&["pending", "applied", "exception"], "Sync state"));
input_schema!(ExceptionFilter => one_of(&["open", "all"], "Which exceptions (default open)"));
input_schema!(Locale => one_of(&crate::domain::LOCALES, "Console language"));
input_schema!(RoleName => one_of(&["owner", "manager", "cashier"], "Role"));
input_schema!(SettlementMode => one_of(&crate::domain::settlement::SETTLEMENT_MODES, "Settlement mode"));

/// Every schema above, for the document's components: utoipa collects the schemas a
/// body names, not those only a parameter names (`tests/openapi.rs` fails on any
/// reference that does not resolve).
pub fn all() -> Vec<(&'static str, RefOr<Schema>)> {
    vec![
        ("Actor", Actor::schema()),
        ("ActorFilter", ActorFilter::schema()),
        ("AmountInput", AmountInput::schema()),
        ("AmountText", AmountText::schema()),
        ("AuditAction", AuditAction::schema()),
        ("AuditActionFilter", AuditActionFilter::schema()),
        ("AuditFamily", AuditFamily::schema()),
        ("CardNo", CardNo::schema()),
        ("DateBound", DateBound::schema()),
        ("DateBoundFilter", DateBoundFilter::schema()),
        ("Day", Day::schema()),
        ("DeviceName", DeviceName::schema()),
        ("DeviceSecret", DeviceSecret::schema()),
        ("EnrollmentCodeText", EnrollmentCodeText::schema()),
        ("ExceptionFilter", ExceptionFilter::schema()),
        ("ExternalOrderId", ExternalOrderId::schema()),
        ("IdempotencyKey", IdempotencyKey::schema()),
        ("IngestSign", IngestSign::schema()),
        ("IngestTs", IngestTs::schema()),
        ("Key64", Key64::schema()),
        ("LimitsInput", LimitsInput::schema()),
        ("Locale", Locale::schema()),
        ("NewPassword", NewPassword::schema()),
        ("NewUsername", NewUsername::schema()),
        ("Note", Note::schema()),
        ("Password", Password::schema()),
        ("Pin", Pin::schema()),
        ("QrText", QrText::schema()),
        ("Reason", Reason::schema()),
        ("VoidReason", VoidReason::schema()),
        ("FreezeReason", FreezeReason::schema()),
        ("ReceiptFormat", ReceiptFormat::schema()),
        ("ReceiptLang", ReceiptLang::schema()),
        ("ReportFormat", ReportFormat::schema()),
        ("ReportBy", ReportBy::schema()),
        ("ReceiptWidth", ReceiptWidth::schema()),
        ("RefreshToken", RefreshToken::schema()),
        ("RoleName", RoleName::schema()),
        ("SettlementMode", SettlementMode::schema()),
        ("StoreName", StoreName::schema()),
        ("CurrencyLabel", CurrencyLabel::schema()),
        ("SearchText", SearchText::schema()),
        ("TxSortName", TxSortName::schema()),
        ("TimeZoneName", TimeZoneName::schema()),
        ("SyncStateFilter", SyncStateFilter::schema()),
        ("TxStatus", TxStatus::schema()),
        ("TxType", TxType::schema()),
        ("Username", Username::schema()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::parse_cents;
    use crate::domain::qr::classify;

    fn pattern_of(schema: RefOr<Schema>, item: usize) -> regex::Regex {
        let json = serde_json::to_value(schema).unwrap_or_default();
        let p = json["pattern"]
            .as_str()
            .or_else(|| json["anyOf"][item]["pattern"].as_str())
            .unwrap_or_default()
            .to_string();
        regex::Regex::new(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    /// The amount pattern accepts exactly what the money parser takes as positive.
    #[test]
    fn the_audit_family_enum_is_the_domains_list() {
        let json = serde_json::to_value(AuditFamily::schema()).unwrap_or_default();
        let listed: Vec<&str> = json["anyOf"][0]["enum"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(listed, crate::domain::audit::family_names());
    }

    #[test]
    fn amount_pattern_is_the_parser() {
        let re = pattern_of(AmountInput::schema(), 0);
        for text in [
            "1",
            "0.01",
            "0.1",
            "00.10",
            "007.50",
            "12.34",
            "9999999999.99",
            "0000000000001",
            "0",
            "0.00",
            "00",
            "-1",
            "1.",
            ".5",
            "1.234",
            "10000000000",
            "1e3",
            " 1",
            "1 ",
            "+1",
            "0.0",
            "1,5",
            "",
        ] {
            assert_eq!(
                re.is_match(text),
                parse_cents(text).is_ok(),
                "amount {text:?}"
            );
        }
    }

    #[test]
    fn qr_pattern_is_classify() {
        use base64::Engine;
        let re = pattern_of(QrText::schema(), 0);
        let mut cases = vec![String::new(), "abc".into(), "mq1.".into()];
        for fill in [0u8, 1, 2, 3, 0x7f, 0xff] {
            let bytes = [fill; 32];
            let std = base64::engine::general_purpose::STANDARD.encode(bytes);
            let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            cases.push(std.clone());
            cases.push(format!("{}{}", &std[..42], "B="));
            cases.push(format!("mq1.{}.{url}", "a".repeat(32)));
            cases.push(format!("mq1.{}.{url}", "A".repeat(32)));
            cases.push(format!("mq1.{}.{}B", "0".repeat(32), &url[..42]));
            let hex = "0123456789abcdef";
            for slot in ["1", "60", "999999", "0", "01", "1000000", "-1", ""] {
                cases.push(format!("mq2.{}.{hex}.{slot}.{url}", "b".repeat(32)));
            }
            cases.push(format!("mq2.{}.{hex}.7.{url}", "B".repeat(32)));
            cases.push(format!("mq2.{}.{}.7.{url}", "b".repeat(32), "A".repeat(16)));
            cases.push(format!("mq2.{}.{hex}.7.{}B", "b".repeat(32), &url[..42]));
            cases.push(format!("mq2.{}.{hex}.7.{url}=", "b".repeat(32)));
            cases.push(format!("mq2.{}.{hex}.7.{url}.x", "b".repeat(32)));
        }
        for text in &cases {
            assert_eq!(re.is_match(text), classify(text).is_some(), "qr {text:?}");
        }
    }
}
