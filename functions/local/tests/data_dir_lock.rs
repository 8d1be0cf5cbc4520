//! One `tandem serve` per data directory, with the real binary: a second process on a
//! directory in use is refused naming the first one's pid, and a process killed with
//! SIGKILL leaves no stale lock behind. Every process started is killed at the end.

#![allow(clippy::unwrap_used)] // tests: a failed set-up step should panic

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A started `tandem`, killed (SIGKILL) and reaped when dropped.
struct Running {
    child: Child,
    stdout: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, stderr: Stdio) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    Running { child, stdout: rx }
}

/// Waits (at most a minute) for the server's "listening" line.
fn wait_until_serving(p: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match p.stdout.recv_timeout(left) {
            Ok(line) if line.starts_with("Tandem local API on http://") => return,
            Ok(_) => {}
            Err(e) => panic!("tandem serve did not start serving: {e}; exit: {:?}", p.child.try_wait()),
        }
    }
}

/// Waits (at most 30 s) for the process to exit; its exit status and standard error.
fn wait_for_exit(mut p: Running) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "a second tandem serve on a directory in use kept running");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = p.child.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    (status, err)
}

#[test]
fn a_second_tandem_serve_on_a_data_directory_in_use_is_refused_and_a_killed_one_leaves_no_stale_lock() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");

    let mut first = serve(&dir, Stdio::null());
    wait_until_serving(&mut first);
    let first_pid = first.child.id();

    let second = serve(&dir, Stdio::piped());
    let (status, stderr) = wait_for_exit(second);
    assert!(!status.success(), "the second process exited with {status}: {stderr}");
    let want = format!("data directory {} is in use by another Tandem process (pid {first_pid})", dir.display());
    assert!(stderr.contains(&want), "expected {want:?} in:\n{stderr}");

    // SIGKILL: no chance to clean up. The operating system releases the lock.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let mut third = serve(&dir, Stdio::null());
    wait_until_serving(&mut third);
    assert_eq!(std::fs::read_to_string(dir.join("tandem.lock")).unwrap().trim(), third.child.id().to_string());
}
