//! Naming rules for logical and physical names.

/// Longest logical name a classic catalog takes. Classic names may be long (the upgrade
/// truncates them to 50); physical names are shortened separately.
pub const CLASSIC_MAX_NAME_CHARS: usize = 128;
/// Longest logical name on the modern version.
pub const MODERN_MAX_NAME_CHARS: usize = 50;
/// Longest physical identifier we emit: PostgreSQL truncates identifiers at 63 bytes,
/// which would silently merge two long names, so we shorten first and make it unique.
pub const MAX_PHYSICAL_CHARS: usize = 60;

/// Whether `name` is a valid logical name: ASCII letter first, then letters, digits and
/// underscores. Restricting to ASCII keeps names identical on every engine and in URLs;
/// a double underscore is reserved for the physical columns of complex values.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.contains("__")
}

/// Turns a logical name (plus optional suffix) into a physical identifier of at most
/// [`MAX_PHYSICAL_CHARS`], lower-cased. Long names keep a readable prefix and gain a
/// short hash of the full name so that two names sharing a long prefix stay distinct.
pub fn physical(name: &str, suffix: Option<&str>) -> String {
    let full = match suffix {
        Some(s) => format!("{name}__{s}"),
        None => name.to_string(),
    }
    .to_ascii_lowercase();
    if full.len() <= MAX_PHYSICAL_CHARS {
        return full;
    }
    let hash = fnv1a(full.as_bytes());
    format!("{}_{:08x}", &full[..MAX_PHYSICAL_CHARS - 9], hash as u32)
}

/// A small stable hash; physical names must not change between releases, so we do not
/// use the standard library's randomly keyed hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["Account", "cr_project", "A1"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "1abc", "_x", "a-b", "é", "a b", "a__b"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn long_physical_names_stay_unique_and_short() {
        let a = "x".repeat(70) + "AlphaField";
        let b = "x".repeat(70) + "BetaField";
        let (pa, pb) = (physical(&a, None), physical(&b, Some("city")));
        assert!(pa.len() <= MAX_PHYSICAL_CHARS && pb.len() <= MAX_PHYSICAL_CHARS);
        assert_ne!(pa, pb);
        assert_eq!(physical("Site", Some("city")), "site__city");
    }
}
