//! Families of audit actions: what the console's "what kind of event" filter offers. A
//! family is a set of action prefixes, so a new action ("settlement.void") joins its
//! family by its name alone.

/// (family, the action prefixes it covers). A prefix matches an action equal to it or
/// starting with it followed by a dot.
pub const AUDIT_FAMILIES: &[(&str, &[&str])] = &[
    ("signin", &["login", "logout", "console", "refresh"]),
    ("staff", &["user"]),
    ("devices", &["device"]),
    ("payments", &["charge", "refund", "topup"]),
    ("settlements", &["settlement"]),
    ("cards", &["card"]),
    ("shifts", &["shift"]),
    ("settings", &["settings"]),
    ("sync", &["sync"]),
];

/// The family names, in the order the console lists them.
pub fn family_names() -> Vec<&'static str> {
    AUDIT_FAMILIES.iter().map(|(name, _)| *name).collect()
}

/// The prefixes of `family`, or None for a name that is not a family.
pub fn family_prefixes(family: &str) -> Option<&'static [&'static str]> {
    AUDIT_FAMILIES
        .iter()
        .find(|(name, _)| *name == family)
        .map(|(_, prefixes)| *prefixes)
}

/// Whether `action` belongs to `prefix`'s family: the prefix itself, or the prefix and a
/// dot ("user" covers "user.create", not "username.x").
pub fn in_prefix(action: &str, prefix: &str) -> bool {
    action == prefix
        || action
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every action the edge writes today, and the family it must land in.
    const KNOWN: &[(&str, &str)] = &[
        ("login", "signin"),
        ("login.failed", "signin"),
        ("login.locked", "signin"),
        ("logout", "signin"),
        ("console.login", "signin"),
        ("console.logout", "signin"),
        ("refresh.reuse_detected", "signin"),
        ("user.create", "staff"),
        ("user.reset", "staff"),
        ("user.disable", "staff"),
        ("user.enable", "staff"),
        ("user.reset_password", "staff"),
        ("user.unlock", "staff"),
        ("user.sign_out_everywhere", "staff"),
        ("device.enroll", "devices"),
        ("device.revoke", "devices"),
        ("device.enrollment_code.create", "devices"),
        ("charge", "payments"),
        ("refund", "payments"),
        ("topup", "payments"),
        ("settlement.create", "settlements"),
        ("settlement.void", "settlements"),
        ("card.freeze", "cards"),
        ("card.unfreeze", "cards"),
        ("shift.open", "shifts"),
        ("shift.close", "shifts"),
        ("settings.update", "settings"),
        ("sync.exception.resolve", "sync"),
    ];

    #[test]
    fn every_known_action_is_in_exactly_one_family() {
        for (action, want) in KNOWN {
            let families: Vec<&str> = AUDIT_FAMILIES
                .iter()
                .filter(|(_, prefixes)| prefixes.iter().any(|p| in_prefix(action, p)))
                .map(|(name, _)| *name)
                .collect();
            assert_eq!(families, vec![*want], "{action}");
        }
    }

    #[test]
    fn a_prefix_covers_whole_words_only() {
        assert!(in_prefix("user", "user"));
        assert!(in_prefix("user.create", "user"));
        assert!(!in_prefix("username.change", "user"));
        assert!(!in_prefix("use", "user"));
        assert!(!in_prefix("chargeback", "charge"));
    }

    #[test]
    fn names_and_lookup_agree() {
        for name in family_names() {
            assert!(family_prefixes(name).is_some(), "{name}");
        }
        assert_eq!(family_prefixes("nope"), None);
        assert_eq!(family_prefixes("staff"), Some(&["user"][..]));
    }
}
