use super::*;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH
}

fn file(disk: &mut Disk, parent: Ino, name: &str) -> Ino {
    disk.create(parent, OsStr::new(name), false, 0o644, (0, 0), now())
        .unwrap()
        .ino
}

fn dir(disk: &mut Disk, parent: Ino, name: &str) -> Ino {
    disk.create(parent, OsStr::new(name), true, 0o755, (0, 0), now())
        .unwrap()
        .ino
}

fn names(disk: &Disk, ino: Ino) -> Vec<String> {
    disk.read_dir(ino)
        .unwrap()
        .into_iter()
        .map(|(name, _, _)| name.to_string_lossy().into_owned())
        .collect()
}

fn content(disk: &mut Disk, parent: Ino, name: &str) -> Option<Vec<u8>> {
    let attr = disk.lookup(parent, OsStr::new(name)).ok()?;
    Some(disk.read(attr.ino, 0, u64::MAX).unwrap())
}

#[test]
fn unsynced_writes_vanish_and_synced_ones_stay() {
    let mut disk = Disk::new(now());
    let ino = file(&mut disk, ROOT, "a.log");
    disk.fsync(ROOT).unwrap();
    disk.write(ino, 0, b"hello ", now()).unwrap();
    disk.fsync(ino).unwrap();
    disk.write(ino, 6, b"world", now()).unwrap();
    assert_eq!(content(&mut disk, ROOT, "a.log").unwrap(), b"hello world");
    disk.power_cut();
    assert_eq!(content(&mut disk, ROOT, "a.log").unwrap(), b"hello ");
    let stats = disk.stats();
    assert_eq!(stats.power_cuts, 1);
    assert_eq!(stats.dropped_pages, 1);
}

#[test]
fn an_overwrite_of_synced_data_comes_back_as_it_was() {
    let mut disk = Disk::new(now());
    let ino = file(&mut disk, ROOT, "f");
    disk.fsync(ROOT).unwrap();
    let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    disk.write(ino, 0, &data, now()).unwrap();
    disk.fsync(ino).unwrap();
    disk.write(ino, 4090, &[0xff; 20], now()).unwrap();
    disk.power_cut();
    assert_eq!(content(&mut disk, ROOT, "f").unwrap(), data);
}

#[test]
fn truncations_and_extensions_vanish_unless_synced() {
    let mut disk = Disk::new(now());
    let ino = file(&mut disk, ROOT, "index");
    disk.fsync(ROOT).unwrap();
    disk.write(ino, 0, &[7; 9000], now()).unwrap();
    disk.fsync(ino).unwrap();
    // A shrink that is not synced comes back whole.
    disk.set_attr(ino, Some(100), None, None, None, None).unwrap();
    assert_eq!(disk.attr(ino).unwrap().size, 100);
    disk.power_cut();
    assert_eq!(content(&mut disk, ROOT, "index").unwrap(), vec![7; 9000]);
    // A synced shrink stays, and growing again reads zeros past it.
    disk.set_attr(ino, Some(100), None, None, None, None).unwrap();
    disk.fsync(ino).unwrap();
    disk.set_attr(ino, Some(5000), None, None, None, None).unwrap();
    let mut expected = vec![7; 100];
    expected.resize(5000, 0);
    assert_eq!(disk.read(ino, 0, u64::MAX).unwrap(), expected);
    disk.power_cut();
    assert_eq!(content(&mut disk, ROOT, "index").unwrap(), vec![7; 100]);
    // A sparse extension (a preallocated index) costs no pages.
    disk.set_attr(ino, Some(10 << 20), None, None, None, None)
        .unwrap();
    assert_eq!(disk.attr(ino).unwrap().n_pages, 1);
    assert_eq!(disk.read(ino, (10 << 20) - 4, 4).unwrap(), vec![0; 4]);
}

