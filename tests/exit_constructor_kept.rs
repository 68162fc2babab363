//! The start-up constructor runs in a program that only installs the allocator (the
//! linker keeps it although nothing refers to it).

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

const MINIMAL: &str = r#"
#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();
fn main() {}
"#;

#[test]
fn main() {
    let exe = build_fixture("minimal", MINIMAL);
    let dir = temp_dir("exit_constructor_kept");
    let path = dir.join("r.json");
    let o = command(&exe, &[("LEAKTRACKER_REPORT", path.to_str().unwrap())])
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    let j = read_json(&path);
    assert_eq!(j["version"], 1);
    assert_eq!(j["allocator_installed"], true);
    assert_eq!(j["leaks"].as_array().unwrap().len(), 0);

    // And a bad value is reported before main, once.
    let o = command(&exe, &[("LEAKTRACKER_MIN_AGE", "soon")])
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert!(o.status.success());
    assert_eq!(
        err,
        "leaktracker: LEAKTRACKER_MIN_AGE=\"soon\" is not a duration (0, 250ms, 5s, 2m, 1h); using 0\n"
    );
}
