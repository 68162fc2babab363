//! LEAKTRACKER_BACKTRACE: with backtraces, each leak shows where its blocks were
//! allocated, in the text report and in JSON (`backtrace` and `stacks`).

mod common;
use common::*;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

#[test]
fn main() {
    let exe = fixture();
    let dir = temp_dir("exit_backtraces");
    let path = dir.join("r.json");
    let o = run_fixture(
        &exe,
        "leak",
        &[
            ("LEAKTRACKER_REPORT", path.to_str().unwrap()),
            ("LEAKTRACKER_BACKTRACE", "1"),
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let j = read_json(&path);
    assert_eq!(j["backtraces"], "1");
    let conn = &j["leaks"][0];
    assert_eq!(conn["name"], "connection-1");
    let bt: Vec<&str> = conn["backtrace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        bt.iter().any(|f| f.starts_with("fixture::leak at ")),
        "{bt:#?}"
    );
    assert!(
        bt.iter().any(|f| f.starts_with("fixture::main at ")),
        "{bt:#?}"
    );
    let stacks = conn["stacks"].as_array().unwrap();
    assert_eq!(stacks.len(), 1);
    assert_eq!(stacks[0]["blocks"], 1);
    assert_eq!(stacks[0]["bytes"], 100);
    assert_eq!(stacks[0]["frames"], conn["backtrace"]);

    // Text: a group line, then the frames, indented.
    let o = run_fixture(
        &exe,
        "leak",
        &[
            ("LEAKTRACKER_REPORT", "stderr"),
            ("LEAKTRACKER_BACKTRACE", "1"),
        ],
    );
    let (_, err) = text(&o);
    let at = err
        .find("      1 block, 100 B, allocated at:\n")
        .unwrap_or_else(|| panic!("{err}"));
    let frames: Vec<&str> = err[at..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("          "))
        .collect();
    assert!(
        frames
            .iter()
            .any(|f| f.trim_start().starts_with("fixture::leak at ")),
        "{err}"
    );
    assert!(
        err.contains("      1 block, 64 B, allocated at:\n"),
        "{err}"
    );

    // Without LEAKTRACKER_BACKTRACE a report still gets stacks: the verdict needs them.
    let o = run_fixture(
        &exe,
        "leak",
        &[("LEAKTRACKER_REPORT", path.to_str().unwrap())],
    );
    assert!(o.status.success());
    let j = read_json(&path);
    assert_eq!(j["backtraces"], "1");
    assert!(j["leaks"][0].get("backtrace").is_some(), "{j}");

    // With backtraces off: no `backtrace`, no `stacks`, no frames.
    let o = run_fixture(
        &exe,
        "leak",
        &[
            ("LEAKTRACKER_REPORT", path.to_str().unwrap()),
            ("LEAKTRACKER_BACKTRACE", "0"),
        ],
    );
    assert!(o.status.success());
    let j = read_json(&path);
    assert_eq!(j["backtraces"], "0");
    assert!(
        j["leaks"][0].get("backtrace").is_none() && j["leaks"][0].get("stacks").is_none(),
        "{j}"
    );

    // Sampling is accepted and reported as set.
    let o = run_fixture(
        &exe,
        "leak",
        &[
            ("LEAKTRACKER_REPORT", path.to_str().unwrap()),
            ("LEAKTRACKER_BACKTRACE", "sample:4"),
        ],
    );
    assert_eq!(text(&o).1, "");
    assert_eq!(read_json(&path)["backtraces"], "sample:4");
}
