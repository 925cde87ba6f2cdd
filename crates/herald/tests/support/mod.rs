//! Test support: a hand-written HTTP/1.1 server on 127.0.0.1:0 (so tests control
//! every byte and every pause) and the real `herald` binary as a child process.

#![allow(dead_code)]

use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

pub use herald_testkit::*;

/// What a finished `herald` printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// A running `herald`; killed when dropped.
pub struct Herald {
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr: BufReader<ChildStderr>,
}

/// Starts the real binary with `args`, stdin closed and no token in the environment.
pub fn spawn(args: &[&str]) -> Herald {
    spawn_with_stdin(args, Stdio::null())
}

pub fn spawn_with_stdin(args: &[&str], stdin: Stdio) -> Herald {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env_remove("HERALD_TOKEN")
        .env_remove("RUST_BACKTRACE")
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start herald");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    Herald {
        child,
        stdout,
        stderr,
    }
}

/// Runs `herald` to completion (bounded by [`WAIT`]).
pub async fn run(args: &[&str]) -> Output {
    spawn(args).finish().await
}

impl Herald {
    /// The next line of stdout, without its line break; fails after [`WAIT`].
    pub async fn line(&mut self) -> String {
        read_line(&mut self.stdout, "stdout").await
    }

    /// The next line of stderr, without its line break; fails after [`WAIT`].
    pub async fn err_line(&mut self) -> String {
        read_line(&mut self.stderr, "stderr").await
    }

    /// Writes `bytes` to stdin and closes it.
    pub async fn send_stdin(&mut self, bytes: &[u8]) {
        let mut stdin = self.child.stdin.take().expect("piped stdin");
        stdin.write_all(bytes).await.expect("write stdin");
        drop(stdin);
    }

    /// Waits for the exit (bounded by [`WAIT`]) and returns what remained on stdout and stderr.
    pub async fn finish(mut self) -> Output {
        let wait = async {
            let mut stdout = String::new();
            let mut stderr = String::new();
            let (out, err) = tokio::join!(
                self.stdout.read_to_string(&mut stdout),
                self.stderr.read_to_string(&mut stderr)
            );
            out.expect("read stdout");
            err.expect("read stderr");
            let status = self.child.wait().await.expect("wait for herald");
            Output {
                status,
                stdout,
                stderr,
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .expect("herald did not exit in time")
    }

    /// Kills the process and waits for it.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill herald");
    }
}

async fn read_line(reader: &mut (impl AsyncBufReadExt + Unpin), name: &str) -> String {
    let mut line = String::new();
    let n = tokio::time::timeout(WAIT, reader.read_line(&mut line))
        .await
        .unwrap_or_else(|_| panic!("no {name} line within the timeout"))
        .unwrap_or_else(|error| panic!("read {name}: {error}"));
    assert!(n > 0, "{name} closed");
    assert!(line.ends_with('\n'), "partial line {line:?}");
    line.pop();
    line
}
