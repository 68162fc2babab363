//! Names and kinds with newlines, terminal escape sequences and bidirectional overrides
//! are escaped in text reports (the exit report on stderr, and a report read back from
//! JSON, as `leaktracker show` prints it): one line per resource, nothing a terminal
//! acts on. The JSON report keeps the exact strings.

mod common;
use common::*;
use leaktracker::LeakReport;
use std::hint::black_box;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

const NAME: &str = "evil\n  fake-7  age 1ms  1 block  1 B\x1b[2J\x1b]0;pwned\x07";
const KIND: &str = "db\r\x1b[31mred\u{9b}";
const BIDI: &str = "invoice-\u{202e}fdp.exe";

fn leak() {
    for (name, kind) in [(NAME, KIND), (BIDI, "file"), ("plain-1", "tab\tkind")] {
        let v = black_box(vec![7u8; 10]);
        leaktracker::track_resource(&v, name, kind).unwrap();
        std::mem::forget(v);
    }
}

/// Nothing a terminal acts on: no control character but the line ends, no bidi override.
fn assert_inert(text: &str) {
    for c in text.chars() {
        assert!(
            c == '\n' || !(c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{c:?} in {text:?}"
        );
    }
}

#[test]
fn main() {
    if role().as_deref() == Some("leak") {
        leak();
        return;
    }

    // The exit report on stderr.
    let o = run_self("leak", &[("LEAKTRACKER_REPORT", "stderr")]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_inert(&err);
    assert!(
        err.contains(
            "  evil\\n  fake-7  age 1ms  1 block  1 B\\u{1b}[2J\\u{1b}]0;pwned\\u{7}  age "
        ),
        "{err}"
    );
    assert!(
        err.contains("kind db\\r\\u{1b}[31mred\\u{9b}: 1 resource, 1 block, 10 B\n"),
        "{err}"
    );
    assert!(err.contains("  invoice-\\u{202e}fdp.exe"), "{err}");
    assert!(err.contains("kind tab\\tkind: "), "{err}");
    // One header line per kind and one line per resource: the name made no lines.
    assert_eq!(err.matches("\nkind ").count(), 3, "{err}");
    assert!(!err.contains("\n  fake-7"), "{err}");

    // The JSON report keeps the exact strings.
    let dir = temp_dir("harden_text_escaping");
    let path = dir.join("r.json");
    let o = run_self("leak", &[("LEAKTRACKER_REPORT", path.to_str().unwrap())]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let json = std::fs::read_to_string(&path).unwrap();
    let j: serde_json::Value = serde_json::from_str(&json).unwrap();
    let leaks = j["leaks"].as_array().unwrap();
    assert!(
        leaks.iter().any(|l| l["name"] == NAME && l["kind"] == KIND),
        "{j}"
    );
    assert!(leaks.iter().any(|l| l["name"] == BIDI), "{j}");

    // Read back, as `leaktracker show` does, and printed: escaped the same way; patterns
    // and notes from the file too.
    let mut crafted = j.clone();
    crafted["allow_list"] = serde_json::json!([{"pattern": "name:\u{1b}[5m*", "matched": 0}]);
    crafted["notes"] = serde_json::json!(["a note\n\u{1b}[1A\u{1b}[2Kline rewritten"]);
    crafted["leaks"][0]["stacks"] = serde_json::json!([
        {"blocks": 1, "bytes": 10, "frames": ["main\u{1b}[8m hidden"]}
    ]);
    let r = LeakReport::from_json(&crafted.to_string()).unwrap();
    let shown = r.to_string();
    assert_inert(&shown);
    assert!(
        shown.contains("kind db\\r\\u{1b}[31mred\\u{9b}: "),
        "{shown}"
    );
    assert!(
        shown.contains("allow-list: name:\\u{1b}[5m* matched nothing\n"),
        "{shown}"
    );
    assert!(
        shown.contains("note: a note\\n\\u{1b}[1A\\u{1b}[2Kline rewritten\n"),
        "{shown}"
    );
    assert!(
        shown.contains("          main\\u{1b}[8m hidden\n"),
        "{shown}"
    );
    // The library keeps the exact strings.
    assert!(r.leaks().iter().any(|e| e.name == NAME && e.kind == KIND));
}
