//! LEAKTRACKER_INTERVAL and LEAKTRACKER_KEEP: a snapshot every interval, only the newest
//! KEEP snapshot files stay; the exit report comes last and is not counted.

mod common;
mod live_common;
use common::*;
use live_common::*;

use std::hint::black_box;
use std::time::Duration;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn child() {
    let conn = vec![7u8; 100];
    leaktracker::track_resource(&conn, "connection-1", "database").unwrap();
    black_box(&conn);
    println!("ready");
    wait_for_parent();
    std::mem::forget(conn);
}

#[test]
fn main() {
    if role().is_some() {
        return child();
    }
    let dir = temp_dir("live_interval_keep");
    let template = dir.join("snap-%n-%t.json");
    let mut c = spawn_self(
        "service",
        &[
            ("LEAKTRACKER_INTERVAL", "100ms"),
            ("LEAKTRACKER_KEEP", "3"),
            ("LEAKTRACKER_REPORT", template.to_str().unwrap()),
        ],
    );
    c.expect_line("ready");
    // Wait for the sixth snapshot (its name holds a time: look for the prefix).
    let start = std::time::Instant::now();
    while files(&dir, "snap-6-").is_empty() && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!files(&dir, "snap-6-").is_empty(), "no sixth snapshot");
    c.say("exit");
    let o = c.finish();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert_eq!(err, "", "no warning");

    let mut reports: Vec<(u64, serde_json::Value, String)> = files(&dir, "snap-")
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            let j = read_json(p);
            let seq: u64 = name.split('-').nth(1).unwrap().parse().unwrap();
            (seq, j, name)
        })
        .collect();
    reports.sort_by_key(|r| r.0);
    assert_eq!(
        reports.len(),
        4,
        "3 snapshots and the exit report: {:?}",
        reports.iter().map(|r| &r.2).collect::<Vec<_>>()
    );
    let (exit_seq, exit, _) = reports.pop().unwrap();
    assert!(exit.get("trigger").is_none(), "{exit:#}");
    assert_eq!(exit["leaks"][0]["name"], "connection-1");
    // The snapshots left are the newest three, consecutive, just before the exit report.
    let seqs: Vec<u64> = reports.iter().map(|r| r.0).collect();
    assert!(exit_seq >= 7, "{exit_seq}");
    assert_eq!(seqs, [exit_seq - 3, exit_seq - 2, exit_seq - 1]);
    let mut last_ms = 0;
    for (seq, j, name) in &reports {
        assert_eq!(j["trigger"], "interval", "{name}");
        assert_eq!(j["seq"].as_u64(), Some(*seq));
        // %t is the Unix time in seconds of the snapshot.
        let t: u64 = name
            .trim_end_matches(".json")
            .split('-')
            .nth(2)
            .unwrap()
            .parse()
            .unwrap();
        let ms = j["time_unix_ms"].as_u64().unwrap();
        assert!(
            ms / 1000 >= t.saturating_sub(1) && ms / 1000 <= t + 1,
            "{name}: {ms}"
        );
        assert!(ms >= last_ms);
        last_ms = ms;
        assert_eq!(j["leaks"][0]["name"], "connection-1", "{name}");
        assert_eq!(j["leaks"][0]["bytes"], 100);
    }
}
