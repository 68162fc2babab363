//! Totals that would overflow (two crafted leaks of 2^64-1 blocks) stop at the maximum and
//! say so, in text and JSON; nothing panics, nothing wraps round to a small number.

use leaktracker::LeakReport;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    let max = usize::MAX;
    let leak = |name: &str| {
        serde_json::json!({
            "name": name, "kind": "crafted", "age_ms": 5000,
            "allocations": max, "bytes": max
        })
    };
    let crafted = serde_json::json!({
        "version": 1, "pid": 1, "min_age_ms": 0,
        "totals": {"resources": 2, "allocations": 0, "bytes": 0},
        "leaks": [leak("a"), leak("b"), leak("c")],
        "allowed": {"resources": max, "allocations": 1, "bytes": 1}
    });
    let r = LeakReport::from_json(&crafted.to_string()).unwrap();

    let t = r.totals();
    assert_eq!((t.resources, t.allocations, t.bytes), (3, max, max));
    let shown = r.to_string();
    assert!(
        shown.contains(&format!("3 resources, {max} blocks, 16.0 EiB leaked\n")),
        "{shown}"
    );
    assert!(!shown.contains("18446744073709551614"), "{shown}");
    assert!(
        shown.contains(&format!(
            "\nwarning: some totals stopped at their maximum ({max}): the real sums are larger"
        )),
        "{shown}"
    );
    let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(j["totals"]["allocations"], max as u64);
    assert_eq!(j["totals"]["saturated"], true, "{j}");

    // Filtered again, the file's allowed totals add up with the new ones, saturating.
    let r = r
        .ignore("name:a".parse().unwrap())
        .min_age(std::time::Duration::from_secs(1));
    assert_eq!(r.ignored().resources, max);
    assert_eq!(r.ignored().allocations, max);
    assert_eq!(r.totals().resources, 2);
    let shown = r.to_string();
    assert!(shown.contains("warning: some totals stopped"), "{shown}");
    let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(j["allowed"]["saturated"], true, "{j}");

    // Real totals are not marked.
    let plain = LeakReport::from_json(
        &serde_json::json!({
            "version": 1, "pid": 1, "min_age_ms": 0,
            "totals": {"resources": 1, "allocations": 1, "bytes": 8},
            "leaks": [{"name": "x", "kind": "k", "age_ms": 1, "allocations": 1, "bytes": 8}]
        })
        .to_string(),
    )
    .unwrap();
    assert!(!plain.to_string().contains("stopped at their maximum"));
    assert!(!plain.to_json().contains("saturated"));
}
