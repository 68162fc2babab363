//! The allow-list: `kind:GLOB`, `name:GLOB` and `frame:GLOB` patterns, and the glob
//! matcher the verdict's rules share. Public through [`crate::report`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::guard::Reentrancy;

/// What an allow-list pattern looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Kind,
    Name,
    /// A frame of a block's allocation stack (`function at file:line`).
    Frame,
}

/// What a report does not list: `kind:GLOB`, `name:GLOB` or `frame:GLOB` (one entry of
/// `LEAKTRACKER_IGNORE`, the allow-list), where `*` in `GLOB`
/// matches any run of characters (including none) and every other character matches
/// itself. `kind:` and `name:` match resources; `frame:` matches the blocks whose
/// allocation stack has a frame (`function at file:line`) matching it (it needs stacks:
/// `LEAKTRACKER_BACKTRACE`).
///
/// ```
/// use leaktracker::IgnorePattern;
/// let p: IgnorePattern = "name:global-*".parse().unwrap();
/// assert!(p.matches("global-cache", "cache"));
/// assert!(!p.matches("session-1", "cache"));
/// assert!("cache".parse::<IgnorePattern>().is_err()); // no `kind:` / `name:`
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnorePattern {
    field: Field,
    glob: String,
}

/// The former name of [`IgnorePattern`].
#[deprecated(
    since = "0.1.1",
    note = "renamed `IgnorePattern`: the API says `ignore` for what a report does not list"
)]
pub type AllowPattern = IgnorePattern;

/// An allow-list pattern that is neither `kind:…` nor `name:…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    pattern: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an allow-list pattern (expected `kind:GLOB`, `name:GLOB` or `frame:GLOB`)",
            self.pattern.escape_debug()
        )
    }
}

impl std::error::Error for PatternError {}

impl FromStr for IgnorePattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<IgnorePattern, PatternError> {
        let _r = Reentrancy::enter();
        let (field, glob) = if let Some(g) = s.strip_prefix("kind:") {
            (Field::Kind, g)
        } else if let Some(g) = s.strip_prefix("name:") {
            (Field::Name, g)
        } else if let Some(g) = s.strip_prefix("frame:") {
            (Field::Frame, g)
        } else {
            return Err(PatternError {
                pattern: s.to_string(),
            });
        };
        Ok(IgnorePattern {
            field,
            glob: glob.to_string(),
        })
    }
}

impl fmt::Display for IgnorePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = match self.field {
            Field::Kind => "kind",
            Field::Name => "name",
            Field::Frame => "frame",
        };
        write!(f, "{field}:{}", self.glob)
    }
}

impl IgnorePattern {
    /// Whether a resource with this name and kind matches (a `frame:` pattern matches
    /// blocks, not resources: never).
    pub fn matches(&self, name: &str, kind: &str) -> bool {
        let text = match self.field {
            Field::Kind => kind,
            Field::Name => name,
            Field::Frame => return false,
        };
        glob_match(self.glob.as_bytes(), text.as_bytes())
    }

    /// Whether this is a `frame:` pattern and `frame` (`function at file:line`, or just
    /// the function) matches it.
    pub fn matches_frame(&self, frame: &str) -> bool {
        self.field == Field::Frame && frame_matches(&self.glob, frame)
    }

    /// Whether this pattern matches frames (`frame:`) rather than resources.
    pub fn is_frame_pattern(&self) -> bool {
        self.field == Field::Frame
    }
}

