//! Pieces of the text report that the `leaktracker` command-line tool shows too (through
//! the hidden `__cli` module): counted nouns, totals, leaks grouped by kind, the
//! allow-list line. Not part of the API.

use crate::guard::Reentrancy;
use crate::report::{escape_text, ReportEntry, Totals};
use crate::units::Bytes;

/// `1 block`, `3 blocks`: `n` and the noun that goes with it.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    let _r = Reentrancy::enter();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `2 resources, 5 blocks, 1.5 KiB`.
pub fn totals_text(t: Totals) -> String {
    let _r = Reentrancy::enter();
    format!(
        "{}, {}, {}",
        plural(t.resources, "resource", "resources"),
        plural(t.allocations, "block", "blocks"),
        Bytes(t.bytes)
    )
}

/// `entries` grouped by kind, in order of each kind's first entry (a report lists its
/// entries oldest first, so a kind's place is that of its oldest resource); within a kind,
/// in their order.
pub fn by_kind<'a>(
    entries: impl IntoIterator<Item = &'a ReportEntry>,
) -> Vec<(&'a str, Vec<&'a ReportEntry>)> {
    let _r = Reentrancy::enter();
    let mut kinds: Vec<(&str, Vec<&ReportEntry>)> = Vec::new();
    for e in entries {
        match kinds.iter_mut().find(|(k, _)| *k == e.kind) {
            Some((_, group)) => group.push(e),
            None => kinds.push((&e.kind, vec![e])),
        }
    }
    kinds
}

/// `allow-list: kind:cache matched 3; name:tmp-* matched nothing`: how many resources each
/// pattern matched, patterns escaped for a terminal; `None` without patterns.
pub fn allow_list_line<'a>(matches: impl IntoIterator<Item = (&'a str, usize)>) -> Option<String> {
    let _r = Reentrancy::enter();
    let parts: Vec<String> = matches
        .into_iter()
        .map(|(pattern, matched)| {
            let pattern = escape_text(pattern);
            match matched {
                0 => format!("{pattern} matched nothing"),
                n => format!("{pattern} matched {n}"),
            }
        })
        .collect();
    (!parts.is_empty()).then(|| format!("allow-list: {}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_and_totals() {
        assert_eq!(plural(1, "block", "blocks"), "1 block");
        assert_eq!(plural(0, "block", "blocks"), "0 blocks");
        let mut t = Totals::default();
        t.resources = 1;
        t.allocations = 2;
        t.bytes = 1536;
        assert_eq!(totals_text(t), "1 resource, 2 blocks, 1.5 KiB");
    }

    #[test]
    fn allow_list() {
        assert_eq!(allow_list_line([]), None);
        assert_eq!(
            allow_list_line([("kind:a", 2), ("name:x\n*", 0)]).as_deref(),
            Some("allow-list: kind:a matched 2; name:x\\n* matched nothing")
        );
    }
}
