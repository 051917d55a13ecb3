//! A budget of open segment files: how many descriptors and memory mappings the logs of
//! this process may hold at once, so that a broker hosts more partitions than it has
//! descriptors (as RocksDB's table cache bounds `max_open_files`).
//!
//! Each segment keeps its files (the `.log` descriptor, the index descriptors while
//! active, the index mappings) in a [`Slot`]. A slot opens what it lacks when the
//! segment is used and tells the budget what it now costs. When the process is over
//! budget, the budget closes the files of slots that were not used lately (the CLOCK
//! approximation of least-recently-used: every use sets a referenced bit; a sweep clears
//! it and closes slots found without it). A slot in use (its lock held) is skipped; the
//! budget is soft: a sweep that finds nothing to close leaves the process over it, and
//! the next open tries again.
//!
//! Closing loses nothing: a segment's sizes, offsets and index entry counts live in the
//! segment, dirty pages of a closed file or mapping stay in the page cache, and an fsync
//! through a reopened descriptor makes them durable as the first descriptor would have.

use parking_lot::{Mutex, MutexGuard};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

/// What a set of open files costs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub fds: usize,
    pub maps: usize,
}

impl Cost {
    pub fn is_zero(self) -> bool {
        self.fds == 0 && self.maps == 0
    }
}

/// Files a slot can close and open again.
pub trait Handles: Send {
    /// Opens whatever is closed.
    fn reopen(&mut self) -> std::io::Result<()>;
    /// Closes everything.
    fn release(&mut self);
    /// Whether anything is closed that a use needs.
    fn is_released(&self) -> bool;
    /// The descriptors and mappings held now.
    fn cost(&self) -> Cost;
}

/// The descriptors and mappings the logs of this process may hold.
pub struct Budget {
    max: Cost,
    fds: AtomicUsize,
    maps: AtomicUsize,
    /// Closed by a sweep since start (metrics and tests).
    evictions: AtomicUsize,
    /// Slots dropped while in the clock, not yet pruned from it.
    dead: AtomicUsize,
    clock: Mutex<Clock>,
}

struct Clock {
    slots: Vec<Weak<dyn Evict>>,
    hand: usize,
}

/// What the clock needs of a slot, whatever its files.
trait Evict: Send + Sync {
    /// Clears the referenced bit, returning what it was.
    fn take_referenced(&self) -> bool;
    /// Closes the slot's files unless it is in use; true if it holds none afterwards.
    fn try_release(&self) -> bool;
    fn leave_clock(&self);
}

impl Budget {
    pub fn new(max: Cost) -> Self {
        Budget {
            max,
            fds: AtomicUsize::new(0),
            maps: AtomicUsize::new(0),
            evictions: AtomicUsize::new(0),
            dead: AtomicUsize::new(0),
            clock: Mutex::new(Clock {
                slots: Vec::new(),
                hand: 0,
            }),
        }
    }

    /// The budget for a process limited to `max_open_files` descriptors and
    /// `max_map_count` mappings: what is left after a reserve for sockets, checkpoints,
    /// the metadata store, thread stacks and libraries.
    pub fn for_limits(max_open_files: u64, max_map_count: u64) -> Self {
        let fds = max_open_files as usize;
        let maps = max_map_count as usize;
        Budget::new(Cost {
            fds: fds.saturating_sub((fds / 4).clamp(64, 4096)).max(16),
            maps: maps.saturating_sub((maps / 8).clamp(256, 4096)).max(16),
        })
    }

    pub fn max(&self) -> Cost {
        self.max
    }

    /// What the open slots hold now.
    pub fn used(&self) -> Cost {
        Cost {
            fds: self.fds.load(Ordering::Relaxed),
            maps: self.maps.load(Ordering::Relaxed),
        }
    }

    pub fn evictions(&self) -> usize {
        self.evictions.load(Ordering::Relaxed)
    }

    fn is_over(&self) -> bool {
        let used = self.used();
        used.fds > self.max.fds || used.maps > self.max.maps
    }

    fn adjust(&self, old: Cost, new: Cost) {
        // Relaxed counters: each slot's changes are ordered by its own lock, and the
        // budget only compares their sum with the maximum.
        self.fds.fetch_add(new.fds, Ordering::Relaxed);
        self.fds.fetch_sub(old.fds, Ordering::Relaxed);
        self.maps.fetch_add(new.maps, Ordering::Relaxed);
        self.maps.fetch_sub(old.maps, Ordering::Relaxed);
    }