/// `*` matches any run of bytes; everything else matches itself. The text between the
/// first and the last star is matched segment by segment, each at its leftmost place
/// (which is right for patterns whose only wildcard is `*`), with the first and the last
/// segments anchored: linear in practice, no recursion, no allocation. (The verdict
/// matches dozens of default patterns against every frame of every stack.)
pub(crate) fn glob_match(pat: &[u8], text: &[u8]) -> bool {
    let Some(first) = pat.iter().position(|&c| c == b'*') else {
        return pat == text;
    };
    let last = pat.iter().rposition(|&c| c == b'*').unwrap_or(first);
    let (head, tail) = (&pat[..first], &pat[last + 1..]);
    if text.len() < head.len() + tail.len() || !text.starts_with(head) || !text.ends_with(tail) {
        return false;
    }
    let mut rest = &text[head.len()..text.len() - tail.len()];
    let middle = pat.get(first + 1..last).unwrap_or(&[]);
    for seg in middle.split(|&c| c == b'*') {
        if seg.is_empty() {
            continue;
        }
        match find(rest, seg) {
            Some(i) => rest = &rest[i + seg.len()..],
            None => return false,
        }
    }
    true
}

/// The first place `needle` (not empty) occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&b0, more) = needle.split_first()?;
    let mut from = 0;
    while hay.len() - from >= needle.len() {
        let i = from
            + hay[from..=hay.len() - needle.len()]
                .iter()
                .position(|&c| c == b0)?;
        if hay[i + 1..].starts_with(more) {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// How many resources one allow-list pattern matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PatternMatch {
    /// The pattern, as written.
    pub pattern: String,
    /// Live resources it matched (whatever their age).
    pub matched: usize,
}

/// The function of a frame `function at file:line`.
pub(crate) fn frame_name(frame: &str) -> &str {
    frame.split(" at ").next().unwrap_or(frame)
}

/// Whether `frame` matches `pattern`: the whole `function at file:line`, the function
/// alone, or the function without the `<…>` of a method's `<Type>::method` form (how
/// symbols read in builds with line tables only).
pub(crate) fn frame_matches(pattern: &str, frame: &str) -> bool {
    frame_matches_named(pattern, frame, frame_name(frame))
}

/// `frame_matches` with the frame's function name (`frame_name`) found once by the caller.
pub(crate) fn frame_matches_named(pattern: &str, frame: &str, name: &str) -> bool {
    let p = pattern.as_bytes();
    glob_match(p, frame.as_bytes())
        || glob_match(p, name.as_bytes())
        || (name.starts_with('<') && glob_match(p, name.trim_start_matches('<').as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"", b""));
        assert!(!glob_match(b"", b"a"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"*", b"anything"));
        assert!(glob_match(b"global-*", b"global-cache"));
        assert!(!glob_match(b"global-*", b"a-global-cache"));
        assert!(glob_match(b"*-cache", b"global-cache"));
        assert!(glob_match(b"a*b*c", b"aXXbYYc"));
        assert!(!glob_match(b"a*b*c", b"aXXbYY"));
        assert!(glob_match(b"a**c", b"abc"));
        assert!(glob_match(b"*a*a*a*", b"aaa"));
        assert!(!glob_match(b"*a*a*a*a", b"aaa"));
        assert!(glob_match(
            b"* at */std/src/once.rs:*",
            b"f at /r/std/src/once.rs:9"
        ));
        assert!(!glob_match(
            b"* at */std/src/once.rs:*",
            b"f at /r/std/src/once.rs"
        ));
        assert!(!glob_match(b"ab*ba", b"aba"));
        assert!(glob_match(b"ab*ba", b"abba"));
    }

    /// The textbook matcher (backtracking on the last star), as the oracle for the
    /// segment matcher above.
    fn glob_reference(pat: &[u8], text: &[u8]) -> bool {
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            if p < pat.len() && pat[p] == b'*' {
                star = Some((p, t));
                p += 1;
            } else if p < pat.len() && pat[p] == text[t] {
                p += 1;
                t += 1;
            } else if let Some((sp, st)) = star {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        pat[p..].iter().all(|&c| c == b'*')
    }

    proptest::proptest! {
        #[test]
        fn glob_agrees_with_the_reference(pat in "[ab*]{0,8}", text in "[ab]{0,10}") {
            proptest::prop_assert_eq!(
                glob_match(pat.as_bytes(), text.as_bytes()),
                glob_reference(pat.as_bytes(), text.as_bytes()),
                "{:?} {:?}", pat, text
            );
        }
    }
}
