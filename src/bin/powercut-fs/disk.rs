//! The model behind the power-cut test file system: files and directories in memory,
//! each with what a disk would hold (the *durable* state) beside what the page cache
//! holds (the *current* state). Pure: no FUSE, no IO, no clock reads (times are given).
//!
//! What becomes durable, and when, is the strict POSIX rule a power cut enforces:
//! - A file's data and length (writes, truncations, extensions) become durable when the
//!   file is fsynced or fdatasynced.
//! - A directory's entries (create, mkdir, rename, unlink, rmdir) become durable when
//!   that directory is fsynced. A rename between directories needs both fsynced.
//! - [`Disk::power_cut`] drops everything else: every file goes back to its last
//!   fsynced content and length, every directory to its last fsynced entries, and
//!   whatever is then unreachable from the root is gone.
//!
//! File data is kept in 4 KiB pages shared between the two states (copy on write), so
//! a file whose holes were never written costs nothing, and an fsync copies only the
//! pages written since the last one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::sync::Arc;
use std::time::SystemTime;

pub const PAGE: u64 = 4096;
pub type Ino = u64;
pub const ROOT: Ino = 1;
type Page = Arc<[u8; PAGE as usize]>;

/// A failed operation, as the errno FUSE answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsError {
    NotFound,
    Exists,
    NotDir,
    IsDir,
    NotEmpty,
}

impl FsError {
    pub fn errno(self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::Exists => libc::EEXIST,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::NotEmpty => libc::ENOTEMPTY,
        }
    }
}

pub type FsResult<T> = Result<T, FsError>;

#[derive(Debug, Default, Clone)]
struct FileData {
    pages: HashMap<u64, Page>,
    len: u64,
    durable_pages: HashMap<u64, Page>,
    durable_len: u64,
    /// Pages changed (written, zeroed or dropped) since the last fsync.
    dirty: BTreeSet<u64>,
}

impl FileData {
    fn read(&self, offset: u64, size: u64) -> Vec<u8> {
        let end = offset.saturating_add(size).min(self.len);
        if offset >= end {
            return Vec::new();
        }
        let mut out = vec![0u8; (end - offset) as usize];
        let mut position = offset;
        while position < end {
            let page = position / PAGE;
            let in_page = (position % PAGE) as usize;
            let n = ((PAGE - position % PAGE).min(end - position)) as usize;
            if let Some(data) = self.pages.get(&page) {
                let at = (position - offset) as usize;
                out[at..at + n].copy_from_slice(&data[in_page..in_page + n]);
            }
            position += n as u64;
        }
        out
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut position = offset;
        let end = offset + data.len() as u64;
        while position < end {
            let page = position / PAGE;
            let in_page = (position % PAGE) as usize;
            let n = ((PAGE - position % PAGE).min(end - position)) as usize;
            let slot = self
                .pages
                .entry(page)
                .or_insert_with(|| Arc::new([0u8; PAGE as usize]));
            let at = (position - offset) as usize;
            Arc::make_mut(slot)[in_page..in_page + n].copy_from_slice(&data[at..at + n]);
            self.dirty.insert(page);
            position += n as u64;
        }
        self.len = self.len.max(end);
    }

    fn set_len(&mut self, len: u64) {
        if len < self.len {
            let first_gone = len.div_ceil(PAGE);
            let gone: Vec<u64> = self
                .pages
                .keys()
                .copied()
                .filter(|page| *page >= first_gone)
                .collect();
            for page in gone {
                self.pages.remove(&page);
                self.dirty.insert(page);
            }
            // Bytes past the end in the last page read as zeros if the file grows again.
            if !len.is_multiple_of(PAGE)
                && let Some(data) = self.pages.get_mut(&(len / PAGE))
            {
                Arc::make_mut(data)[(len % PAGE) as usize..].fill(0);
                self.dirty.insert(len / PAGE);
            }
        }
        self.len = len;
    }