#[test]
fn entries_vanish_until_their_directory_is_synced() {
    let mut disk = Disk::new(now());
    let partition = dir(&mut disk, ROOT, "t-0");
    disk.fsync(ROOT).unwrap();
    let segment = file(&mut disk, partition, "0.log");
    disk.write(segment, 0, b"batch", now()).unwrap();
    disk.fsync(segment).unwrap();
    // The file's data was synced, its entry was not.
    disk.power_cut();
    assert!(names(&disk, partition).is_empty());
    // Created and synced: it stays.
    let segment = file(&mut disk, partition, "0.log");
    disk.write(segment, 0, b"batch", now()).unwrap();
    disk.fsync(segment).unwrap();
    disk.fsync(partition).unwrap();
    disk.power_cut();
    assert_eq!(content(&mut disk, partition, "0.log").unwrap(), b"batch");
    // An unsynced unlink is undone.
    disk.unlink(partition, OsStr::new("0.log"), false).unwrap();
    assert!(names(&disk, partition).is_empty());
    disk.power_cut();
    assert_eq!(names(&disk, partition), vec!["0.log"]);
    // A new directory whose parent was not synced is gone with everything in it.
    let unsynced = dir(&mut disk, ROOT, "u-0");
    let inside = file(&mut disk, unsynced, "x");
    disk.fsync(inside).unwrap();
    disk.fsync(unsynced).unwrap();
    disk.power_cut();
    assert_eq!(names(&disk, ROOT), vec!["t-0"]);
    assert_eq!(disk.stats().files, 3, "root, t-0 and 0.log");
}

#[test]
fn a_rename_is_durable_only_with_its_directory() {
    let mut disk = Disk::new(now());
    let checkpoint = file(&mut disk, ROOT, "checkpoint");
    disk.write(checkpoint, 0, b"old", now()).unwrap();
    disk.fsync(checkpoint).unwrap();
    disk.fsync(ROOT).unwrap();
    let tmp = file(&mut disk, ROOT, "checkpoint.tmp");
    disk.write(tmp, 0, b"new", now()).unwrap();
    disk.fsync(tmp).unwrap();
    disk.rename(
        ROOT,
        OsStr::new("checkpoint.tmp"),
        ROOT,
        OsStr::new("checkpoint"),
        false,
    )
    .unwrap();
    assert_eq!(content(&mut disk, ROOT, "checkpoint").unwrap(), b"new");
    disk.power_cut();
    assert_eq!(content(&mut disk, ROOT, "checkpoint").unwrap(), b"old");
    assert_eq!(names(&disk, ROOT), vec!["checkpoint"]);
    // With the directory synced after the rename, the new content stays.
    let tmp = file(&mut disk, ROOT, "checkpoint.tmp");
    disk.write(tmp, 0, b"new", now()).unwrap();
    disk.fsync(tmp).unwrap();
    disk.rename(
        ROOT,
        OsStr::new("checkpoint.tmp"),
        ROOT,
        OsStr::new("checkpoint"),
        false,
    )
    .unwrap();
    disk.fsync(ROOT).unwrap();
    disk.power_cut();
    assert_eq!(content(&mut disk, ROOT, "checkpoint").unwrap(), b"new");
    assert_eq!(names(&disk, ROOT), vec!["checkpoint"]);
}

#[test]
fn posix_errors() {
    let mut disk = Disk::new(now());
    let sub = dir(&mut disk, ROOT, "d");
    file(&mut disk, sub, "f");
    file(&mut disk, ROOT, "g");
    assert_eq!(
        disk.create(ROOT, OsStr::new("g"), false, 0o644, (0, 0), now())
            .unwrap_err(),
        FsError::Exists
    );
    assert_eq!(
        disk.unlink(ROOT, OsStr::new("d"), false).unwrap_err(),
        FsError::IsDir
    );
    assert_eq!(
        disk.unlink(ROOT, OsStr::new("d"), true).unwrap_err(),
        FsError::NotEmpty
    );
    assert_eq!(
        disk.unlink(ROOT, OsStr::new("g"), true).unwrap_err(),
        FsError::NotDir
    );
    assert_eq!(
        disk.unlink(ROOT, OsStr::new("nope"), false).unwrap_err(),
        FsError::NotFound
    );
    assert_eq!(
        disk.rename(ROOT, OsStr::new("g"), sub, OsStr::new("f"), true)
            .unwrap_err(),
        FsError::Exists
    );
    disk.rename(ROOT, OsStr::new("g"), sub, OsStr::new("f"), false)
        .unwrap();
    assert_eq!(names(&disk, ROOT), vec!["d"]);
    assert_eq!(names(&disk, sub), vec!["f"]);
}

#[test]
fn an_unlinked_file_lives_while_the_kernel_holds_it() {
    let mut disk = Disk::new(now());
    let ino = file(&mut disk, ROOT, "f");
    disk.write(ino, 0, b"x", now()).unwrap();
    disk.unlink(ROOT, OsStr::new("f"), false).unwrap();
    assert_eq!(disk.read(ino, 0, 1).unwrap(), b"x");
    disk.forget(ino, 1);
    assert_eq!(disk.read(ino, 0, 1).unwrap_err(), FsError::NotFound);
}
