//! What a report lists: one entry per leaked resource, its blocks grouped by allocation
//! stack, and the totals. Public through [`crate::report`]; a module of its own so that
//! the verdict, which makes entries, and the report, which shows them, do not import each
//! other.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// Blocks of one resource allocated at the same place: their count, their bytes and the
/// backtrace frames (innermost first) of that place.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StackGroup {
    /// Live blocks allocated here.
    pub blocks: usize,
    /// Their requested sizes, added up.
    pub bytes: usize,
    /// Resolved frames, innermost first, one readable string each.
    pub frames: Vec<String>,
}

impl StackGroup {
    /// A group of `blocks` blocks of `bytes` bytes allocated at `frames`.
    pub fn new(blocks: usize, bytes: usize, frames: Vec<String>) -> StackGroup {
        StackGroup {
            blocks,
            bytes,
            frames,
        }
    }
}

/// One live resource in a report: the blocks of it the verdict judged leaked.
///
/// Not a twin of [`LeakInfo`](crate::LeakInfo), which [`LeakTracker::live`](crate::LeakTracker::live)
/// returns: that one counts every live tagged block of the resource; an entry counts only
/// its leaked block groups (the others are in the report's
/// [`not_leaks`](crate::LeakReport::not_leaks)), with their stacks, its origin and why it
/// is listed, and it is what a JSON report holds.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReportEntry {
    /// The resource's name.
    pub name: String,
    /// The resource's kind.
    pub kind: String,
    /// When it was (last) tracked, on the wall clock.
    pub created_at: SystemTime,
    /// Its age when the report was made.
    pub age: Duration,
    /// Live tagged blocks.
    pub allocations: usize,
    /// Their requested sizes, added up.
    pub bytes: usize,
    /// Where its blocks were allocated, largest group first; empty when backtraces were
    /// not captured.
    pub stacks: Vec<StackGroup>,
    /// What tagged it: `object` (`track`), `scope`, `task` (`instrument`) or `span`.
    pub origin: String,
    /// Why the verdict lists it (see [`Verdict`](crate::Verdict)).
    pub verdict: String,
}

impl ReportEntry {
    /// The frames of the largest stack group (the JSON `"backtrace"`), if any.
    pub fn backtrace(&self) -> Option<&[String]> {
        self.stacks
            .iter()
            .max_by_key(|g| (g.bytes, g.blocks))
            .map(|g| g.frames.as_slice())
    }
}

/// Resources, blocks and bytes added up.
///
/// The sums saturate: a sum that would exceed `usize::MAX` stays there and the totals are
/// marked [`saturated`](Self::is_saturated) (the text report then says so, the JSON has
/// `"saturated": true`). Real counts never come near; crafted or corrupt reports can.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Totals {
    /// Number of resources.
    pub resources: usize,
    /// Live blocks.
    pub allocations: usize,
    /// Live bytes.
    pub bytes: usize,
    /// Whether a sum stopped at `usize::MAX`.
    #[serde(default, skip_serializing_if = "is_false")]
    saturated: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Totals {
    pub(crate) fn add(&mut self, e: &ReportEntry) {
        *self = self.saturating_add(Totals {
            resources: 1,
            allocations: e.allocations,
            bytes: e.bytes,
            saturated: false,
        });
    }

    /// Both totals added up, field by field, saturating at `usize::MAX` (the result is then
    /// [`saturated`](Self::is_saturated)).
    #[must_use]
    pub fn saturating_add(self, other: Totals) -> Totals {
        let mut saturated = self.saturated || other.saturated;
        let mut sum = |a: usize, b: usize| {
            a.checked_add(b).unwrap_or_else(|| {
                saturated = true;
                usize::MAX
            })
        };
        let resources = sum(self.resources, other.resources);
        let allocations = sum(self.allocations, other.allocations);
        let bytes = sum(self.bytes, other.bytes);
        Totals {
            resources,
            allocations,
            bytes,
            saturated,
        }
    }

    /// Whether a sum behind these totals went past `usize::MAX` and stopped there: the
    /// real sums are larger than shown.
    pub fn is_saturated(&self) -> bool {
        self.saturated
    }
}