    /// Adds a slot that now holds files to the clock, then closes unused slots while
    /// over budget: each slot is passed at most twice (once to clear its bit, once to
    /// close it), so a sweep ends even when everything is in use.
    fn enter_and_make_room(&self, slot: Weak<dyn Evict>, entering: bool) {
        let mut clock = self.clock.lock();
        if entering {
            self.prune(&mut clock);
            clock.slots.push(slot);
        }
        let mut steps = 2 * clock.slots.len();
        while self.is_over() && steps > 0 && !clock.slots.is_empty() {
            steps -= 1;
            if clock.hand >= clock.slots.len() {
                clock.hand = 0;
            }
            let hand = clock.hand;
            let Some(candidate) = clock.slots[hand].upgrade() else {
                clock.slots.swap_remove(hand);
                continue;
            };
            if candidate.take_referenced() {
                clock.hand += 1;
            } else if candidate.try_release() {
                candidate.leave_clock();
                clock.slots.swap_remove(hand);
                self.evictions.fetch_add(1, Ordering::Relaxed);
            } else {
                clock.hand += 1;
            }
            // If the segment went meanwhile, this drop is the slot's last: it closes the
            // files and gives back the cost through atomics, never through the clock.
            drop(candidate);
        }
    }

    /// Forgets slots that are gone once they make up half the clock (a clock that is
    /// never over budget is never swept).
    fn prune(&self, clock: &mut Clock) {
        let dead = self.dead.load(Ordering::Relaxed);
        if dead > 64 && dead * 2 > clock.slots.len() {
            clock.slots.retain(|slot| slot.strong_count() > 0);
            self.dead.store(0, Ordering::Relaxed);
            clock.hand = 0;
        }
    }
}

/// The budget of this process, from its limits when first used (after `main` raised the
/// soft descriptor limit).
pub fn global() -> &'static Budget {
    static GLOBAL: OnceLock<Budget> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit on a stack value of the type it expects.
        let max_open_files = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            limit.rlim_cur
        } else {
            1024
        };
        let budget = Budget::for_limits(max_open_files, super::limits::max_map_count().unwrap_or(65_530));
        tracing::info!(
            max_open_files,
            segment_fds = budget.max.fds,
            segment_mappings = budget.max.maps,
            "open segment file budget"
        );
        budget
    })
}

/// One segment's files under a budget.
pub struct Slot<H: Handles> {
    budget: &'static Budget,
    state: Mutex<SlotState<H>>,
    referenced: AtomicBool,
    /// In the clock's list (changed under the clock's lock, or by its sweep).
    in_clock: AtomicBool,
    me: Weak<Slot<H>>,
}

struct SlotState<H> {
    handles: H,
    /// What the handles cost when last counted.
    cost: Cost,
}

impl<H: Handles + 'static> Slot<H> {
    /// A slot for handles that are open now (counted at once).
    pub fn new(budget: &'static Budget, handles: H) -> Arc<Self> {
        let slot = Arc::new_cyclic(|me| Slot {
            budget,
            state: Mutex::new(SlotState {
                handles,
                cost: Cost::default(),
            }),
            // Used once, by its creator: the first to go if not used again (a scan over
            // many partitions does not push out the ones in steady use).
            referenced: AtomicBool::new(false),
            in_clock: AtomicBool::new(false),
            me: me.clone(),
        });
        let state = slot.state.lock();
        slot.recount(state);
        slot
    }

    /// Runs `use_handles` on the open handles, opening what was closed first.
    pub fn with<R>(&self, use_handles: impl FnOnce(&mut H) -> R) -> std::io::Result<R> {
        let mut state = self.state.lock();
        if state.handles.is_released()
            && let Err(error) = state.handles.reopen()
        {
            // What did open goes again: an uncounted descriptor must not outlive the
            // failure (which is most likely the process out of descriptors).
            state.handles.release();
            self.recount(state);
            return Err(error);
        }
        self.referenced.store(true, Ordering::Relaxed);
        let result = use_handles(&mut state.handles);
        self.recount(state);
        Ok(result)
    }

    /// Runs `inspect` on the handles as they are, open or not (for what needs no file).
    pub fn peek<R>(&self, inspect: impl FnOnce(&H) -> R) -> R {
        inspect(&self.state.lock().handles)
    }

    /// Counts what the handles hold now; a slot that grew enters the clock and may make
    /// others close. The slot's lock is held meanwhile, which keeps the sweep (it only
    /// try-locks) from closing this slot while it is counted.
    fn recount(&self, mut state: MutexGuard<'_, SlotState<H>>) {
        let cost = state.handles.cost();
        if cost == state.cost {
            return;
        }
        let old = std::mem::replace(&mut state.cost, cost);
        self.budget.adjust(old, cost);
        let grew = cost.fds > old.fds || cost.maps > old.maps;
        if grew {
            let entering = !self.in_clock.swap(true, Ordering::Relaxed);
            let me: Weak<dyn Evict> = self.me.clone();
            if entering || self.budget.is_over() {
                self.budget.enter_and_make_room(me, entering);
            }
        }
        drop(state);
    }
}

