//! Property tests of every parser of user input: allow-list patterns, ages, names, and
//! the `LEAKTRACKER_*` environment values. Arbitrary input never panics, and what parses
//! means what it says.
//!
//! * In process: `IgnorePattern` (`FromStr`, `Display`, `matches`), `report::parse_age`,
//!   `report::normalize_name`.
//! * `ExitReport::from_env` with arbitrary values, in a child process (its warnings go
//!   to the child's stderr, checked by the parent).
//! * Start-up: children started with arbitrary `LEAKTRACKER_*` values (valid, near
//!   misses, random text, bytes that are not UTF-8) read them before `main`, then tag,
//!   list and free; each must exit 0 without a panic.

mod common;

use std::ffi::OsString;
use std::hint::black_box;
use std::os::unix::ffi::OsStringExt;
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use leaktracker::report::{normalize_name, parse_age};
use leaktracker::{ExitReport, IgnorePattern, LeakTracker, TrackingAllocator};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

const VARS: [&str; 7] = [
    "LEAKTRACKER_MIN_AGE",
    "LEAKTRACKER_EXIT_CODE",
    "LEAKTRACKER_IGNORE",
    "LEAKTRACKER_BACKTRACE",
    "LEAKTRACKER_UNWIND",
    "LEAKTRACKER_MAX_RECORDS",
    "LEAKTRACKER_REPORT",
];

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn run<T: std::fmt::Debug>(
    cases: u32,
    strategy: impl Strategy<Value = T>,
    test: impl Fn(T) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(config(cases));
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

/// Text for a value: near misses of the valid spellings, random text, or anything.
fn value_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,25}(ms|s|m|h|x|µs|)",
        " ?-?[0-9]{0,4} ?",
        "(sample:|Sample:|sample)[0-9-]{0,12}",
        "((kind|name|kin|nam|Kind)[:=]?[a-z*?\\-]{0,6},? ?){0,4}",
        "\\PC{0,40}",
        any::<String>(),
    ]
}

/// A value as the OS passes it: text, or bytes that are not UTF-8 (never a nul).
fn value_os() -> impl Strategy<Value = OsString> {
    prop_oneof![
        4 => value_text().prop_map(|s| OsString::from(s.replace('\0', ""))),
        1 => prop::collection::vec(1u8..=255, 0..24).prop_map(OsString::from_vec),
    ]
}