    fn fsync(&mut self) -> u64 {
        let n_pages = self.dirty.len() as u64;
        for page in std::mem::take(&mut self.dirty) {
            match self.pages.get(&page) {
                Some(data) => {
                    self.durable_pages.insert(page, data.clone());
                }
                None => {
                    self.durable_pages.remove(&page);
                }
            }
        }
        self.durable_len = self.len;
        n_pages
    }

    /// Back to the last fsync; returns the pages dropped.
    fn power_cut(&mut self) -> u64 {
        let n_pages = self.dirty.len() as u64;
        for page in std::mem::take(&mut self.dirty) {
            match self.durable_pages.get(&page) {
                Some(data) => {
                    self.pages.insert(page, data.clone());
                }
                None => {
                    self.pages.remove(&page);
                }
            }
        }
        self.len = self.durable_len;
        n_pages
    }

    fn is_synced(&self) -> bool {
        self.dirty.is_empty() && self.len == self.durable_len
    }
}

#[derive(Debug, Default, Clone)]
struct DirData {
    entries: BTreeMap<OsString, Ino>,
    durable: BTreeMap<OsString, Ino>,
}

#[derive(Debug, Clone)]
enum Content {
    File(FileData),
    Dir(DirData),
}

#[derive(Debug, Clone)]
struct Inode {
    content: Content,
    perm: u16,
    uid: u32,
    gid: u32,
    mtime: SystemTime,
    /// Kernel references (lookups not yet forgotten): an unlinked file stays readable
    /// while they last.
    lookups: u64,
}

/// What the FUSE layer reports for an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub ino: Ino,
    pub is_dir: bool,
    pub size: u64,
    pub n_pages: u64,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: SystemTime,
}

/// Counters, for the control socket and the tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub writes: u64,
    pub bytes_written: u64,
    pub fsyncs: u64,
    pub dir_fsyncs: u64,
    pub power_cuts: u64,
    /// Pages of file data thrown away by power cuts (unsynced writes and truncations).
    pub dropped_pages: u64,
    /// Directory entries thrown away or brought back by power cuts.
    pub dropped_entries: u64,
    pub files: u64,
    /// Files and directories with something a power cut would drop.
    pub unsynced: u64,
    pub resident_pages: u64,
}

#[derive(Debug, Clone)]
pub struct Disk {
    inodes: HashMap<Ino, Inode>,
    next_ino: Ino,
    stats: Stats,
}

impl Disk {
    pub fn new(now: SystemTime) -> Self {
        let root = Inode {
            content: Content::Dir(DirData::default()),
            perm: 0o755,
            uid: 0,
            gid: 0,
            mtime: now,
            lookups: 0,
        };
        Disk {
            inodes: HashMap::from([(ROOT, root)]),
            next_ino: ROOT + 1,
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        let mut stats = self.stats;
        stats.files = self.inodes.len() as u64;
        stats.unsynced = self
            .inodes
            .keys()
            .filter(|ino| self.is_synced(**ino) == Ok(false))
            .count() as u64;
        stats.resident_pages = self
            .inodes
            .values()
            .map(|inode| match &inode.content {
                Content::File(file) => file.pages.len() as u64,
                Content::Dir(_) => 0,
            })
            .sum();
        stats
    }

    fn inode(&self, ino: Ino) -> FsResult<&Inode> {
        self.inodes.get(&ino).ok_or(FsError::NotFound)
    }

    fn inode_mut(&mut self, ino: Ino) -> FsResult<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or(FsError::NotFound)
    }

