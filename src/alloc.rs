//! The process's global allocator: the system allocator, except that allocations of
//! [`LARGE`] bytes or more are reserved with `mmap(MAP_NORESERVE)`.
//!
//! Why: the protocol decoder (the `kafka-protocol` crate) sizes a `Vec` from an array's
//! element count before it reads any element. A hostile request can claim two billion
//! elements in a few bytes; with the system allocator that asks for tens of gigabytes
//! at once and the process aborts. Reserved this way, the address space is granted
//! without committing memory, the decoder fails on the bytes that are not there, and
//! the reservation is released: only pages actually written are ever backed. (With
//! `vm.overcommit_memory=2` the kernel refuses such reservations outright.) Every
//! legitimate allocation is far smaller: a request frame is bounded by
//! `socket.request.max.bytes`.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations from this size up are mapped, not taken from the heap.
pub const LARGE: usize = 256 << 20;
const PAGE: usize = 4096;

pub struct Allocator;

fn mapped(layout: &Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= PAGE
}

unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !mapped(&layout) {
            // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
            return unsafe { System.alloc(layout) };
        }
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let pointer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if pointer == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            pointer.cast()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mapped(&layout) {
            // Anonymous mappings are zero-filled.
            // SAFETY: same contract as `alloc`.
            unsafe { self.alloc(layout) }
        } else {
            // SAFETY: forwarded unchanged.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        if mapped(&layout) {
            // SAFETY: `pointer` came from `alloc` with this layout, hence from mmap of
            // exactly this size; nothing uses it after `dealloc`.
            unsafe {
                libc::munmap(pointer.cast(), layout.size());
            }
        } else {
            // SAFETY: forwarded unchanged.
            unsafe { System.dealloc(pointer, layout) }
        }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with this alignment is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !mapped(&layout) && !mapped(&new_layout) {
            // SAFETY: forwarded unchanged.
            return unsafe { System.realloc(pointer, layout, new_size) };
        }
        // SAFETY: allocate, copy what both hold, free the old block: each call keeps
        // its contract, and the blocks do not overlap.
        unsafe {
            let moved = self.alloc(new_layout);
            if !moved.is_null() {
                std::ptr::copy_nonoverlapping(pointer, moved, layout.size().min(new_size));
                self.dealloc(pointer, layout);
            }
            moved
        }
    }
}

#[global_allocator]
static GLOBAL: Allocator = Allocator;

#[cfg(test)]
mod tests {
    #[test]
    fn a_huge_claimed_capacity_is_reserved_not_committed() {
        // What a hostile element count makes the decoder ask for: 64 GiB.
        let mut huge: Vec<u64> = Vec::with_capacity(8 << 30);
        huge.extend(0..1000u64);
        assert_eq!(huge[999], 999);
        let small: Vec<u8> = vec![1; 1 << 20];
        assert_eq!(small.iter().map(|byte| *byte as usize).sum::<usize>(), 1 << 20);
        drop(huge);
        // Growing across the threshold moves the data.
        let mut growing: Vec<u8> = Vec::with_capacity(super::LARGE - 8);
        growing.extend_from_slice(b"kept");
        growing.reserve(super::LARGE);
        assert_eq!(&growing[..4], b"kept");
    }
}
