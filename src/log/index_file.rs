//! A memory-mapped file of fixed-size entries, the storage under both index kinds.
//!
//! While a segment is active its index file is preallocated to `max_size` bytes and
//! mapped read-write once it takes its first entry (an active index that never gets
//! one, as in a partition that holds less than `index.interval.bytes`, stays an empty
//! file with no mapping, and sealing it costs nothing); entries past `entries` are zero
//! and meaningless. When the segment is sealed (rolled or closed) the file is trimmed to
//! exactly `entries * entry_size`, so a sealed index's length says how many entries it
//! holds.
//!
//! The preallocated file is sparse: disk blocks are reserved with `fallocate` a chunk at
//! a time just before entries reach them, so a full disk refuses the reservation (the
//! entry is skipped: indexes are sparse by nature, a lookup scans on from the entry
//! before) instead of the kernel raising SIGBUS on a write through the mapping.
//!
//! Mappings are advised random access (`MADV_RANDOM`): a page fault brings in that page
//! only, never the disk's read-ahead window of a mostly empty preallocated file.
//!
//! Crash rule: indexes are not checksummed. After an unclean shutdown the indexes of every
//! segment past the recovery point are rebuilt from the log, and any index whose size or
//! contents fail a sanity check is rebuilt too.

use memmap2::MmapMut;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

pub struct IndexFile {
    path: PathBuf,
    /// Open only while the index is active (it grows, reserves blocks and is sealed);
    /// a sealed index is read through its mapping alone and costs no descriptor.
    file: Option<File>,
    /// Preallocated and written to; false once sealed.
    active: bool,
    /// None when the file is empty (a zero-length file cannot be mapped) or released.
    mmap: Option<MmapMut>,
    /// The mapped length, known while released too (capacity, fullness).
    length: usize,
    /// Closed by the open-file budget: mapping and descriptor go, entries stay counted.
    released: bool,
    entry_size: usize,
    entries: usize,
    /// Bytes from the start that are known to have disk blocks behind them.
    reserved: usize,
    /// The length an active index is preallocated to when it takes its first entry.
    max_length: usize,
    /// Changed in length by this process (preallocated, or emptied at open): sealing
    /// must trim and fsync it.
    grown: bool,
}

/// How much of an index file is reserved at a time.
const RESERVE_CHUNK: usize = 64 * 1024;

