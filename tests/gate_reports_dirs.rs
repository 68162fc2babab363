//! `leaktracker gate --reports` and `show` over a directory of reports from many hosts
//! (reports/HOST/*.json, each process labelled with LEAKTRACKER_LABELS): the hosts that
//! ran a correct build pass the gate; the one whose process leaked fails it, named by its
//! labels, with exactly its leak; `--ignore` and `--min-age` judge the files again.

mod common;
use common::*;

use std::hint::black_box;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

/// A "service" process: a pool connection opened and closed, a request served; with
/// `leak`, connection 7 is never closed.
fn child(leak: bool) {
    let t = leaktracker::LeakTracker::global();
    let conn = black_box(vec![1u8; 300]);
    t.track(&conn, "conn-1", "database").unwrap();
    drop(conn);
    {
        let _r = t.scope("request-1", "request");
        black_box(vec![2u8; 64]);
    }
    if leak {
        let conn = black_box(vec![3u8; 700]);
        t.track(&conn, "conn-7", "database").unwrap();
        std::mem::forget(conn);
    }
}

#[test]
fn main() {
    if let Some(role) = role() {
        return child(role == "leak");
    }
    let root = temp_dir("gate_reports_dirs");
    let reports = root.join("reports");
    for (host, role) in [("a", "ok"), ("b", "leak"), ("c", "ok")] {
        let dir = reports.join(format!("host-{host}"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("leaks-%p.json");
        let labels = format!("host={host},service=api");
        let o = run_self(
            role,
            &[
                ("LEAKTRACKER_REPORT", path.to_str().unwrap()),
                ("LEAKTRACKER_LABELS", &labels),
            ],
        );
        assert!(o.status.success(), "{:?}", text(&o));
    }
    // A file being written by a reporter (a dot name) is not read.
    std::fs::write(reports.join("host-a").join(".leaks-1.json.tmp"), "{").unwrap();
    let cli = cli();
    let gate = |args: &[&str]| {
        let o = command(&cli, &[]).arg("gate").args(args).output().unwrap();
        let (out, err) = text(&o);
        (o.status.code(), out, err)
    };
    let dir = |h: &str| reports.join(format!("host-{h}")).display().to_string();
    let all = reports.display().to_string();

    // The correct hosts: nothing leaked.
    let (code, _, err) = gate(&["--reports", &dir("a"), &dir("c")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("gate: 2 reports read from 2 differently labelled sources, 0 leaked"),
        "{err}"
    );
    assert!(err.contains("leaktracker gate: ok: no leaks"), "{err}");

    // All hosts, recursively: host b's process fails it, with conn-7 and nothing else.
    let (code, _, err) = gate(&["--reports", &all]);
    assert_eq!(code, Some(1), "{err}");
    let heads: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("== process "))
        .collect();
    assert_eq!(heads.len(), 1, "{err}");
    assert!(
        heads[0].contains("[host=b,service=api] main in gate_reports_dirs"),
        "{err}"
    );
    assert!(err.contains("conn-7"), "{err}");
    assert!(
        !err.contains("conn-1") && !err.contains("request-1"),
        "{err}"
    );
    assert!(
        err.contains("gate: 3 reports read from 3 differently labelled sources, 1 leaked"),
        "{err}"
    );
    assert!(
        err.contains("FAILED: 1 process leaked 1 resource, 1 block, 700 B"),
        "{err}"
    );

    // Judged again: allow-listed, or too young to count.
    let (code, _, err) = gate(&["--ignore", "name:conn-7", "--reports", &all]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("allow-list: name:conn-7 matched 1"), "{err}");
    let (code, _, err) = gate(&["--min-age", "1h", "--reports", &all]);
    assert_eq!(code, Some(0), "{err}");

    // Nothing to judge: status 2, said in one line. Usage errors: status 2, clap's message
    // naming the argument.
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, _, err) = gate(&["--reports", empty.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("no JSON report under") && err.contains("nothing to judge"),
        "{err}"
    );
    assert!(
        err.starts_with("leaktracker: ") && err.lines().count() == 1,
        "{err}"
    );
    let (code, _, err) = gate(&["--wait", "1s", "--reports", &all]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(
            "error: the argument '--wait <DURATION>' cannot be used with '--reports <PATH>...'\n"
        ),
        "{err}"
    );
    let (code, _, err) = gate(&["--report-dir", "kept", "--reports", &all]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with("error: the argument '--report-dir <DIR>' cannot be used with '--reports"),
        "{err}"
    );
    let (code, _, err) = gate(&["--reports"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with("error: a value is required for '--reports <PATH>...'"),
        "{err}"
    );

    // `show` over the same tree: one heading per process, with its labels.
    let o = command(&cli, &[]).args(["show", &all]).output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let heads: Vec<&str> = out.lines().filter(|l| l.starts_with("== ")).collect();
    assert_eq!(heads.len(), 3, "{out}");
    for (h, host) in heads.iter().zip(["a", "b", "c"]) {
        assert!(
            h.starts_with(&format!("== [host={host},service=api] pid ")),
            "{out}"
        );
    }
}
