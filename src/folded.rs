//! Folded stacks of leaked bytes, the input format of flame-graph tools
//! (`inferno-flamegraph`, `flamegraph.pl`): one line per stack, frames outermost first,
//! separated by `;`, then a space and the leaked bytes.
//!
//! Each line starts with the resource's kind and name, so the graph groups leaks by kind,
//! then by resource, then by the code that allocated them.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::guard::Reentrancy;
use crate::report::LeakReport;

/// Frame label: the function, without ` at file:line` and without `;` (the separator).
fn label(frame: &str) -> String {
    let func = frame.split(" at ").next().unwrap_or(frame);
    clean(func)
}

fn clean(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c == ';' || c.is_control() { ':' } else { c })
        .collect();
    if s.is_empty() {
        "?".to_string()
    } else {
        s
    }
}

impl LeakReport {
    /// The listed leaks as folded stacks of bytes (see the [`folded`](crate::folded)
    /// format). Blocks without a captured stack form one `[no backtrace]` line per
    /// resource. Empty when nothing is listed.
    pub fn to_folded(&self) -> String {
        let _r = Reentrancy::enter();
        // Stacks that differ only in line numbers fold into one line, in first-seen order.
        let mut lines: Vec<(String, usize)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut add = |key: String, bytes: usize| match index.get(&key) {
            Some(&i) => lines[i].1 += bytes,
            None => {
                index.insert(key.clone(), lines.len());
                lines.push((key, bytes));
            }
        };
        for e in self.leaks() {
            let root = format!("{};{}", clean(&e.kind), clean(&e.name));
            let mut with_stack = 0usize;
            for g in &e.stacks {
                if g.frames.is_empty() || g.bytes == 0 {
                    continue;
                }
                with_stack += g.bytes;
                let mut key = root.clone();
                for f in g.frames.iter().rev() {
                    key.push(';');
                    key.push_str(&label(f));
                }
                add(key, g.bytes);
            }
            let rest = e.bytes.saturating_sub(with_stack);
            if rest > 0 {
                add(format!("{root};[no backtrace]"), rest);
            }
        }
        let mut out = String::new();
        for (key, bytes) in lines {
            let _ = writeln!(out, "{key} {bytes}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(label("app::open at src/main.rs:10"), "app::open");
        assert_eq!(label("<a;b as c>::f"), "<a:b as c>::f");
        assert_eq!(clean(""), "?");
    }
}
