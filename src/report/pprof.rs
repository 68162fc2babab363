//! pprof heap profiles of a report: the `profile.proto` format that `go tool pprof`,
//! Grafana Pyroscope, Parca and Datadog read, gzipped.
//!
//! One sample per listed resource and allocation stack, with two values (sample types
//! `inuse_objects`/`count` and `inuse_space`/`bytes`), string labels `name`, `kind`,
//! `origin` and the report's `LEAKTRACKER_LABELS`, and a numeric label `age` in seconds.
//! Locations and functions come from the stack's frames (`function at file:line`, leaf
//! first, as pprof wants them); a resource without stacks gets one location named
//! `[no stack] KIND`.
//!
//! The encoder is written here: the schema is small (six message types, varints and
//! length-delimited fields), and a protobuf code generator would add a build step and
//! dependencies to the library for a few dozen lines. gzip comes from `flate2`.

use std::collections::HashMap;
use std::io::{self, Write};
use std::time::UNIX_EPOCH;

use crate::guard::Reentrancy;
use crate::report::LeakReport;

/// A protobuf message being written: fields appended in order.
#[derive(Default)]
struct Message {
    buf: Vec<u8>,
}

impl Message {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    /// A varint field (int64, uint64, bool); zero is the default and is left out.
    fn int(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    fn message(&mut self, field: u32, m: &Message) {
        self.bytes(field, &m.buf);
    }

    /// A packed repeated varint field.
    fn packed(&mut self, field: u32, vs: impl IntoIterator<Item = u64>) {
        let mut inner = Message::default();
        for v in vs {
            inner.varint(v);
        }
        if !inner.buf.is_empty() {
            self.bytes(field, &inner.buf);
        }
    }
}

/// The string table: index 0 is the empty string.
struct Strings {
    index: HashMap<String, i64>,
    list: Vec<String>,
}

impl Strings {
    fn new() -> Strings {
        Strings {
            index: HashMap::from([(String::new(), 0)]),
            list: vec![String::new()],
        }
    }

