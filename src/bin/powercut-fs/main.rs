//! powercut-fs: a test file system that loses, on command, everything a power cut
//! loses: every write, truncation and directory entry (create, rename, unlink) that
//! was not fsynced (for entries: their directory fsynced). The fault suite mounts one
//! under each node's data directory and cuts the power of a node by killing it with
//! SIGKILL and then telling its file system to cut.
//!
//!   powercut-fs MOUNTPOINT CONTROL_SOCKET
//!
//! The file system lives in this process's memory (the `disk` module), so it survives
//! the cut of the broker above it. The control socket takes one command per line and
//! answers one line:
//!   ping    ok
//!   stats   the counters, as JSON
//!   cut     unmount (the kernel's page cache for the mount goes with it), drop
//!           everything unsynced, mount again; answers ok and the counters
//!   quit    unmount and exit (SIGTERM and SIGINT do the same)
//!
//! Mount it in a private mount namespace (the test suite runs under scripts/netns);
//! mounting needs root and /dev/fuse.

mod disk;
mod fuse;

use disk::Disk;
use parking_lot::Mutex;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Mounted {
    disk: Arc<Mutex<Disk>>,
    mountpoint: PathBuf,
    session: Option<fuser::BackgroundSession>,
}

impl Mounted {
    fn unmount(&mut self) -> std::io::Result<()> {
        match self.session.take() {
            Some(session) => session.umount_and_join(),
            None => Ok(()),
        }
    }

    fn cut(&mut self) -> std::io::Result<()> {
        self.unmount()?;
        self.disk.lock().power_cut();
        self.session = Some(fuse::mount(self.disk.clone(), &self.mountpoint)?);
        Ok(())
    }

    fn stats(&self) -> String {
        serde_json::to_string(&self.disk.lock().stats()).unwrap_or_else(|_| "{}".into())
    }
}

fn serve(mounted: &Arc<Mutex<Mounted>>, stream: UnixStream) -> std::io::Result<bool> {
    let mut writer = stream.try_clone()?;
    for line in BufReader::new(stream).lines() {
        let line = line?;
        let answer = match line.trim() {
            "ping" => "ok".to_string(),
            "stats" => mounted.lock().stats(),
            "cut" => {
                let mut mounted = mounted.lock();
                match mounted.cut() {
                    Ok(()) => format!("ok {}", mounted.stats()),
                    Err(error) => format!("error {error}"),
                }
            }
            "quit" => {
                writeln!(writer, "ok")?;
                return Ok(true);
            }
            other => format!("error unknown command {other:?}"),
        };
        writeln!(writer, "{answer}")?;
    }
    Ok(false)
}

/// Blocks SIGTERM and SIGINT in every thread and waits for them on one, which then
/// unmounts and exits.
fn handle_signals(mounted: Arc<Mutex<Mounted>>, control: PathBuf) {
    // SAFETY: plain libc signal-set calls on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        std::thread::spawn(move || {
            let mut signal = 0;
            libc::sigwait(&set, &mut signal);
            let _ = mounted.lock().unmount();
            let _ = std::fs::remove_file(&control);
            std::process::exit(0);
        });
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: powercut-fs MOUNTPOINT CONTROL_SOCKET");
        std::process::exit(2);
    }
    let mountpoint = PathBuf::from(&args[1]);
    let control = PathBuf::from(&args[2]);
    if let Err(error) = run(&mountpoint, &control) {
        eprintln!("powercut-fs: {error}");
        std::process::exit(1);
    }
}

fn run(mountpoint: &Path, control: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(mountpoint)?;
    let disk = Arc::new(Mutex::new(Disk::new(std::time::SystemTime::now())));
    let mounted = Arc::new(Mutex::new(Mounted {
        disk: disk.clone(),
        mountpoint: mountpoint.to_path_buf(),
        session: None,
    }));
    handle_signals(mounted.clone(), control.to_path_buf());
    mounted.lock().session = Some(fuse::mount(disk, mountpoint)?);
    let _ = std::fs::remove_file(control);
    let listener = UnixListener::bind(control)?;
    for stream in listener.incoming() {
        match serve(&mounted, stream?) {
            Ok(true) => break,
            Ok(false) => {}
            Err(error) => eprintln!("powercut-fs: control connection: {error}"),
        }
    }
    mounted.lock().unmount()?;
    let _ = std::fs::remove_file(control);
    Ok(())
}
