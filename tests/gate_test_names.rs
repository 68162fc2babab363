//! The gate names each leaking process by what it ran: a libtest binary asked for one test
//! (`BIN --exact a::leaks`, as `cargo nextest run` runs every test in a process of its own)
//! by the test's name and the binary's name without cargo's hash; any other program by its
//! name and arguments. The names come from the `args` the reports carry.

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

const SUITE: &str = r#"
#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

mod a {
    #[test]
    fn leaks() {
        let v = std::hint::black_box(vec![1u8; 40]);
        leaktracker::track_resource(&v, "lost-buffer", "buffer").unwrap();
        std::mem::forget(v);
    }

    #[test]
    fn clean() {}
}
"#;

#[test]
fn main() {
    let built = build_fixture_with("suite", SUITE, &["--test"]);
    // Named as cargo names test binaries.
    let suite = built.with_file_name("suite-0123456789abcdef");
    std::fs::copy(&built, &suite).unwrap();
    let s = suite.to_str().unwrap();
    let tool = cli();
    let gate = |args: &[&str]| {
        let o = command(&tool, &[])
            .arg("gate")
            .arg("--")
            .args(args)
            .output()
            .unwrap();
        (o.status.code(), text(&o).1)
    };

    // As nextest runs a test: one process per test.
    let (code, err) = gate(&[s, "--exact", "a::leaks", "--nocapture"]);
    assert_eq!(code, Some(1), "{err}");
    let heads: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("== process "))
        .collect();
    assert_eq!(heads.len(), 1, "{err}");
    assert!(heads[0].ends_with(": a::leaks in suite"), "{err}");
    // Older nextest and hand-written runs put the name first; libtest options with values
    // are not taken for test names.
    let (code, err) = gate(&[s, "a::leaks", "--exact", "--test-threads", "1"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(": a::leaks in suite\n"), "{err}");
    // The clean test alone passes.
    let (code, err) = gate(&[s, "--exact", "a::clean"]);
    assert_eq!(code, Some(0), "{err}");

    // Any other program: its name and arguments.
    let exe = fixture();
    let (code, err) = gate(&[exe.to_str().unwrap(), "leak"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(": fixture leak\n"), "{err}");
}
