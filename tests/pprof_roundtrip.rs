//! pprof profiles decoded again (a protobuf reader written for this test): the samples
//! add up to the report's totals, carry its names, kinds, ages and labels, and their
//! stacks are the report's frames; a report read back from JSON gives the same profile.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::Read;
use std::time::Duration;

use leaktracker::{LeakReport, LeakTracker, TrackingAllocator};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

/// Fields of one message: field number -> values (varints, or bytes).
#[derive(Debug, Default)]
struct Fields {
    ints: BTreeMap<u32, Vec<u64>>,
    bytes: BTreeMap<u32, Vec<Vec<u8>>>,
}

fn varint(b: &[u8], i: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let c = b[*i];
        *i += 1;
        v |= u64::from(c & 0x7f) << shift;
        if c < 0x80 {
            return v;
        }
        shift += 7;
    }
}

fn decode(b: &[u8]) -> Fields {
    let mut f = Fields::default();
    let mut i = 0;
    while i < b.len() {
        let key = varint(b, &mut i);
        let (field, wire) = ((key >> 3) as u32, key & 7);
        match wire {
            0 => f.ints.entry(field).or_default().push(varint(b, &mut i)),
            2 => {
                let n = varint(b, &mut i) as usize;
                f.bytes.entry(field).or_default().push(b[i..i + n].to_vec());
                i += n;
            }
            w => panic!("wire type {w} not used by profile.proto writers here"),
        }
    }
    f
}

fn packed(b: &[u8]) -> Vec<u64> {
    let mut i = 0;
    let mut v = Vec::new();
    while i < b.len() {
        v.push(varint(b, &mut i));
    }
    v
}

fn int(f: &Fields, n: u32) -> u64 {
    f.ints.get(&n).and_then(|v| v.first().copied()).unwrap_or(0)
}

/// One decoded sample: values, string labels, numeric labels, leaf-first function names.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Sample {
    values: Vec<u64>,
    labels: BTreeMap<String, String>,
    nums: BTreeMap<String, (u64, String)>,
    functions: Vec<String>,
}

fn read_profile(gz: &[u8]) -> (Vec<String>, Vec<Sample>, Vec<String>) {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut raw)
        .unwrap();
    let p = decode(&raw);
    let strings: Vec<String> = p.bytes[&6]
        .iter()
        .map(|s| String::from_utf8(s.clone()).unwrap())
        .collect();
    assert_eq!(strings[0], "", "string 0 is empty");
    let s = |i: u64| strings[i as usize].clone();
    let types: Vec<String> = p.bytes[&1]
        .iter()
        .map(|t| {
            let t = decode(t);
            format!("{}/{}", s(int(&t, 1)), s(int(&t, 2)))
        })
        .collect();
    let functions: BTreeMap<u64, String> = p.bytes[&5]
        .iter()
        .map(|f| {
            let f = decode(f);
            (int(&f, 1), s(int(&f, 2)))
        })
        .collect();
    let locations: BTreeMap<u64, String> = p.bytes[&4]
        .iter()
        .map(|l| {
            let l = decode(l);
            let line = decode(&l.bytes[&4][0]);
            (int(&l, 1), functions[&int(&line, 1)].clone())
        })
        .collect();
    let mut samples: Vec<Sample> = p.bytes[&2]
        .iter()
        .map(|b| {
            let m = decode(b);
            let mut labels = BTreeMap::new();
            let mut nums = BTreeMap::new();
            for l in m.bytes.get(&3).into_iter().flatten() {
                let l = decode(l);
                if l.ints.contains_key(&2) {
                    labels.insert(s(int(&l, 1)), s(int(&l, 2)));
                } else {
                    nums.insert(s(int(&l, 1)), (int(&l, 3), s(int(&l, 4))));
                }
            }
            Sample {
                values: packed(&m.bytes[&2][0]),
                labels,
                nums,
                functions: packed(&m.bytes[&1][0])
                    .iter()
                    .map(|id| locations[id].clone())
                    .collect(),
            }
        })
        .collect();
    samples.sort();
    let default = s(int(&p, 14));
    assert_eq!(default, "inuse_space");
    (types, samples, strings)
}

// Three blocks of their own (boxes), so the sample counts three objects.
#[allow(clippy::vec_box)]
#[inline(never)]
fn allocate_in_scope(tracker: &LeakTracker) -> Vec<Box<[u8; 48]>> {
    let _scope = tracker.scope("request-1", "request");
    (0..3).map(|_| black_box(Box::new([0u8; 48]))).collect()
}

#[test]
fn main() {
    leaktracker::set_backtraces(leaktracker::Backtraces::All);
    let tracker = LeakTracker::new();
    let conn = black_box(vec![7u8; 100]);
    tracker.track(&conn, "connection-1", "database").unwrap();
    let kept = allocate_in_scope(&tracker);
    std::thread::sleep(Duration::from_millis(1100));

    let report = LeakReport::of(&tracker)
        .verdict(leaktracker::Verdict::Strict)
        .at_exit(true);
    let totals = report.totals();
    assert!(totals.allocations >= 4, "{report}");
    let (types, samples, strings) = read_profile(&report.to_pprof());
    assert_eq!(types, ["inuse_objects/count", "inuse_space/bytes"]);
    let objects: u64 = samples.iter().map(|s| s.values[0]).sum();
    let space: u64 = samples.iter().map(|s| s.values[1]).sum();
    assert_eq!(objects as usize, totals.allocations);
    assert_eq!(space as usize, totals.bytes);
    for e in report.leaks() {
        let mine: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.labels["name"] == e.name)
            .collect();
        assert!(!mine.is_empty(), "{} has samples", e.name);
        let bytes: u64 = mine.iter().map(|s| s.values[1]).sum();
        assert_eq!(bytes as usize, e.bytes, "{}", e.name);
        for s in &mine {
            assert_eq!(s.labels["kind"], e.kind);
            assert_eq!(s.nums["age"], (e.age.as_secs(), "seconds".to_string()));
            assert!(s.nums["age"].0 >= 1, "older than a second");
            // The stack, leaf first, is the report's frames (function part).
            let group = e
                .stacks
                .iter()
                .find(|g| g.blocks as u64 == s.values[0] && g.bytes as u64 == s.values[1])
                .expect("a stack group per sample");
            let names: Vec<String> = group
                .frames
                .iter()
                .map(|f| {
                    f.rsplit_once(" at ")
                        .map_or(f.as_str(), |p| p.0)
                        .to_string()
                })
                .collect();
            assert_eq!(s.functions, names);
        }
    }
    assert!(samples
        .iter()
        .any(|s| s.functions.iter().any(|f| f.ends_with("allocate_in_scope"))));
    assert!(strings
        .iter()
        .any(|s| s.starts_with("leaktracker report of pid")));

    // Through JSON and back: the same profile.
    let back = LeakReport::from_json(&report.to_json()).unwrap();
    let (types2, samples2, _) = read_profile(&back.to_pprof());
    assert_eq!(types2, types);
    assert_eq!(samples2, samples);
    drop((conn, kept));
}