impl IndexFile {
    /// Opens (or creates) the file, keeping its entries when `keep_entries` is true and
    /// the file length is a whole number of entries; otherwise it starts empty.
    /// An active index is then grown to `max_size` bytes.
    pub fn open(
        path: &Path,
        entry_size: usize,
        max_size: u64,
        keep_entries: bool,
        active: bool,
    ) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let length = file.metadata()?.len();
        let entries = if keep_entries && length % entry_size as u64 == 0 {
            (length / entry_size as u64) as usize
        } else {
            0
        };
        // A file emptied here is trimmed (and fsynced) again when sealed.
        let emptied = !keep_entries && length > 0;
        if !keep_entries {
            file.set_len(0)?;
        }
        let mut index = IndexFile {
            path: path.to_path_buf(),
            file: Some(file),
            active,
            mmap: None,
            length: 0,
            released: false,
            entry_size,
            entries,
            reserved: entries * entry_size,
            max_length: ((max_size / entry_size as u64) * entry_size as u64) as usize,
            grown: emptied,
        };
        index.remap()?;
        if !active {
            index.file = None;
        }
        Ok(index)
    }

    /// The open file, reopened if a sealed index let it go.
    fn handle(&mut self) -> io::Result<&File> {
        if self.file.is_none() {
            self.file = Some(OpenOptions::new().read(true).write(true).open(&self.path)?);
        }
        self.file
            .as_ref()
            .ok_or_else(|| io::Error::other("index file not open"))
    }

    fn remap(&mut self) -> io::Result<()> {
        let file = self.handle()?;
        let length = file.metadata()?.len();
        self.mmap = if length == 0 {
            None
        } else {
            // SAFETY: the broker is the only writer of its index files, and every access
            // stays within `length`, which only changes through `resize` on this struct.
            let mmap = unsafe { MmapMut::map_mut(file)? };
            // Entries are touched one page at a time (appends at the end, binary search):
            // without this, a fault reads ahead as far as the disk does (megabytes of
            // zeros of a preallocated index into the page cache, for one entry).
            if let Err(error) = mmap.advise(memmap2::Advice::Random) {
                tracing::debug!(path = %self.path.display(), %error, "madvise(MADV_RANDOM) refused");
            }
            Some(mmap)
        };
        self.length = length as usize;
        Ok(())
    }

    fn resize(&mut self, length: u64) -> io::Result<()> {
        let length = length.max((self.entries * self.entry_size) as u64);
        self.reserved = self.reserved.min(length as usize);
        self.mmap = None;
        self.handle()?.set_len(length)?;
        self.remap()
    }

    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Entries the file takes (an active index counts what it will be preallocated to).
    pub fn capacity(&self) -> usize {
        if self.active {
            self.max_length.max(self.length) / self.entry_size
        } else {
            self.length / self.entry_size
        }
    }

    /// Lets the mapping and descriptor go (the open-file budget). Dirty pages of the
    /// mapping stay in the page cache; [`IndexFile::reopen`] maps the file again.
    pub fn release(&mut self) {
        self.mmap = None;
        self.file = None;
        self.released = true;
    }

    pub fn is_released(&self) -> bool {
        self.released
    }

    /// Maps a released index again as it was: an active one keeps its descriptor.
    pub fn reopen(&mut self) -> io::Result<()> {
        if !self.released {
            return Ok(());
        }
        self.remap()?;
        if !self.active {
            self.file = None;
        }
        self.released = false;
        Ok(())
    }

    /// Descriptors held (0 or 1).
    pub fn fds(&self) -> usize {
        usize::from(self.file.is_some())
    }

    /// Mappings held (0 or 1).
    pub fn maps(&self) -> usize {
        usize::from(self.mmap.is_some())
    }

    pub fn is_full(&self) -> bool {
        self.entries >= self.capacity()
    }

    pub fn entry(&self, index: usize) -> &[u8] {
        match &self.mmap {
            Some(mmap) if index < self.entries => {
                &mmap[index * self.entry_size..(index + 1) * self.entry_size]
            }
            _ => &[],
        }
    }

    /// Makes sure disk blocks stand behind the file up to `end`; false if the disk has
    /// no room. Filesystems without `fallocate` keep the sparse behaviour.
    fn reserve_through(&mut self, end: usize) -> bool {
        if end <= self.reserved {
            return true;
        }
        let target = (end.div_ceil(RESERVE_CHUNK) * RESERVE_CHUNK).min(self.length);
        use std::os::fd::AsRawFd;
        let fd = match self.handle() {
            Ok(file) => file.as_raw_fd(),
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %error, "cannot reopen an index; entry skipped");
                return false;
            }
        };
        // SAFETY: fallocate on our own open descriptor, within the file's length.
        let result = unsafe {
            libc::fallocate(
                fd,
                0,
                self.reserved as libc::off_t,
                (target - self.reserved) as libc::off_t,
            )
        };
        if result == 0 {
            self.reserved = target;
            return true;
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EOPNOTSUPP) {
            self.reserved = usize::MAX;
            return true;
        }
        tracing::warn!(path = %self.path.display(), %error, "cannot reserve index space; entry skipped");
        false
    }

    /// Appends one entry; returns false when the file is full. An entry the disk has no
    /// room for is skipped (returning true): lookups then scan from the entry before.
    pub fn push(&mut self, entry: &[u8]) -> bool {
        debug_assert_eq!(entry.len(), self.entry_size);
        if self.is_full() {
            return false;
        }
        let start = self.entries * self.entry_size;
        if start + self.entry_size > self.length {
            // The first entry: preallocate the file now.
            if let Err(error) = self.resize(self.max_length as u64) {
                tracing::warn!(path = %self.path.display(), %error, "cannot grow an index; entry skipped");
                return true;
            }
            self.grown = true;
        }
        if !self.reserve_through(start + self.entry_size) {
            return true;
        }
        if let Some(mmap) = self.mmap.as_mut() {
            mmap[start..start + self.entry_size].copy_from_slice(entry);
            self.entries += 1;
            return true;
        }
        false
    }

    /// Forgets entries from `count` on.
    pub fn truncate_entries(&mut self, count: usize) {
        self.entries = self.entries.min(count);
    }

    /// The largest entry index `i` with `key(entry(i)) <= target`, by binary search.
    pub fn floor_by<F: Fn(&[u8]) -> i64>(&self, target: i64, key: F) -> Option<usize> {
        let (mut low, mut high) = (0usize, self.entries);
        while low < high {
            let middle = (low + high) / 2;
            if key(self.entry(middle)) <= target {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low.checked_sub(1)
    }

    pub fn flush(&self) -> io::Result<()> {
        match &self.mmap {
            Some(mmap) => mmap.flush(),
            None => Ok(()),
        }
    }

    /// Trims the file to its entries (the sealed form) and lets its descriptor go. An
    /// index that is sealed already is left as it is.
    pub fn seal(&mut self) -> io::Result<()> {
        if !self.active {
            return Ok(());
        }
        let length = (self.entries * self.entry_size) as u64;
        if !self.grown && self.length as u64 == length {
            // Never written to here and already its sealed length: nothing to trim.
            self.active = false;
            self.file = None;
            return Ok(());
        }
        self.flush()?;
        self.mmap = None;
        let file = self.handle()?;
        file.set_len(length)?;
        file.sync_all()?;
        self.reserved = self.reserved.min(self.entries * self.entry_size);
        self.remap()?;
        self.active = false;
        self.file = None;
        Ok(())
    }

    /// Whether the index takes entries (not sealed).
    pub fn is_active(&self) -> bool {
        self.active
    }

    pub fn delete(self) -> io::Result<()> {
        let path = self.path.clone();
        drop(self);
        remove_if_exists(&path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn entries_reserve_disk_blocks_a_chunk_at_a_time() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = IndexFile::open(&path, 8, 1 << 20, false, true).unwrap();
        let blocks = |path: &Path| std::fs::metadata(path).unwrap().blocks() * 512;
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            0,
            "empty until its first entry"
        );
        assert_eq!((index.maps(), index.capacity()), (0, (1 << 20) / 8));
        assert!(index.push(&1u64.to_be_bytes()));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
        assert!(blocks(&path) < 2 * RESERVE_CHUNK as u64, "sparse until used");
        assert!(
            blocks(&path) >= RESERVE_CHUNK as u64,
            "the first chunk is reserved"
        );
        for entry in 1..(RESERVE_CHUNK / 8 + 1) as u64 {
            assert!(index.push(&entry.to_be_bytes()));
        }
        assert!(
            blocks(&path) >= 2 * RESERVE_CHUNK as u64,
            "the next chunk when entries reach it"
        );
        assert_eq!(index.entries(), RESERVE_CHUNK / 8 + 1);
        index.seal().unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            (RESERVE_CHUNK + 8) as u64
        );
    }

    /// Pages of `path` in the page cache, counted by `mincore` over a fresh mapping.
    pub(crate) fn resident_bytes(path: &Path) -> usize {
        let file = File::open(path).unwrap();
        let length = file.metadata().unwrap().len() as usize;
        if length == 0 {
            return 0;
        }
        // SAFETY: a read-only mapping of a file this test owns, only passed to mincore.
        let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
        let page = 4096;
        let mut resident = vec![0u8; length.div_ceil(page)];
        // SAFETY: `resident` has one byte per page of the mapping.
        let result =
            unsafe { libc::mincore(map.as_ptr() as *mut libc::c_void, length, resident.as_mut_ptr()) };
        assert_eq!(result, 0, "{}", io::Error::last_os_error());
        resident.iter().filter(|byte| **byte & 1 == 1).count() * page
    }

    /// A write to a fresh 10 MiB index brings in the pages it touches, not megabytes of
    /// zeros read ahead around them (the disk may read ahead 8 MiB).
    #[test]
    fn one_entry_brings_in_only_the_pages_it_touches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = IndexFile::open(&path, 8, 10 << 20, false, true).unwrap();
        assert!(index.push(&1u64.to_be_bytes()));
        let resident = resident_bytes(&path);
        assert!(resident <= 64 * 1024, "{resident} bytes resident after one entry");
        // Lookups fault in nothing around the entries either.
        assert_eq!(
            index.floor_by(5, |entry| i64::from_be_bytes(entry.try_into().unwrap())),
            Some(0)
        );
        assert!(resident_bytes(&path) <= 64 * 1024);
    }
}