    fn id(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.list.len() as i64;
        self.list.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

/// Splits `function at file:line` into its parts (line 0 when unknown).
fn split_frame(frame: &str) -> (&str, &str, i64) {
    let Some((name, loc)) = frame.rsplit_once(" at ") else {
        return (frame, "", 0);
    };
    match loc.rsplit_once(':') {
        Some((file, line)) if line.bytes().all(|b| b.is_ascii_digit()) && !line.is_empty() => {
            (name, file, line.parse().unwrap_or(0))
        }
        _ => (name, loc, 0),
    }
}

fn value_type(strings: &mut Strings, ty: &str, unit: &str) -> Message {
    let mut m = Message::default();
    m.int(1, strings.id(ty));
    m.int(2, strings.id(unit));
    m
}

fn label_str(strings: &mut Strings, key: &str, value: &str) -> Message {
    let mut m = Message::default();
    m.int(1, strings.id(key));
    m.int(2, strings.id(value));
    m
}

/// The uncompressed `profile.proto` bytes of the resources `report` lists.
pub(crate) fn encode(_r: &Reentrancy, report: &LeakReport) -> Vec<u8> {
    let mut strings = Strings::new();
    let mut profile = Message::default();
    profile.message(1, &value_type(&mut strings, "inuse_objects", "count"));
    profile.message(1, &value_type(&mut strings, "inuse_space", "bytes"));

    // Functions by (name, file), locations by frame text.
    let mut functions: HashMap<(String, String), u64> = HashMap::new();
    let mut function_msgs: Vec<Message> = Vec::new();
    let mut locations: HashMap<String, u64> = HashMap::new();
    let mut location_msgs: Vec<Message> = Vec::new();
    let mut location_of = |frame: &str, strings: &mut Strings| -> u64 {
        if let Some(&id) = locations.get(frame) {
            return id;
        }
        let (name, file, line) = split_frame(frame);
        let fkey = (name.to_string(), file.to_string());
        let fid = match functions.get(&fkey) {
            Some(&id) => id,
            None => {
                let id = function_msgs.len() as u64 + 1;
                let mut f = Message::default();
                f.int(1, id as i64);
                f.int(2, strings.id(name));
                f.int(3, strings.id(name));
                f.int(4, strings.id(file));
                function_msgs.push(f);
                functions.insert(fkey, id);
                id
            }
        };
        let id = location_msgs.len() as u64 + 1;
        let mut line_msg = Message::default();
        line_msg.int(1, fid as i64);
        line_msg.int(2, line);
        let mut loc = Message::default();
        loc.int(1, id as i64);
        loc.message(4, &line_msg);
        location_msgs.push(loc);
        locations.insert(frame.to_string(), id);
        id
    };

    let labels = report.labels().to_vec();
    for e in report.leaks() {
        let no_stack = [format!("[no stack] {}", e.kind)];
        let mut groups: Vec<(usize, usize, &[String])> = e
            .stacks
            .iter()
            .filter(|g| !g.frames.is_empty())
            .map(|g| (g.blocks, g.bytes, g.frames.as_slice()))
            .collect();
        let (in_stacks, bytes_in_stacks) =
            groups.iter().fold((0, 0), |(b, s), g| (b + g.0, s + g.1));
        if in_stacks < e.allocations || groups.is_empty() {
            groups.push((
                e.allocations.saturating_sub(in_stacks),
                e.bytes.saturating_sub(bytes_in_stacks),
                &no_stack,
            ));
        }
        for (blocks, bytes, frames) in groups {
            if blocks == 0 {
                continue;
            }
            let mut sample = Message::default();
            let ids: Vec<u64> = frames
                .iter()
                .map(|f| location_of(f, &mut strings))
                .collect();
            sample.packed(1, ids);
            sample.packed(2, [blocks as u64, bytes as u64]);
            sample.message(3, &label_str(&mut strings, "name", &e.name));
            sample.message(3, &label_str(&mut strings, "kind", &e.kind));
            if !e.origin.is_empty() {
                sample.message(3, &label_str(&mut strings, "origin", &e.origin));
            }
            for (k, v) in &labels {
                sample.message(3, &label_str(&mut strings, k, v));
            }
            let mut age = Message::default();
            age.int(1, strings.id("age"));
            age.int(3, e.age.as_secs() as i64);
            age.int(4, strings.id("seconds"));
            sample.message(3, &age);
            profile.message(2, &sample);
        }
    }
    for l in &location_msgs {
        profile.message(4, l);
    }
    for f in &function_msgs {
        profile.message(5, f);
    }
    let time_ns = report
        .made_at()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    profile.int(9, time_ns);
    profile.message(11, &value_type(&mut strings, "space", "bytes"));
    profile.int(12, 1);
    let mut comments = vec![format!("leaktracker report of pid {}", report.pid())];
    comments.extend(labels.iter().map(|(k, v)| format!("{k}={v}")));
    let comment_ids: Vec<u64> = comments.iter().map(|c| strings.id(c) as u64).collect();
    profile.packed(13, comment_ids);
    profile.int(14, strings.id("inuse_space"));
    // The string table last: every id above is in it by now.
    for s in &strings.list {
        profile.bytes(6, s.as_bytes());
    }
    profile.buf
}

/// Writes the gzipped profile of `report` to `w`.
pub(crate) fn write_gzipped(r: &Reentrancy, report: &LeakReport, w: impl Write) -> io::Result<()> {
    let raw = encode(r, report);
    let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::default());
    gz.write_all(&raw)?;
    gz.finish()?.flush()
}

impl LeakReport {
    /// The report as a gzipped pprof heap profile (`profile.proto`): one sample per listed
    /// resource and allocation stack, values `inuse_objects` and `inuse_space`, labels
    /// `name`, `kind`, `origin`, `age` (seconds) and the process's `LEAKTRACKER_LABELS`.
    /// `go tool pprof -top FILE` reads it.
    pub fn to_pprof(&self) -> Vec<u8> {
        let r = Reentrancy::enter();
        let mut out = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = write_gzipped(&r, self, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_frames() {
        let mut m = Message::default();
        m.varint(300);
        assert_eq!(m.buf, [0xAC, 0x02]);
        let mut m = Message::default();
        m.int(1, 0);
        assert!(m.buf.is_empty(), "zero is the default");
        m.int(2, 1);
        assert_eq!(m.buf, [0x10, 0x01]);
        assert_eq!(split_frame("a::b at src/x.rs:12"), ("a::b", "src/x.rs", 12));
        assert_eq!(split_frame("a::b"), ("a::b", "", 0));
        assert_eq!(split_frame("a at b at c:x"), ("a at b", "c:x", 0));
    }
}
