//! Model-based test: random sequences of alloc, realloc, free, track, untrack, scope
//! open/close, clear and live, run by two threads in lock-step (a barrier per step) and
//! checked after every step against a simple reference model of the live resources
//! (name, kind, order, allocations, bytes) of two trackers, and of the process-wide record
//! count.
//!
//! Within a step both threads run their operations at the same time; each thread only
//! touches its own blocks and scopes, so the model's outcome does not depend on how they
//! interleave, except for the order of two resources created in the same step (either
//! order is accepted). `clear` runs on the main thread between steps.
//!
//! `MODEL_CASES=n` changes the number of cases (default 3000); `MODEL_SEED=n` makes the
//! run reproducible. With the `check-invariants` feature, every step also checks the record
//! table's invariants (`leaktracker::check_invariants`), with stacks on half the blocks.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Barrier;

use leaktracker::{LeakTracker, ScopeGuard, Trackable, TrackingAllocator};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

const SLOTS: usize = 5;
const MAX_DEPTH: usize = 3;
const KINDS: [&str; 3] = ["db", "cache", "session"];
const ALIGN: usize = 8;

#[derive(Clone, Copy, Debug)]
enum Op {
    Alloc {
        slot: usize,
        size: usize,
    },
    Realloc {
        slot: usize,
        size: usize,
    },
    Free {
        slot: usize,
    },
    Track {
        slot: usize,
        tracker: usize,
        kind: usize,
        empty_name: bool,
    },
    Untrack {
        slot: usize,
        tracker: usize,
    },
    Open {
        tracker: usize,
        kind: usize,
    },
    Close,
    Live {
        tracker: usize,
    },
}

#[derive(Clone, Debug)]
enum Step {
    /// One operation per thread, run at the same time.
    Pair(Op, Op),
    /// `clear` of one tracker, on the main thread.
    Clear(usize),
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 1usize..64,
        3 => 64usize..4096,
        1 => Just(200_000usize), // served by mmap: realloc moves it
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    prop_oneof![
        5 => (slot.clone(), size()).prop_map(|(slot, size)| Op::Alloc { slot, size }),
        3 => (slot.clone(), size()).prop_map(|(slot, size)| Op::Realloc { slot, size }),
        2 => slot.clone().prop_map(|slot| Op::Free { slot }),
        3 => (slot.clone(), 0..2usize, 0..KINDS.len(), prop::bool::weighted(0.2)).prop_map(
            |(slot, tracker, kind, empty_name)| Op::Track { slot, tracker, kind, empty_name }
        ),
        2 => (slot, 0..2usize).prop_map(|(slot, tracker)| Op::Untrack { slot, tracker }),
        3 => (0..2usize, 0..KINDS.len()).prop_map(|(tracker, kind)| Op::Open { tracker, kind }),
        2 => Just(Op::Close),
        1 => (0..2usize).prop_map(|tracker| Op::Live { tracker }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (op(), op()).prop_map(|(a, b)| Step::Pair(a, b)),
        1 => (0..2usize).prop_map(Step::Clear),
    ]
}

// ---------------------------------------------------------------------------------------
// The real side: two worker threads.

/// A raw block of the global allocator.
struct Raw {
    ptr: NonNull<u8>,
    size: usize,
}

// SAFETY: `ptr` is a live global-allocator block of `size` bytes owned by this value.
unsafe impl Trackable for Raw {
    fn heap_block(&self) -> Option<(NonNull<u8>, usize)> {
        Some((self.ptr, self.size))
    }
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, ALIGN).unwrap()
}

impl Raw {
    fn new(size: usize, fill: u8) -> Raw {
        // SAFETY: `size > 0`.
        let p = unsafe { std::alloc::alloc(layout(size)) };
        let ptr = NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout(size)));
        // SAFETY: `size` writable bytes.
        unsafe { ptr.as_ptr().write_bytes(fill, size) };
        Raw { ptr, size }
    }

    fn realloc(&mut self, size: usize) {
        let fill = self.first();
        // SAFETY: the block is live with `layout(self.size)`; `size > 0`.
        let p = unsafe { std::alloc::realloc(self.ptr.as_ptr(), layout(self.size), size) };
        self.ptr = NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout(size)));
        if size > self.size {
            // SAFETY: `size` bytes are live; the new tail is ours to write.
            unsafe {
                self.ptr
                    .as_ptr()
                    .add(self.size)
                    .write_bytes(fill, size - self.size)
            };
        }
        self.size = size;
    }

    fn first(&self) -> u8 {
        // SAFETY: at least one live byte.
        unsafe { *self.ptr.as_ptr() }
    }

    fn intact(&self) -> bool {
        let fill = self.first();
        // SAFETY: `size` live, initialised bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.size) }
            .iter()
            .all(|&b| b == fill)
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: allocated with `layout(self.size)`, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout(self.size)) }
    }
}