    fn dir(&self, ino: Ino) -> FsResult<&DirData> {
        match &self.inode(ino)?.content {
            Content::Dir(dir) => Ok(dir),
            Content::File(_) => Err(FsError::NotDir),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> FsResult<&mut DirData> {
        match &mut self.inode_mut(ino)?.content {
            Content::Dir(dir) => Ok(dir),
            Content::File(_) => Err(FsError::NotDir),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> FsResult<&mut FileData> {
        match &mut self.inode_mut(ino)?.content {
            Content::File(file) => Ok(file),
            Content::Dir(_) => Err(FsError::IsDir),
        }
    }

    /// How many current entries name `ino`.
    fn links(&self, ino: Ino) -> u32 {
        self.inodes
            .values()
            .filter_map(|inode| match &inode.content {
                Content::Dir(dir) => Some(dir.entries.values().filter(|each| **each == ino).count() as u32),
                Content::File(_) => None,
            })
            .sum()
    }

    pub fn attr(&self, ino: Ino) -> FsResult<Attr> {
        let inode = self.inode(ino)?;
        let (is_dir, size, n_pages, nlink) = match &inode.content {
            Content::File(file) => (false, file.len, file.pages.len() as u64, self.links(ino)),
            Content::Dir(_) => (true, 4096, 1, 2),
        };
        Ok(Attr {
            ino,
            is_dir,
            size,
            n_pages,
            perm: inode.perm,
            uid: inode.uid,
            gid: inode.gid,
            nlink,
            mtime: inode.mtime,
        })
    }

    pub fn lookup(&mut self, parent: Ino, name: &OsStr) -> FsResult<Attr> {
        let ino = *self.dir(parent)?.entries.get(name).ok_or(FsError::NotFound)?;
        self.inode_mut(ino)?.lookups += 1;
        self.attr(ino)
    }

    /// The kernel dropped `n` references; an inode nothing names any more is freed.
    pub fn forget(&mut self, ino: Ino, n: u64) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.lookups = inode.lookups.saturating_sub(n);
            if inode.lookups == 0 && ino != ROOT && !self.named_anywhere(ino) {
                self.inodes.remove(&ino);
            }
        }
    }

    fn named_anywhere(&self, ino: Ino) -> bool {
        self.inodes.values().any(|inode| match &inode.content {
            Content::Dir(dir) => dir
                .entries
                .values()
                .chain(dir.durable.values())
                .any(|each| *each == ino),
            Content::File(_) => false,
        })
    }

    /// Creates a file (`dir` false) or directory named `name` in `parent`.
    pub fn create(
        &mut self,
        parent: Ino,
        name: &OsStr,
        dir: bool,
        perm: u16,
        (uid, gid): (u32, u32),
        now: SystemTime,
    ) -> FsResult<Attr> {
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(FsError::Exists);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let content = if dir {
            Content::Dir(DirData::default())
        } else {
            Content::File(FileData::default())
        };
        self.inodes.insert(
            ino,
            Inode {
                content,
                perm,
                uid,
                gid,
                mtime: now,
                lookups: 1,
            },
        );
        self.dir_mut(parent)?.entries.insert(name.to_os_string(), ino);
        self.attr(ino)
    }

    pub fn unlink(&mut self, parent: Ino, name: &OsStr, want_dir: bool) -> FsResult<()> {
        let ino = *self.dir(parent)?.entries.get(name).ok_or(FsError::NotFound)?;
        match (&self.inode(ino)?.content, want_dir) {
            (Content::Dir(_), false) => return Err(FsError::IsDir),
            (Content::File(_), true) => return Err(FsError::NotDir),
            (Content::Dir(dir), true) if !dir.entries.is_empty() => return Err(FsError::NotEmpty),
            _ => {}
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.forget(ino, 0);
        Ok(())
    }

    pub fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        no_replace: bool,
    ) -> FsResult<()> {
        let ino = *self.dir(parent)?.entries.get(name).ok_or(FsError::NotFound)?;
        let replaced = self.dir(new_parent)?.entries.get(new_name).copied();
        if let Some(target) = replaced {
            if target == ino {
                return Ok(());
            }
            if no_replace {
                return Err(FsError::Exists);
            }
            match (&self.inode(ino)?.content, &self.inode(target)?.content) {
                (Content::File(_), Content::Dir(_)) => return Err(FsError::IsDir),
                (Content::Dir(_), Content::File(_)) => return Err(FsError::NotDir),
                (Content::Dir(_), Content::Dir(dir)) if !dir.entries.is_empty() => {
                    return Err(FsError::NotEmpty);
                }
                _ => {}
            }
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.dir_mut(new_parent)?
            .entries
            .insert(new_name.to_os_string(), ino);
        if let Some(target) = replaced {
            self.forget(target, 0);
        }
        Ok(())
    }

    pub fn read_dir(&self, ino: Ino) -> FsResult<Vec<(OsString, Ino, bool)>> {
        Ok(self
            .dir(ino)?
            .entries
            .iter()
            .map(|(name, child)| {
                let is_dir = matches!(
                    self.inodes.get(child).map(|inode| &inode.content),
                    Some(Content::Dir(_))
                );
                (name.clone(), *child, is_dir)
            })
            .collect())
    }

    pub fn read(&self, ino: Ino, offset: u64, size: u64) -> FsResult<Vec<u8>> {
        match &self.inode(ino)?.content {
            Content::File(file) => Ok(file.read(offset, size)),
            Content::Dir(_) => Err(FsError::IsDir),
        }
    }

    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8], now: SystemTime) -> FsResult<()> {
        self.file_mut(ino)?.write(offset, data);
        self.inode_mut(ino)?.mtime = now;
        self.stats.writes += 1;
        self.stats.bytes_written += data.len() as u64;
        Ok(())
    }

    /// Sets what `setattr` may change: length, permissions, owner, modification time.
    pub fn set_attr(
        &mut self,
        ino: Ino,
        len: Option<u64>,
        perm: Option<u16>,
        uid: Option<u32>,
        gid: Option<u32>,
        mtime: Option<SystemTime>,
    ) -> FsResult<Attr> {
        if let Some(len) = len {
            self.file_mut(ino)?.set_len(len);
        }
        let inode = self.inode_mut(ino)?;
        if let Some(perm) = perm {
            inode.perm = perm;
        }
        if let Some(uid) = uid {
            inode.uid = uid;
        }
        if let Some(gid) = gid {
            inode.gid = gid;
        }
        if let Some(mtime) = mtime {
            inode.mtime = mtime;
        }
        self.attr(ino)
    }

    /// fsync or fdatasync: a file's data and length become durable; a directory's
    /// entries do.
    pub fn fsync(&mut self, ino: Ino) -> FsResult<()> {
        match &mut self.inode_mut(ino)?.content {
            Content::File(file) => {
                file.fsync();
                self.stats.fsyncs += 1;
            }
            Content::Dir(dir) => {
                dir.durable = dir.entries.clone();
                self.stats.dir_fsyncs += 1;
            }
        }
        Ok(())
    }

    /// Whether everything about `ino` (data, length, or entries) is durable.
    pub fn is_synced(&self, ino: Ino) -> FsResult<bool> {
        Ok(match &self.inode(ino)?.content {
            Content::File(file) => file.is_synced(),
            Content::Dir(dir) => dir.entries == dir.durable,
        })
    }

    /// The power goes out: everything not fsynced is lost, and so is every inode no
    /// durable entry leads to from the root. Kernel references are gone too (the file
    /// system is mounted afresh).
    pub fn power_cut(&mut self) {
        self.stats.power_cuts += 1;
        for inode in self.inodes.values_mut() {
            inode.lookups = 0;
            match &mut inode.content {
                Content::File(file) => self.stats.dropped_pages += file.power_cut(),
                Content::Dir(dir) => {
                    let changed = dir
                        .entries
                        .iter()
                        .filter(|(name, ino)| dir.durable.get(*name) != Some(ino))
                        .count()
                        + dir
                            .durable
                            .keys()
                            .filter(|name| !dir.entries.contains_key(*name))
                            .count();
                    self.stats.dropped_entries += changed as u64;
                    dir.entries = dir.durable.clone();
                }
            }
        }
        let mut reachable = BTreeSet::from([ROOT]);
        let mut queue = vec![ROOT];
        while let Some(ino) = queue.pop() {
            if let Some(Content::Dir(dir)) = self.inodes.get(&ino).map(|inode| &inode.content) {
                for child in dir.entries.values() {
                    if reachable.insert(*child) {
                        queue.push(*child);
                    }
                }
            }
        }
        self.inodes.retain(|ino, _| reachable.contains(ino));
    }
}

#[cfg(test)]
#[path = "disk_tests.rs"]
mod tests;
