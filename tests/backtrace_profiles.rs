//! Backtraces are right in every build profile: the fixture of `tests/backtrace_profiles/`
//! is built with `rustc` in each profile (opt-level 0 and 3; debug info none, line tables
//! only, limited, full; debug info stripped; split debug info; `panic = "abort"`; frame
//! pointers) and run with each unwinder. In every build: no frame of leaktracker, of the
//! unwinders or of the allocator shims; each stack's first frame is the user function that
//! allocated; the functions that were not inlined have the same full names in every build
//! (from the symbol table where the debug info has short names); files and lines wherever
//! the build has line tables; the outer frames (`Once`, `main`) are there.
//! (Thin and fat LTO, which need the whole crate graph rebuilt, are checked by
//! `backtrace_optimised.rs` in the `ship-lto-lt` and `ship-thin-lto` profiles, in CI.)

mod common;
use common::*;

use leaktracker::TrackingAllocator;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

/// The allocating functions of the fixture, one stack each.
const SITES: [&str; 4] = [
    "fixture::config::load_table",
    "fixture::service::add_lines",
    "fixture::service::create_order",
    "fixture::worker::handle",
];

/// Builds the fixture (crate `fixture`) with `flags` into a directory of its own.
fn build(tag: &str, flags: &[&str]) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let rlib = std::fs::read_dir(deps)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("libleaktracker-") && n.ends_with(".rlib")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .expect("the leaktracker rlib next to the test binary")
        .path();
    let dir = temp_dir(&format!("profile-{tag}"));
    let out = dir.join("fixture");
    let src = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/backtrace_profiles/src/main.rs"
    );
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let o = std::process::Command::new(rustc)
        .args(["--edition", "2021", "--crate-name", "fixture"])
        .args(flags)
        .arg(src)
        .arg("--extern")
        .arg(format!("leaktracker={}", rlib.display()))
        .arg("-L")
        .arg(format!("dependency={}", deps.display()))
        .arg("-o")
        .arg(&out)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{tag} did not build:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// The fixture's stack groups, sorted by first frame: each a list of frames.
fn run(exe: &std::path::Path, unwind: &str) -> Vec<Vec<String>> {
    let o = command(exe, &[("LEAKTRACKER_UNWIND", unwind)])
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{}: {err}", exe.display());
    let mut groups: Vec<Vec<String>> = Vec::new();
    for line in out.lines() {
        if line.starts_with("G ") {
            groups.push(Vec::new());
        } else if let Some(f) = line.strip_prefix("F ") {
            groups.last_mut().expect("a group").push(f.to_string());
        }
    }
    groups.sort();
    groups
}

fn name(frame: &str) -> &str {
    frame.split(" at ").next().unwrap()
}

/// Functions the fixture keeps out of line (`#[inline(never)]`) and `main`: named the same
/// in every build.
fn named_user_frames(g: &[String]) -> Vec<&str> {
    g.iter()
        .map(|f| name(f))
        .filter(|n| SITES.contains(n) || *n == "fixture::main" || *n == "fixture::config::table")
        .collect()
}

fn check(tag: &str, groups: &[Vec<String>], line_tables: bool) {
    let own_src = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");
    let firsts: Vec<&str> = groups.iter().map(|g| name(&g[0])).collect();
    assert_eq!(firsts, SITES, "{tag}: first frames: {groups:#?}");
    for g in groups {
        for f in g {
            let bad = [
                "leaktracker",
                "backtrace::",
                "framehop",
                "_Unwind",
                "__rust_alloc",
                "__rg_alloc",
            ]
            .iter()
            .chain(
                [
                    "GlobalAlloc",
                    "alloc_flagged",
                    "TrackingAllocator",
                    "__rustc::",
                ]
                .iter(),
            )
            .any(|b| f.contains(b))
                || f.contains(own_src);
            assert!(!bad, "{tag}: an own frame: {f}\n{g:#?}");
        }
        if line_tables {
            assert!(
                g[0].contains("backtrace_profiles/src/main.rs:"),
                "{tag}: file and line of the first frame: {g:#?}"
            );
        } else {
            assert!(!g[0].contains(" at "), "{tag}: no line tables: {g:#?}");
        }
    }
    // The outer frames are there: the static's initialiser runs inside `Once`, under `main`.
    let table = &groups[0];
    assert!(
        table.iter().any(|f| name(f).contains("Once")),
        "{tag}: {table:#?}"
    );
    assert!(
        table.iter().any(|f| name(f) == "fixture::main"),
        "{tag}: {table:#?}"
    );
}

#[test]
fn main() {
    let profiles: &[(&str, &[&str], bool)] = &[
        ("o0-debug-full", &["-Copt-level=0", "-Cdebuginfo=2"], true),
        ("o3-debug-none", &["-Copt-level=3", "-Cdebuginfo=0"], false),
        (
            "o3-line-tables-only",
            &["-Copt-level=3", "-Cdebuginfo=line-tables-only"],
            true,
        ),
        (
            "o3-debug-limited",
            &["-Copt-level=3", "-Cdebuginfo=1"],
            true,
        ),
        ("o3-debug-full", &["-Copt-level=3", "-Cdebuginfo=2"], true),
        (
            "o3-strip-debuginfo",
            &["-Copt-level=3", "-Cdebuginfo=2", "-Cstrip=debuginfo"],
            false,
        ),
        (
            "o3-split-debuginfo",
            &[
                "-Copt-level=3",
                "-Cdebuginfo=2",
                "-Csplit-debuginfo=unpacked",
            ],
            true,
        ),
        (
            "o3-panic-abort",
            &[
                "-Copt-level=3",
                "-Cdebuginfo=line-tables-only",
                "-Cpanic=abort",
            ],
            true,
        ),
        (
            "o3-frame-pointers",
            &[
                "-Copt-level=3",
                "-Cdebuginfo=line-tables-only",
                "-Cforce-frame-pointers=yes",
            ],
            true,
        ),
    ];
    let mut reference: Option<Vec<Vec<&str>>> = None;
    let mut all = Vec::new();
    for (tag, flags, line_tables) in profiles {
        let exe = build(tag, flags);
        let tables = run(&exe, "tables");
        check(tag, &tables, *line_tables);
        // The system unwinder walks the same frames.
        let system = run(&exe, "system");
        assert_eq!(system, tables, "{tag}: system unwinder vs tables");
        all.push((tag, tables));
    }
    for (tag, groups) in &all {
        let named: Vec<Vec<&str>> = groups.iter().map(|g| named_user_frames(g)).collect();
        match &reference {
            None => reference = Some(named),
            Some(r) => assert_eq!(
                &named, r,
                "{tag}: the same named frames as {}",
                profiles[0].0
            ),
        }
    }
    // The frame-pointer walk, in the build with frame pointers, finds the same stacks.
    let (_, fp_tables) = all
        .iter()
        .find(|(t, _)| **t == "o3-frame-pointers")
        .unwrap();
    let exe = temp_dir_path("profile-o3-frame-pointers").join("fixture");
    let fp = run(&exe, "frame-pointers");
    assert_eq!(&fp, fp_tables, "frame pointers vs tables");
}

/// The directory `build` used for `tag` (without emptying it).
fn temp_dir_path(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}", std::process::id()))
}
