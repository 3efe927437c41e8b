//! Child processes for the tests that run `ims seed` or a JS peer beside the code under test:
//! a guard that kills the child on drop, its stdout as lines readable with a deadline, and a
//! started seeder's address and key.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A child process, killed (and reaped) on drop, so a failing test leaves no server behind.
pub(crate) struct Kill(pub(crate) Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child's stdout as lines, read on a thread so a test can wait with a deadline.
pub(crate) fn lines(out: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { return };
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

/// The next line, failing after 30 s instead of hanging.
pub(crate) fn line(rx: &mpsc::Receiver<String>) -> String {
    rx.recv_timeout(Duration::from_secs(30)).expect("the child printed nothing within 30 s")
}

/// Starts `cmd` (an `ims ... seed --listen 127.0.0.1:0 ...` command) and reads the two lines
/// a seeder prints first: `listening on ADDR` and `key HEX`. Returns the guard, ADDR and HEX.
pub(crate) fn seed(mut cmd: Command) -> (Kill, String, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn ims seed");
    let out = lines(child.stdout.take().expect("stdout"));
    let kill = Kill(child);
    let addr = line(&out).trim().strip_prefix("listening on ").expect("listening line").to_owned();
    let key = line(&out).trim().strip_prefix("key ").expect("key line").to_owned();
    (kill, addr, key)
}
