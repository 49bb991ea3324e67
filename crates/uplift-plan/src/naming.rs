//! Target names: lower-casing, the publisher prefix, truncation and uniqueness within a
//! scope (entity names across a catalog, field names within an entity).
//!
//! Allocation is deterministic and favours names that need no change: every name that
//! fits is claimed first, in source order, and only then do truncated or colliding
//! names get the leftovers (`…_2`, `…_3`, inside the length budget). So adding a long
//! field never renames a short one.

use std::collections::HashSet;

use uplift_model::Origin;

use crate::plan::Naming;

/// How a name was obtained, for the change list's reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    /// The wanted name, unchanged.
    Exact,
    /// Cut to the length budget.
    Truncated,
    /// Given a numeric suffix because the wanted (or truncated) name was taken.
    Suffixed,
}

/// The name the naming rules want for a source name, before truncation.
pub(crate) fn wanted(naming: &Naming, name: &str, origin: Origin) -> String {
    let base = if naming.lowercase {
        name.to_ascii_lowercase()
    } else {
        name.to_string()
    };
    match (&naming.custom_prefix, origin) {
        (Some(prefix), Origin::Custom) if !base.starts_with(prefix.as_str()) => {
            format!("{prefix}{base}")
        }
        _ => base,
    }
}

/// The first `max` characters of a name, without a trailing underscore (names are
/// ASCII, so characters are bytes).
pub(crate) fn truncate(name: &str, max: usize) -> String {
    let cut = name.get(..max.min(name.len())).unwrap_or(name);
    let trimmed = cut.trim_end_matches('_');
    if trimmed.is_empty() { cut } else { trimmed }.to_string()
}

/// Names taken in one scope, compared without regard to case (SQLite identifiers and
/// the modern version's names are case-insensitive).
pub(crate) struct Scope {
    taken: HashSet<String>,
    max: usize,
}

impl Scope {
    /// A scope where `reserved` names (system fields, the key) are already taken.
    pub(crate) fn new<'a>(max: usize, reserved: impl IntoIterator<Item = &'a str>) -> Self {
        Scope {
            taken: reserved.into_iter().map(str::to_ascii_lowercase).collect(),
            max,
        }
    }

    /// Takes `name` if it fits and is free.
    pub(crate) fn try_claim(&mut self, name: &str) -> bool {
        name.len() <= self.max && self.taken.insert(name.to_ascii_lowercase())
    }

    /// Takes `name`, or its truncation, or the first free `<truncation>_<n>` (n ≥ 2).
    pub(crate) fn claim(&mut self, name: &str) -> (String, Fit) {
        if self.try_claim(name) {
            return (name.to_string(), Fit::Exact);
        }
        let cut = truncate(name, self.max);
        if cut != name && self.try_claim(&cut) {
            return (cut, Fit::Truncated);
        }
        // Finitely many names are taken, so a free suffix exists within taken.len() + 2.
        let mut n: usize = 2;
        loop {
            let suffix = format!("_{n}");
            let budget = self.max.saturating_sub(suffix.len()).max(1);
            let candidate = format!("{}{suffix}", truncate(name, budget));
            if self.try_claim(&candidate) {
                return (candidate, Fit::Suffixed);
            }
            n += 1;
        }
    }
}

/// Allocates names for `wanted` in `scope`: first every wanted name that fits and is
/// free (in order), then the rest (in order) through [`Scope::claim`].
pub(crate) fn allocate(scope: &mut Scope, wanted: &[String]) -> Vec<(String, Fit)> {
    let mut out: Vec<Option<(String, Fit)>> = wanted
        .iter()
        .map(|w| scope.try_claim(w).then(|| (w.clone(), Fit::Exact)))
        .collect();
    for (slot, w) in out.iter_mut().zip(wanted) {
        if slot.is_none() {
            *slot = Some(scope.claim(w));
        }
    }
    out.into_iter()
        .zip(wanted)
        .map(|(slot, w)| slot.unwrap_or_else(|| (w.clone(), Fit::Exact)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::FlattenTemplate;

    fn naming() -> Naming {
        Naming {
            lowercase: true,
            custom_prefix: Some("cr_".into()),
            max_chars: 10,
            flatten_template: FlattenTemplate("{field}_{part}".into()),
        }
    }

    #[test]
    fn prefix_goes_on_custom_names_only_and_once() {
        let n = naming();
        let cases = [
            ("Project", Origin::Custom, "cr_project"),
            ("cr_Project", Origin::Custom, "cr_project"),
            ("Account", Origin::Standard, "account"),
            ("CreatedBy", Origin::System, "createdby"),
        ];
        for (name, origin, expected) in cases {
            assert_eq!(wanted(&n, name, origin), expected, "{name}");
        }
    }

    #[test]
    fn short_names_win_over_truncated_ones() {
        let mut scope = Scope::new(10, ["id"]);
        let names: Vec<String> = ["abcdefghijXY", "abcdefghij", "abcdefghijZZ", "id", "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let got = allocate(&mut scope, &names);
        let expect = [
            ("abcdefgh_2", Fit::Suffixed),
            ("abcdefghij", Fit::Exact),
            ("abcdefgh_3", Fit::Suffixed),
            ("id_2", Fit::Suffixed),
            ("b", Fit::Exact),
        ];
        for ((g, fit), (e, efit)) in got.iter().zip(expect) {
            assert_eq!((g.as_str(), *fit), (e, efit));
        }
    }

    #[test]
    fn truncation_drops_a_trailing_underscore() {
        assert_eq!(truncate("abc_defg", 4), "abc");
        assert_eq!(truncate("abc", 10), "abc");
        let mut scope = Scope::new(4, []);
        assert_eq!(scope.claim("abc_defg"), ("abc".to_string(), Fit::Truncated));
        assert_eq!(scope.claim("abc_xyz"), ("ab_2".to_string(), Fit::Suffixed));
    }
}
