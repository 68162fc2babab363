//! Reports at any time: of one tracker or of all; a report made inside a scope tags none
//! of its own allocations; writing to a file replaces it whole, and a failed write leaves
//! the old file as it was.

use leaktracker::{LeakReport, LeakTracker, TrackingAllocator};
use std::hint::black_box;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

#[test]
fn main() {
    let a = LeakTracker::new();
    let b = LeakTracker::new();
    let va = black_box(vec![0u8; 10]);
    a.track(&va, "a-1", "alpha").unwrap();
    let vb = black_box(vec![0u8; 20]);
    b.track(&vb, "b-1", "beta").unwrap();

    let ra = LeakReport::of(&a);
    assert_eq!(ra.leaks().len(), 1);
    assert_eq!(ra.leaks()[0].name, "a-1");
    assert_eq!(ra.totals().bytes, 10);
    let all = LeakReport::of_all();
    let names: Vec<&str> = all.leaks().iter().map(|e| e.name.as_str()).collect();
    assert!(
        names.contains(&"a-1") && names.contains(&"b-1"),
        "{names:?}"
    );
    assert_eq!(LeakReport::of(&LeakTracker::new()).leaks().len(), 0);

    // Inside a scope: the report, its text, its JSON and its file allocate, untagged.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("on-demand-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("r.json");
    let kept = {
        let _scope = a.scope("reporting", "scope");
        let r = LeakReport::of_all().ignore("kind:zzz".parse().unwrap());
        let t = r.to_string();
        let j = r.to_json();
        r.write_to(&file).unwrap();
        r.write_to(dir.join("r.txt")).unwrap();
        (r, t, j)
    };
    let after = LeakReport::of(&a);
    let names: Vec<&str> = after.leaks().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["a-1"], "nothing the report allocated is tagged");
    assert!(kept.1.contains("kind beta"));
    assert!(kept.2.contains("\"b-1\""));

    // Files: replaced whole, no temporary file left; a failed write keeps the old file.
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(j["version"], 1);
    assert!(std::fs::read_to_string(dir.join("r.txt"))
        .unwrap()
        .starts_with("leaktracker report (pid "));
    drop(va);
    LeakReport::of(&a).write_to(&file).unwrap();
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(j["leaks"].as_array().unwrap().len(), 0);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["r.json", "r.txt"]);
    let before = std::fs::read_to_string(&file).unwrap();
    // A directory where the file should go: the rename fails.
    std::fs::create_dir_all(dir.join("busy.json").join("x")).unwrap();
    assert!(LeakReport::of(&b).write_to(dir.join("busy.json")).is_err());
    assert!(dir.join("busy.json").join("x").is_dir());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    let names = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(names, 3, "the temporary file was removed");
    drop(vb);
}
