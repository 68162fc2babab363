//! `leaktracker show|diff|flamegraph` refuse a report of a schema version they do not know
//! (newer than this build, or 0, or not a number) with one clear line and exit 2; reports
//! of a known version (1 up to `JSON_VERSION`) are read as before.

mod common;
use common::*;

use leaktracker::report::JSON_VERSION;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

/// A report with one leak, of schema `version` (written as is: a number or anything else).
fn report(version: &str) -> String {
    format!(
        r#"{{"version":{version},"pid":7,"min_age_ms":0,
            "totals":{{"resources":1,"allocations":1,"bytes":10}},
            "leaks":[{{"name":"conn-1","kind":"db","age_ms":5,"allocations":1,"bytes":10,
                       "backtrace":["main"]}}]}}"#
    )
}

#[test]
fn main() {
    let tool = cli();
    let dir = temp_dir("cli_version");
    let newest = JSON_VERSION.to_string();
    let known = dir.join("known.json");
    std::fs::write(&known, report(&newest)).unwrap();
    let v1 = dir.join("v1.json");
    std::fs::write(&v1, report("1")).unwrap();

    // Known versions: read.
    for path in [&known, &v1] {
        let o = command(&tool, &[]).arg("show").arg(path).output().unwrap();
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert!(out.contains("conn-1"), "{out}");
        let o = command(&tool, &[])
            .arg("diff")
            .arg(&v1)
            .arg(path)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
        let o = command(&tool, &[])
            .arg("flamegraph")
            .arg(path)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
        assert!(text(&o).0.contains("<svg"));
    }

    // Unknown versions: refused by every command, one line naming the file and version.
    let future = (u64::from(JSON_VERSION) + 98).to_string();
    for (version, says) in [
        (future.as_str(), "newer than this leaktracker reads"),
        ("0", "not one leaktracker knows"),
        ("-1", "not one leaktracker knows"),
        ("1.5", "not one leaktracker knows"),
        ("\"1\"", "not one leaktracker knows"),
    ] {
        let bad = dir.join("bad.json");
        std::fs::write(&bad, report(version)).unwrap();
        let runs: [Vec<&std::path::Path>; 4] = [
            vec![std::path::Path::new("show"), &bad],
            vec![std::path::Path::new("diff"), &v1, &bad],
            vec![std::path::Path::new("diff"), &bad, &v1],
            vec![std::path::Path::new("flamegraph"), &bad],
        ];
        for args in runs {
            let o = command(&tool, &[]).args(&args).output().unwrap();
            let (out, err) = text(&o);
            assert_eq!(o.status.code(), Some(2), "{args:?} {version}: {out}{err}");
            assert!(out.is_empty(), "{args:?} {version}: {out}");
            assert_eq!(err.lines().count(), 1, "{args:?} {version}: {err}");
            assert!(
                err.starts_with(&format!(
                    "leaktracker: {}: report format version ",
                    bad.display()
                )),
                "{args:?} {version}: {err}"
            );
            assert!(err.contains(says), "{args:?} {version}: {err}");
        }
    }

    // A directory with one report of an unknown version is refused too.
    let sub = dir.join("dir");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("a.json"), report("1")).unwrap();
    std::fs::write(sub.join("b.json"), report(&future)).unwrap();
    let o = command(&tool, &[]).arg("show").arg(&sub).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(text(&o).1.contains("b.json: report format version"));
}
