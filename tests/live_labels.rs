//! LEAKTRACKER_LABELS: copied into every report, JSON, text, snapshots and reports made
//! by code.

mod common;
mod live_common;
use common::*;
use live_common::*;

use std::time::Duration;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn child() {
    let conn = vec![7u8; 100];
    leaktracker::track_resource(&conn, "connection-1", "database").unwrap();
    std::mem::forget(conn);
    let r = leaktracker::LeakReport::of_all();
    println!("labels {:?}", r.labels());
    let json = r.to_json();
    let back = leaktracker::LeakReport::from_json(&json).unwrap();
    println!("read back {:?}", back.labels());
    eprint!("{r}");
    println!("ready");
    wait_for_parent();
}

#[test]
fn main() {
    if role().is_some() {
        return child();
    }
    let dir = temp_dir("live_labels");
    let template = dir.join("r-%n.json");
    let mut c = spawn_self(
        "service",
        &[
            ("LEAKTRACKER_LABELS", "service=api,region=eu"),
            ("LEAKTRACKER_SIGNAL", "USR1"),
            ("LEAKTRACKER_REPORT", template.to_str().unwrap()),
        ],
    );
    let before = c.expect_line("ready");
    c.signal(libc::SIGUSR1);
    assert!(wait_for_file(
        &dir.join("r-1.json"),
        Duration::from_secs(60)
    ));
    c.say("exit");
    let o = c.finish();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let pairs = r#"[("service", "api"), ("region", "eu")]"#;
    assert!(before.contains(&format!("labels {pairs}")), "{before}");
    // JSON keeps them as an object (keys sorted).
    assert!(
        before.contains(r#"read back [("region", "eu"), ("service", "api")]"#),
        "{before}"
    );
    assert!(err.contains("\nlabels: service=api, region=eu\n"), "{err}");
    let want = serde_json::json!({"service": "api", "region": "eu"});
    let snap = read_json(&dir.join("r-1.json"));
    assert_eq!(snap["trigger"], "signal");
    assert_eq!(snap["labels"], want, "{snap:#}");
    let exit = read_json(&dir.join("r-2.json"));
    assert_eq!(exit["labels"], want, "{exit:#}");
    assert_eq!(exit["leaks"][0]["name"], "connection-1");
}
