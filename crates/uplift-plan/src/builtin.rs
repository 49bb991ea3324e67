//! The plans shipped with the binary, compiled in so that an upgrade never depends on a
//! file next to the executable.

/// Name and text of every shipped plan.
const PLANS: &[(&str, &str)] = &[(
    "classic-to-modern",
    include_str!("../plans/classic-to-modern.toml"),
)];

/// Names of the shipped plans, for the upgrade wizard's choice.
pub fn builtin_names() -> &'static [&'static str] {
    &["classic-to-modern"]
}

/// The text of a shipped plan, to parse with [`crate::parse_plan`] (or show to an admin
/// who wants to start a plan of their own from it).
pub fn builtin(name: &str) -> Option<&'static str> {
    PLANS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_texts_agree() {
        assert_eq!(builtin_names().len(), PLANS.len());
        for name in builtin_names() {
            let text = builtin(name).unwrap_or_default();
            let plan = crate::parse_plan(text).map_err(|e| e.to_string());
            assert_eq!(plan.map(|p| p.name().to_string()), Ok(name.to_string()));
        }
        assert!(builtin("modern-to-classic").is_none());
    }
}
