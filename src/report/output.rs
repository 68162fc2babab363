//! Where reports go: the labels copied into every report (`LEAKTRACKER_LABELS`), and the
//! sequence numbers and `%p`/`%n`/`%t` templates of the report paths, shared by the exit
//! report and the live snapshots.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::guard::Reentrancy;

static LABELS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sets the labels copied into every report.
pub(crate) fn set_labels(_r: &Reentrancy, labels: Vec<(String, String)>) {
    *lock(&LABELS) = labels;
}

/// The labels copied into every report (`LEAKTRACKER_LABELS`).
pub(crate) fn labels(_r: &Reentrancy) -> Vec<(String, String)> {
    lock(&LABELS).clone()
}

/// Reports written to a path so far in this process (snapshots and the exit report).
static SEQ: AtomicU64 = AtomicU64::new(0);

/// The sequence number of the next report written to a path (1, 2, …).
pub(crate) fn next_seq() -> u64 {
    SEQ.fetch_add(1, Ordering::Relaxed) + 1
}

/// Unix time in seconds.
pub(crate) fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Expands a report path: `%p` the process id, `%n` the sequence number `seq`, `%t` Unix
/// time in seconds, `%%` a `%`; any other `%` stays as it is.
pub(crate) fn expand_path(_r: &Reentrancy, template: &str, seq: u64, unix_secs: u64) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let rest = chars.as_str();
        match rest.chars().next() {
            Some('p') => out.push_str(&std::process::id().to_string()),
            Some('n') => out.push_str(&seq.to_string()),
            Some('t') => out.push_str(&unix_secs.to_string()),
            Some('%') => out.push('%'),
            _ => {
                out.push('%');
                continue;
            }
        }
        chars.next();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let pid = std::process::id();
        let r = Reentrancy::enter();
        assert_eq!(
            expand_path(&r, "snap-%p-%n-%t.json", 7, 1_700_000_000),
            format!("snap-{pid}-7-1700000000.json")
        );
        assert_eq!(expand_path(&r, "a%%n%x%", 1, 2), "a%n%x%");
        assert_eq!(expand_path(&r, "plain.json", 1, 2), "plain.json");
    }

    proptest::proptest! {
        #[test]
        fn any_template_expands(s in "\\PC*") {
            let _ = expand_path(&Reentrancy::enter(), &s, 3, 4);
        }
    }
}
