//! Stress: two threads, each in its own scope, tag 100,000 blocks each (200,000 in all)
//! and pass every other block to the other thread over a channel; the other thread frees
//! them (half at once, half after a check). The accounting is exact at every checkpoint
//! (blocks, bytes, resources, table records) and zero after everything is freed.
//!
//! The channels are std's bounded `sync_channel`, created before the scopes and used only
//! with `try_send`/`try_recv` (which never allocate), so the scopes tag only the blocks.

use leaktracker::{stats, LeakTracker, TrackingAllocator};
use std::hint::black_box;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Barrier;

#[global_allocator]
static ALLOC: TrackingAllocator = TrackingAllocator::system();

const PER_THREAD: usize = 100_000;

fn size_of_block(i: usize) -> usize {
    1 + (i * 37) % 251
}

struct Block {
    index: usize,
    data: Box<[u8]>,
}

/// What a worker holds at the end: its own kept blocks and the other's blocks it kept.
struct Held {
    own: Vec<Box<[u8]>>,
    received: Vec<Block>,
    /// Blocks received so far (freed or kept).
    count: usize,
}

impl Held {
    fn receive(&mut self, block: Block) {
        self.count += 1;
        assert_eq!(block.data.len(), size_of_block(block.index));
        assert!(block.data.iter().all(|&b| b == block.index as u8));
        if block.index % 4 == 1 {
            drop(block); // freed here, on the other thread, at once
        } else {
            self.received.push(block);
        }
    }
}

fn worker(
    tracker: &LeakTracker,
    name: &'static str,
    tx: SyncSender<Block>,
    rx: Receiver<Block>,
    exchanged: &Barrier,
    checked: &Barrier,
    freed: &Barrier,
) -> Vec<Box<[u8]>> {
    let mut held = Held {
        own: Vec::with_capacity(PER_THREAD / 2),
        received: Vec::with_capacity(PER_THREAD / 4),
        count: 0,
    };

    let guard = tracker.scope(name, "stress");
    for i in 0..PER_THREAD {
        let data = black_box(vec![i as u8; size_of_block(i)].into_boxed_slice());
        if i % 2 == 0 {
            held.own.push(data);
            continue;
        }
        let mut block = Block { index: i, data };
        loop {
            match tx.try_send(block) {
                Ok(()) => break,
                Err(TrySendError::Full(b)) => {
                    block = b;
                    // Drain our side so that the other thread can go on, too.
                    match rx.try_recv() {
                        Ok(b) => held.receive(b),
                        Err(_) => std::thread::yield_now(),
                    }
                }
                Err(TrySendError::Disconnected(_)) => unreachable!(),
            }
        }
    }
    drop(guard);
    while held.count < PER_THREAD / 2 {
        match rx.try_recv() {
            Ok(b) => held.receive(b),
            Err(TryRecvError::Empty) => std::thread::yield_now(),
            Err(TryRecvError::Disconnected) => unreachable!(),
        }
    }
    assert_eq!(held.own.len(), PER_THREAD / 2);
    assert_eq!(held.received.len(), PER_THREAD / 4);
    exchanged.wait();
    checked.wait();
    drop(held.received); // the other thread's blocks, freed here
    freed.wait();
    held.own
}

#[test]
fn main() {
    let tracker = LeakTracker::new();
    let base = stats();
    assert_eq!(base.dropped_records, 0);
    let (tx_a, rx_b) = sync_channel::<Block>(256);
    let (tx_b, rx_a) = sync_channel::<Block>(256);
    let exchanged = Barrier::new(3);
    let checked = Barrier::new(3);
    let freed = Barrier::new(3);

    // Expected per thread: all blocks but those with index % 4 == 1.
    let live_bytes: usize = (0..PER_THREAD)
        .filter(|i| i % 4 != 1)
        .map(size_of_block)
        .sum();
    let own_bytes: usize = (0..PER_THREAD)
        .filter(|i| i % 2 == 0)
        .map(size_of_block)
        .sum();

    // Checkpoints are recorded inside the thread scope and asserted after it, so that a
    // failed check cannot leave the workers waiting at a barrier.
    let snapshot = || {
        let mut v: Vec<(String, usize, usize)> = tracker
            .live()
            .into_iter()
            .map(|i| (i.name, i.allocations, i.bytes))
            .collect();
        v.sort(); // the two scopes open in either order
        (v, stats())
    };
    let (own_a, own_b, exchanged_state, freed_state) = std::thread::scope(|s| {
        let a = s.spawn(|| worker(&tracker, "A", tx_a, rx_a, &exchanged, &checked, &freed));
        let b = s.spawn(|| worker(&tracker, "B", tx_b, rx_b, &exchanged, &checked, &freed));
        exchanged.wait();
        let exchanged_state = snapshot();
        checked.wait();
        freed.wait();
        let freed_state = snapshot();
        (
            a.join().unwrap(),
            b.join().unwrap(),
            exchanged_state,
            freed_state,
        )
    });

    let n = PER_THREAD - PER_THREAD / 4;
    let (live, st) = exchanged_state;
    assert_eq!(
        live,
        [("A".into(), n, live_bytes), ("B".into(), n, live_bytes)]
    );
    assert_eq!(st.records, base.records + 2 * n);
    assert_eq!(st.dropped_records, base.dropped_records);
    let (live, st) = freed_state;
    let half = PER_THREAD / 2;
    assert_eq!(
        live,
        [("A".into(), half, own_bytes), ("B".into(), half, own_bytes)]
    );
    assert_eq!(st.records, base.records + PER_THREAD);

    assert_eq!(tracker.live().len(), 2);
    drop(own_a);
    let live = tracker.live();
    assert_eq!(live.len(), 1);
    assert_eq!(
        (live[0].name.as_str(), live[0].allocations, live[0].bytes),
        ("B", PER_THREAD / 2, own_bytes)
    );
    drop(own_b);
    assert!(tracker.live().is_empty());
    let end = stats();
    assert_eq!(end.records, base.records);
    assert_eq!(end.dropped_records, base.dropped_records);
}