impl<H: Handles + 'static> Evict for Slot<H> {
    fn take_referenced(&self) -> bool {
        self.referenced.swap(false, Ordering::Relaxed)
    }

    fn try_release(&self) -> bool {
        let Some(mut state) = self.state.try_lock() else {
            return false;
        };
        state.handles.release();
        let cost = state.handles.cost();
        let old = std::mem::replace(&mut state.cost, cost);
        self.budget.adjust(old, cost);
        cost.is_zero()
    }

    fn leave_clock(&self) {
        self.in_clock.store(false, Ordering::Relaxed);
    }
}

impl<H: Handles> Drop for Slot<H> {
    fn drop(&mut self) {
        let state = self.state.get_mut();
        self.budget.adjust(state.cost, Cost::default());
        if *self.in_clock.get_mut() {
            self.budget.dead.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Handles that cost one descriptor and one mapping while open.
    struct Fake {
        open: bool,
        reopened: usize,
    }

    impl Handles for Fake {
        fn reopen(&mut self) -> std::io::Result<()> {
            self.open = true;
            self.reopened += 1;
            Ok(())
        }
        fn release(&mut self) {
            self.open = false;
        }
        fn is_released(&self) -> bool {
            !self.open
        }
        fn cost(&self) -> Cost {
            let n = usize::from(self.open);
            Cost { fds: n, maps: n }
        }
    }

    fn budget(fds: usize, maps: usize) -> &'static Budget {
        Box::leak(Box::new(Budget::new(Cost { fds, maps })))
    }

    fn slot(budget: &'static Budget) -> Arc<Slot<Fake>> {
        Slot::new(
            budget,
            Fake {
                open: true,
                reopened: 0,
            },
        )
    }

    #[test]
    fn opening_past_the_budget_closes_what_was_not_used_lately() {
        let budget = budget(3, 100);
        let slots: Vec<_> = (0..3).map(|_| slot(budget)).collect();
        assert_eq!(budget.used(), Cost { fds: 3, maps: 3 });
        // Slot 0 is used again; opening a fourth must close another one, not slot 0.
        slots[0].with(|_| ()).unwrap();
        let fourth = slot(budget);
        assert_eq!(budget.used().fds, 3);
        assert_eq!(budget.evictions(), 1);
        assert!(fourth.peek(|handles| handles.open));
        assert!(slots[0].peek(|handles| handles.open));
        assert!(!slots[1].peek(|handles| handles.open));
        // Every slot still works: a closed one opens again on use.
        for slot in slots.iter().chain([&fourth]) {
            slot.with(|handles| assert!(handles.open)).unwrap();
        }
        assert!(budget.used().fds <= 3);
        let reopened: usize = slots
            .iter()
            .map(|slot| slot.peek(|handles| handles.reopened))
            .sum();
        assert!(reopened >= 1);
    }

    #[test]
    fn mappings_are_budgeted_like_descriptors() {
        let budget = budget(100, 2);
        let slots: Vec<_> = (0..10).map(|_| slot(budget)).collect();
        assert!(budget.used().maps <= 2, "{:?}", budget.used());
        assert_eq!(
            slots
                .iter()
                .filter(|slot| slot.peek(|handles| handles.open))
                .count(),
            2
        );
    }

    #[test]
    fn a_slot_in_use_is_never_closed_and_the_budget_gives() {
        let budget = budget(1, 100);
        let first = slot(budget);
        // While the first is in use, a second opening cannot close it: the process
        // goes over budget rather than pull files from under a user.
        first
            .with(|handles| {
                let second = slot(budget);
                assert!(handles.open);
                assert_eq!(budget.used().fds, 2);
                drop(second);
            })
            .unwrap();
        assert_eq!(budget.used().fds, 1);
    }

    #[test]
    fn a_dropped_slot_gives_back_its_cost() {
        let budget = budget(10, 10);
        let slots: Vec<_> = (0..5).map(|_| slot(budget)).collect();
        assert_eq!(budget.used(), Cost { fds: 5, maps: 5 });
        drop(slots);
        assert_eq!(budget.used(), Cost::default());
        // The clock forgets dropped slots, even when it is never over budget.
        let budget = self::budget(10, 10);
        for _ in 0..1000 {
            drop(slot(budget));
        }
        let kept = slot(budget);
        assert!(budget.clock.lock().slots.len() <= 200);
        assert_eq!(budget.used().fds, 1);
        drop(kept);
    }

    #[test]
    fn limits_leave_a_reserve() {
        let budget = Budget::for_limits(2048, 65_530);
        assert_eq!(budget.max().fds, 1536);
        assert_eq!(budget.max().maps, 65_530 - 4096);
        let tiny = Budget::for_limits(64, 300);
        assert_eq!(tiny.max(), Cost { fds: 16, maps: 44 });
    }
}
