//! `leaktracker show` prints a JSON report as text; `leaktracker diff` lists only the
//! leaks that the baseline does not have, and fails on them.
//!
//! The reports are made by this test binary, re-run as a child in a role: `leak` leaks a
//! tracked `Vec` of 100 bytes ("connection-1", "database") and a 64-byte block made in a
//! scope ("session-7", "session"); `cache` leaks the same and two tracked 30-byte `Vec`s
//! ("global-cache", "cache" and "global-pool", "pool").

mod common;
use common::*;

use leaktracker::LeakTracker;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

static TRACKER: LeakTracker = LeakTracker::new();

fn child(role: &str) {
    match role {
        "leak" => leak_pair(&TRACKER),
        "cache" => {
            leak_pair_and_caches(&TRACKER);
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn main() {
    if let Some(r) = role() {
        return child(&r);
    }
    let tool = cli();
    let dir = temp_dir("cli_show_diff");
    let base = dir.join("base.json");
    let new = dir.join("new.json");
    // base: connection-1, session-7. new: the same plus global-cache and global-pool.
    let o = run_self("leak", &[("LEAKTRACKER_REPORT", base.to_str().unwrap())]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = run_self("cache", &[("LEAKTRACKER_REPORT", new.to_str().unwrap())]);
    assert!(o.status.success(), "{:?}", text(&o));

    // show
    let o = command(&tool, &[]).arg("show").arg(&base).output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        out.contains("): 2 resources, 2 blocks, 164 B leaked\n"),
        "{out}"
    );
    assert!(
        out.contains("kind database: 1 resource, 1 block, 100 B\n  connection-1  age "),
        "{out}"
    );
    assert!(
        out.contains("kind session: 1 resource, 1 block, 64 B\n  session-7     age "),
        "{out}"
    );

    // diff: new leaks only, by kind; fails.
    let o = command(&tool, &[])
        .arg("diff")
        .arg(&base)
        .arg(&new)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert_eq!(
        out,
        "leaktracker diff: 2 new leaks (not in the baseline):\n  kind cache:\n    global-cache  (1 block, 30 bytes)\n  kind pool:\n    global-pool  (1 block, 30 bytes)\n"
    );

    // The other way round: nothing new; two leaks of the baseline are gone.
    let o = command(&tool, &[])
        .arg("diff")
        .arg(&new)
        .arg(&base)
        .output()
        .unwrap();
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        out,
        "leaktracker diff: no new leaks\nleaktracker diff: 2 leaks of the baseline are gone: the baseline can shrink\n"
    );

    // Names with addresses and default scope numbers compare equal across runs.
    let a = r#"{"version":1,"pid":1,"min_age_ms":0,"totals":{"resources":2,"allocations":2,"bytes":2},
        "leaks":[{"name":"obj-0x55aa10","kind":"k","age_ms":1,"allocations":1,"bytes":1},
                 {"name":"scope-3","kind":"s","age_ms":1,"allocations":1,"bytes":1}]}"#;
    let b = a
        .replace("0x55aa10", "0x7f0012")
        .replace("scope-3", "scope-12");
    std::fs::write(dir.join("a.json"), a).unwrap();
    std::fs::write(dir.join("b.json"), &b).unwrap();
    let o = command(&tool, &[])
        .arg("diff")
        .arg(dir.join("a.json"))
        .arg(dir.join("b.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    // One more of the same kind and name is new.
    let c = b.replace(
        r#""leaks":["#,
        r#""leaks":[{"name":"scope-99","kind":"s","age_ms":1,"allocations":3,"bytes":300},"#,
    );
    std::fs::write(dir.join("c.json"), &c).unwrap();
    let o = command(&tool, &[])
        .arg("diff")
        .arg(dir.join("a.json"))
        .arg(dir.join("c.json"))
        .output()
        .unwrap();
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.starts_with(
            "leaktracker diff: 1 new leak (not in the baseline):\n  kind s:\n    scope-"
        ),
        "{out}"
    );

    // Errors: exit 2 with one clear line.
    let o = command(&tool, &[])
        .arg("show")
        .arg(dir.join("missing.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.starts_with("leaktracker: "), "{:?}", text(&o));
    std::fs::write(dir.join("bad.json"), "{\"leaks\": 3}").unwrap();
    let o = command(&tool, &[])
        .arg("show")
        .arg(dir.join("bad.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("not a leaktracker JSON report"),
        "{:?}",
        text(&o)
    );
    let o = command(&tool, &[]).arg("diff").arg(&base).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o).1;
    assert!(
        err.starts_with("error: the following required arguments were not provided:\n  <NEW>\n"),
        "{err}"
    );
    assert!(
        err.contains("Usage: leaktracker diff <BASE> <NEW>"),
        "{err}"
    );
    let o = command(&tool, &[])
        .args(["flamegraph", "x.json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o).1,
        "leaktracker: x.json: No such file or directory (os error 2)\n"
    );
    let o = command(&tool, &[]).arg("frobnicate").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}