fn in_process() {
    // Patterns: `kind:` or `name:` then a glob; anything else is an error, never a panic.
    run(3000, any::<String>(), |s| {
        let parsed = IgnorePattern::from_str(&s);
        let valid = s.starts_with("kind:") || s.starts_with("name:");
        prop_assert_eq!(parsed.is_ok(), valid, "{:?}", s);
        match parsed {
            Ok(p) => prop_assert_eq!(p.to_string(), s),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        Ok(())
    });
    // Globs: a literal matches itself only; `*` matches any run; no panic on any text.
    let text = "[a-c*]{0,12}|\\PC{0,20}";
    run(3000, (text, text, text), |(glob, name, kind)| {
        let by_name = IgnorePattern::from_str(&format!("name:{glob}")).unwrap();
        let by_kind = IgnorePattern::from_str(&format!("kind:{glob}")).unwrap();
        let m = by_name.matches(&name, &kind);
        prop_assert_eq!(by_kind.matches(&kind, &name), m);
        if !glob.contains('*') {
            prop_assert_eq!(m, glob == name);
        }
        if glob == "*" {
            prop_assert!(m);
        }
        // `prefix*` matches exactly the names that start with `prefix`.
        let prefix: String = glob.chars().filter(|&c| c != '*').collect();
        let p = IgnorePattern::from_str(&format!("name:{prefix}*")).unwrap();
        prop_assert_eq!(p.matches(&name, &kind), name.starts_with(&prefix));
        // A name always matches a glob made of itself with its characters starred.
        let starred: String = name.chars().flat_map(|c| [c, '*']).collect();
        let p = IgnorePattern::from_str(&format!("name:*{starred}")).unwrap();
        prop_assert!(p.matches(&name, &kind));
        Ok(())
    });
    // Long patterns and texts: no blow-up, no panic.
    run(200, ("[a*]{0,200}", "a{0,400}b?"), |(glob, name)| {
        let p = IgnorePattern::from_str(&format!("name:{glob}")).unwrap();
        let m = p.matches(&name, "");
        // A glob of `a`s and stars matches a name ending in `b` only through a final star.
        prop_assert!(!(m && name.ends_with('b')) || glob.ends_with('*'));
        // And `a…a` (all of them) matches a name of `a`s when it has no more `a`s than it.
        let letters = glob.chars().filter(|&c| c == 'a').count();
        if !name.ends_with('b') && glob.ends_with('*') && glob.starts_with('*') {
            prop_assert_eq!(m, letters <= name.len());
        }
        Ok(())
    });
    // Ages: any text parses or not, never a panic; the documented spellings are exact.
    run(3000, value_text(), |s| {
        black_box(parse_age(&s));
        Ok(())
    });
    run(3000, (0u64..u64::MAX, 0usize..4), |(n, unit)| {
        let (suffix, ms) = [("ms", 1u64), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)][unit];
        let want = n.checked_mul(ms).map(Duration::from_millis);
        prop_assert_eq!(parse_age(&format!("{n}{suffix}")), want);
        Ok(())
    });
    assert_eq!(parse_age("0"), Some(Duration::ZERO));
    assert_eq!(parse_age("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_age(""), None);
    assert_eq!(parse_age("ms"), None);
    assert_eq!(parse_age("99999999999999999999999s"), None);
    // Names: normalising any text is a total, idempotent function.
    run(
        3000,
        "\\PC{0,40}|(scope-|task-|obj-0x|0x)[0-9a-fx]{0,20}.{0,4}",
        |s| {
            let once = normalize_name(&s).into_owned();
            prop_assert_eq!(normalize_name(&once).into_owned(), once);
            Ok(())
        },
    );
}

/// Child role: `ExitReport::from_env` with arbitrary values, many times.
fn from_env_child() {
    run(
        2000,
        prop::collection::vec(prop::option::of(value_os()), VARS.len()),
        |values| {
            for (var, v) in VARS.iter().zip(&values) {
                match v {
                    Some(v) => std::env::set_var(var, v),
                    None => std::env::remove_var(var),
                }
            }
            drop(black_box(ExitReport::from_env()));
            Ok(())
        },
    );
    println!("FROM_ENV_DONE");
}

/// Child role: ordinary work after a start-up with arbitrary values.
fn work_child() {
    let t = LeakTracker::new();
    let v = {
        let _s = t.scope("work", "parse");
        black_box(vec![1u8; 100])
    };
    let w = black_box(vec![2u8; 10]);
    let _ = t.track(&w, "tracked", "parse");
    let live = t.live();
    black_box(live.iter().map(|i| i.to_string()).collect::<Vec<_>>());
    drop((v, w));
    assert!(t.live().is_empty());
}

fn child(role: &str) -> Command {
    let mut c = common::self_command(role, &[]);
    for v in VARS {
        c.env_remove(v);
    }
    c
}

#[test]
fn main() {
    match std::env::var(common::ROLE).as_deref() {
        Ok("from_env") => return from_env_child(),
        Ok("work") => return work_child(),
        _ => {}
    }
    in_process();

    // `from_env` on arbitrary values, in a child.
    let out = child("from_env").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("FROM_ENV_DONE"),
        "{:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Start-up with arbitrary values, in a directory of its own (reports may be written).
    let dir = std::env::temp_dir().join(format!("leaktracker-parse-props-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = prop_oneof![
        Just(None),
        Just(Some(OsString::from("stderr"))),
        Just(Some(OsString::new())),
        // A file name in `dir`: no separator, never a nul.
        "[^/\\x00]{1,30}(\\.json|\\.txt|%p|)"
            .prop_filter("a file name", |s| s != "." && s != "..")
            .prop_map(|s| Some(OsString::from(s))),
    ];
    let others = prop::collection::vec(prop::option::of(value_os()), VARS.len() - 1);
    run(48, (others, report), |(values, report)| {
        let mut c = child("work");
        c.current_dir(&dir);
        for (var, v) in VARS.iter().zip(&values) {
            if let Some(v) = v {
                c.env(var, v);
            }
        }
        if let Some(r) = &report {
            c.env("LEAKTRACKER_REPORT", r);
        }
        let out = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        prop_assert!(
            out.status.success(),
            "{:?} with {:?} {:?}\n{}",
            out.status,
            values,
            report,
            stderr
        );
        prop_assert!(!stderr.contains("panicked"), "{}", stderr);
        Ok(())
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