/// What a worker reports about its last operation.
#[derive(Default)]
struct Report {
    /// 0: nothing to report; 1: false / error; 2: true / ok.
    result: AtomicU8,
    /// Address of the block the operation was about.
    addr: AtomicUsize,
    /// Set when a block's contents were found damaged.
    damaged: AtomicU8,
}

fn worker(id: usize, steps: &[Step], trackers: &[LeakTracker; 2], barrier: &Barrier, rep: &Report) {
    let mut slots: [Option<Raw>; SLOTS] = Default::default();
    // Reserved outside any scope: pushing never reallocates.
    let mut scopes: Vec<ScopeGuard<'_>> = Vec::with_capacity(MAX_DEPTH);
    for (n, st) in steps.iter().enumerate() {
        barrier.wait();
        rep.result.store(0, Ordering::Relaxed);
        if let Step::Pair(a, b) = st {
            let op = if id == 0 { *a } else { *b };
            match op {
                Op::Alloc { slot, size } => {
                    slots[slot] = None;
                    slots[slot] = Some(Raw::new(size, (n + id) as u8));
                }
                Op::Realloc { slot, size } => {
                    if let Some(r) = &mut slots[slot] {
                        r.realloc(size);
                        if !r.intact() {
                            rep.damaged.store(1, Ordering::Relaxed);
                        }
                    }
                }
                Op::Free { slot } => {
                    if let Some(r) = slots[slot].take() {
                        if !r.intact() {
                            rep.damaged.store(1, Ordering::Relaxed);
                        }
                    }
                }
                Op::Track {
                    slot,
                    tracker,
                    kind,
                    empty_name,
                } => {
                    if let Some(r) = &slots[slot] {
                        let name = if empty_name {
                            String::new()
                        } else {
                            format!("t{id}-{n}")
                        };
                        let ok = trackers[tracker].track(r, name, KINDS[kind]).is_ok();
                        rep.addr.store(r.ptr.as_ptr() as usize, Ordering::Relaxed);
                        rep.result.store(if ok { 2 } else { 1 }, Ordering::Relaxed);
                    }
                }
                Op::Untrack { slot, tracker } => {
                    if let Some(r) = &slots[slot] {
                        let had = trackers[tracker].untrack(r);
                        rep.result.store(if had { 2 } else { 1 }, Ordering::Relaxed);
                    }
                }
                Op::Open { tracker, kind } => {
                    if scopes.len() < MAX_DEPTH {
                        scopes.push(trackers[tracker].scope(format!("s{id}-{n}"), KINDS[kind]));
                    }
                }
                Op::Close => {
                    scopes.pop();
                }
                Op::Live { tracker } => {
                    // Results and their text are the caller's; all freed again.
                    let l = trackers[tracker].live();
                    let text: usize = l.iter().map(|i| i.to_string().len()).sum();
                    std::hint::black_box(text);
                }
            }
        }
        barrier.wait();
    }
    // The main thread checks the last step before we clean up.
    barrier.wait();
    while scopes.pop().is_some() {}
    for s in &mut slots {
        if let Some(r) = s.take() {
            if !r.intact() {
                rep.damaged.store(1, Ordering::Relaxed);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The reference model.

struct MRes {
    name: String,
    kind: &'static str,
    tracker: usize,
    object: bool,
    /// Step of creation: the order of `live()`.
    step: usize,
    blocks: usize,
    bytes: usize,
}

#[derive(Clone, Copy)]
struct MBlock {
    size: usize,
    res: Option<usize>,
}

#[derive(Default)]
struct MThread {
    slots: [Option<MBlock>; SLOTS],
    scopes: Vec<usize>,
}

#[derive(Default)]
struct Model {
    res: Vec<MRes>,
    threads: [MThread; 2],
}

impl Model {
    fn unlink(&mut self, b: &MBlock) {
        if let Some(r) = b.res {
            self.res[r].blocks -= 1;
            self.res[r].bytes -= b.size;
        }
    }

    fn link(&mut self, b: &MBlock) {
        if let Some(r) = b.res {
            self.res[r].blocks += 1;
            self.res[r].bytes += b.size;
        }
    }

    fn new_res(
        &mut self,
        name: String,
        kind: usize,
        tracker: usize,
        object: bool,
        step: usize,
    ) -> usize {
        self.res.push(MRes {
            name,
            kind: KINDS[kind],
            tracker,
            object,
            step,
            blocks: 0,
            bytes: 0,
        });
        self.res.len() - 1
    }

    /// Applies thread `th`'s operation of step `n`; checks what the worker reported.
    fn apply(&mut self, th: usize, n: usize, op: Op, rep: &Report) -> Result<(), String> {
        let result = rep.result.load(Ordering::Relaxed);
        match op {
            Op::Alloc { slot, size } => {
                if let Some(old) = self.threads[th].slots[slot].take() {
                    self.unlink(&old);
                }
                let b = MBlock {
                    size,
                    res: self.threads[th].scopes.last().copied(),
                };
                self.link(&b);
                self.threads[th].slots[slot] = Some(b);
            }
            Op::Realloc { slot, size } => {
                if let Some(mut b) = self.threads[th].slots[slot] {
                    self.unlink(&b);
                    b.size = size;
                    self.link(&b);
                    self.threads[th].slots[slot] = Some(b);
                }
            }
            Op::Free { slot } => {
                if let Some(old) = self.threads[th].slots[slot].take() {
                    self.unlink(&old);
                }
            }
            Op::Track {
                slot,
                tracker,
                kind,
                empty_name,
            } => {
                let Some(mut b) = self.threads[th].slots[slot] else {
                    return Ok(());
                };
                if result != 2 {
                    return Err(format!("thread {th} step {n}: track failed"));
                }
                let name = if empty_name {
                    format!("obj-{:#x}", rep.addr.load(Ordering::Relaxed))
                } else {
                    format!("t{th}-{n}")
                };
                match b.res {
                    Some(r) if self.res[r].tracker == tracker && self.res[r].object => {
                        self.res[r].name = name;
                        self.res[r].kind = KINDS[kind];
                    }
                    _ => {
                        self.unlink(&b);
                        b.res = Some(self.new_res(name, kind, tracker, true, n));
                        self.link(&b);
                        self.threads[th].slots[slot] = Some(b);
                    }
                }
            }
            Op::Untrack { slot, tracker } => {
                let Some(mut b) = self.threads[th].slots[slot] else {
                    return Ok(());
                };
                let expect = b.res.is_some_and(|r| self.res[r].tracker == tracker);
                if (result == 2) != expect {
                    return Err(format!(
                        "thread {th} step {n}: untrack returned {}, expected {expect}",
                        result == 2
                    ));
                }
                if expect {
                    self.unlink(&b);
                    b.res = None;
                    self.threads[th].slots[slot] = Some(b);
                }
            }
            Op::Open { tracker, kind } => {
                if self.threads[th].scopes.len() < MAX_DEPTH {
                    let r = self.new_res(format!("s{th}-{n}"), kind, tracker, false, n);
                    self.threads[th].scopes.push(r);
                }
            }
            Op::Close => {
                self.threads[th].scopes.pop();
            }
            Op::Live { .. } => {}
        }
        Ok(())
    }

    fn clear(&mut self, tracker: usize) {
        for th in 0..2 {
            for s in 0..SLOTS {
                if let Some(mut b) = self.threads[th].slots[s] {
                    if b.res.is_some_and(|r| self.res[r].tracker == tracker) {
                        self.unlink(&b);
                        b.res = None;
                        self.threads[th].slots[s] = Some(b);
                    }
                }
            }
        }
    }

    fn records(&self) -> usize {
        self.res.iter().map(|r| r.blocks).sum()
    }

    /// Compares `live()` of `t` with the model: same resources, counts, and order (two
    /// resources created in the same step may come in either order).
    fn check(&self, tracker: usize, t: &LeakTracker) -> Result<(), String> {
        type Row = (String, String, usize, usize);
        let actual: Vec<Row> = t
            .live()
            .into_iter()
            .map(|i| (i.name, i.kind, i.allocations, i.bytes))
            .collect();
        let mut expected: Vec<(usize, Row)> = self
            .res
            .iter()
            .filter(|r| r.tracker == tracker && r.blocks > 0)
            .map(|r| {
                (
                    r.step,
                    (r.name.clone(), r.kind.to_string(), r.blocks, r.bytes),
                )
            })
            .collect();
        expected.sort_by_key(|e| e.0);
        let mismatch = || format!("tracker {tracker}: live() = {actual:#?}\nmodel = {expected:#?}");
        if actual.len() != expected.len() {
            return Err(mismatch());
        }
        let mut i = 0;
        while i < expected.len() {
            let step = expected[i].0;
            let j = expected[i..].iter().take_while(|e| e.0 == step).count() + i;
            let mut want: Vec<&Row> = expected[i..j].iter().map(|e| &e.1).collect();
            let mut got: Vec<&Row> = actual[i..j].iter().collect();
            want.sort();
            got.sort();
            if want != got {
                return Err(mismatch());
            }
            i = j;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// One case.

fn run_case(steps: &[Step]) -> Result<(), TestCaseError> {
    let trackers = [LeakTracker::new(), LeakTracker::new()];
    let base = leaktracker::stats();
    let barrier = Barrier::new(3);
    let reports = [Report::default(), Report::default()];
    let mut model = Model::default();
    let mut error: Option<String> = None;
    std::thread::scope(|s| {
        for (id, rep) in reports.iter().enumerate() {
            let (trackers, barrier) = (&trackers, &barrier);
            s.spawn(move || worker(id, steps, trackers, barrier, rep));
        }
        for (n, st) in steps.iter().enumerate() {
            barrier.wait();
            if let Step::Clear(t) = st {
                trackers[*t].clear();
            }
            barrier.wait();
            // The workers wait at the next step's barrier: everything is still.
            if error.is_some() {
                continue; // keep the workers going to the end, then report
            }
            let r = match st {
                Step::Pair(a, b) => model
                    .apply(0, n, *a, &reports[0])
                    .and_then(|()| model.apply(1, n, *b, &reports[1])),
                Step::Clear(t) => {
                    model.clear(*t);
                    Ok(())
                }
            };
            let r = r
                .and_then(|()| {
                    let st = leaktracker::stats();
                    let want = base.records + model.records();
                    if st.records != want || st.dropped_records != base.dropped_records {
                        Err(format!(
                            "records {} (dropped {}), model {want}",
                            st.records, st.dropped_records
                        ))
                    } else {
                        Ok(())
                    }
                })
                .and_then(|()| model.check(0, &trackers[0]))
                .and_then(|()| model.check(1, &trackers[1]))
                .and_then(|()| check_table());
            if let Err(e) = r {
                error = Some(format!("after step {n} ({st:?}): {e}"));
            }
        }
        barrier.wait(); // let the workers clean up
    });
    if let Some(e) = error {
        return Err(TestCaseError::fail(e));
    }
    for (id, rep) in reports.iter().enumerate() {
        prop_assert_eq!(
            rep.damaged.load(Ordering::Relaxed),
            0,
            "worker {} saw a damaged block",
            id
        );
    }
    // Every block freed, every scope closed: nothing left.
    prop_assert!(trackers[0].live().is_empty());
    prop_assert!(trackers[1].live().is_empty());
    prop_assert_eq!(leaktracker::stats().records, base.records);
    Ok(())
}

/// With the `check-invariants` feature, the record table's own invariants as well (every
/// step, while the workers wait); without it, nothing more.
fn check_table() -> Result<(), String> {
    #[cfg(feature = "check-invariants")]
    return leaktracker::check_invariants().map_err(|e| format!("table invariant: {e}"));
    #[cfg(not(feature = "check-invariants"))]
    Ok(())
}

#[test]
fn main() {
    assert!(leaktracker::is_installed());
    // With the invariant checks, one block in two gets a stack, so the stack words beside
    // the records are checked too.
    #[cfg(feature = "check-invariants")]
    leaktracker::set_backtraces(leaktracker::Backtraces::Sample(2));
    let cases: u32 = std::env::var("MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    // `MODEL_SEED=n`: a reproducible run.
    let mut runner = match std::env::var("MODEL_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(seed) => {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&seed.to_le_bytes());
            let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
            TestRunner::new_with_rng(config, rng)
        }
        None => TestRunner::new(config),
    };
    let result = runner.run(&prop::collection::vec(step(), 1..48), |steps| {
        run_case(&steps)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
