//! Our server: the release binary as a child process, its flags and its memory read from /proc.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::http::{Base, Client, Request};
use crate::{Options, KEEP_ALIVE_SECONDS, PAGE_SIZE, START_TIMEOUT};

/// How the binary is started, from what its `--help` lists.
pub(crate) struct ServerFlags {
    pub(crate) keep_alive: bool,
    /// `--server-args`, passed as they are.
    pub(crate) extra: Vec<String>,
    pub(crate) workers_flag: bool,
    pub(crate) workers: usize,
}

impl ServerFlags {
    pub(crate) fn detect(binary: &Path, extra: &[String]) -> ServerFlags {
        let help = Command::new(binary)
            .arg("--help")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default();
        ServerFlags {
            keep_alive: help.contains("--keep-alive"),
            extra: extra.to_vec(),
            workers_flag: help.contains("--workers"),
            workers: thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }

    pub(crate) fn keep_alive_text(&self) -> String {
        if self.keep_alive {
            format!("{KEEP_ALIVE_SECONDS} s (--keep-alive {KEEP_ALIVE_SECONDS})")
        } else {
            "off: one request per connection (the binary has no --keep-alive)".into()
        }
    }
}

/// The server binary: `--binary`, else the one next to this bench's (built first when asked).
pub(crate) fn locate_binary(options: &Options) -> Result<PathBuf, String> {
    if let Some(binary) = &options.binary {
        return Ok(binary.clone());
    }
    // The workspace shares one target directory: target/release/bench -> target/release/monitor-server
    let exe = std::env::current_exe().map_err(|err| format!("cannot find myself: {err}"))?;
    let profile_dir = exe.parent().ok_or("cannot find the target directory")?;
    let binary = profile_dir.join("monitor-server");
    if options.build || !binary.exists() {
        eprintln!("building the release binary (cargo build --release -p monitor-server)");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "-p",
                "monitor-server",
                "--bin",
                "monitor-server",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status();
        match status {
            Ok(status) if status.success() => {}
            _ if binary.exists() => {
                eprintln!("warning: the build failed; measuring the binary already there")
            }
            _ => return Err("cannot build the release binary".into()),
        }
    }
    if !profile_dir.ends_with("release") {
        eprintln!(
            "warning: {} is not a release build; run with --release",
            binary.display()
        );
    }
    Ok(binary)
}

pub(crate) struct Ours {
    pub(crate) child: Child,
    pub(crate) base: Base,
    /// From spawning to the "listening on" line.
    pub(crate) listening: Duration,
    /// From spawning to the first answered request.
    pub(crate) first_answer: Duration,
}

impl Ours {
    pub(crate) fn start(binary: &Path, db: &Path, flags: &ServerFlags) -> Result<Ours, String> {
        let mut command = Command::new(binary);
        command
            .arg("--db")
            .arg(db)
            .args(["--bind", "127.0.0.1:0", "--page-size"])
            .arg(PAGE_SIZE.to_string())
            .env("RUST_LOG", "info")
            .env_remove("MONITOR_SERVER_TOKEN")
            .env_remove("MONITOR_SERVER_READ_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if flags.keep_alive {
            command.args(["--keep-alive", &KEEP_ALIVE_SECONDS.to_string()]);
        }
        if flags.workers_flag {
            command.args(["--workers", &flags.workers.to_string()]);
        }
        command.args(&flags.extra);
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", binary.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let kept = Arc::clone(&tail);
        // Reads the log to the end, so the child never blocks on a full pipe.
        thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    if let Some(tx) = tx.take() {
                        let address = rest.split('/').next().unwrap_or("").to_owned();
                        let _ = tx.send((address, Instant::now()));
                    }
                }
                let mut tail = kept.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == 20 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        let (address, at) = match rx.recv_timeout(START_TIMEOUT) {
            Ok(found) => found,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                return Err(format!(
                    "the server did not say where it listens; its log ends with:\n{}",
                    Vec::from(tail.clone()).join("\n")
                ));
            }
        };
        let listening = at - spawned;
        let mut ours = Ours {
            child,
            base: Base::parse(&format!("http://{address}/api/v1"))?,
            listening,
            first_answer: Duration::ZERO,
        };
        let count = Request::get(&ours.base, "/metrics/count");
        let mut client = Client::new(ours.base.addr);
        loop {
            match client.call(&count.raw) {
                Ok(response) if response.status == 200 => break,
                _ if spawned.elapsed() > START_TIMEOUT => {
                    return Err("the server does not answer /metrics/count".into())
                }
                _ => thread::sleep(Duration::from_millis(1)),
            }
        }
        ours.first_answer = spawned.elapsed();
        Ok(ours)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn rss_kb(&self) -> Option<u64> {
        proc_status_kb(self.pid(), "VmRSS")
    }

    pub(crate) fn hwm_kb(&self) -> Option<u64> {
        proc_status_kb(self.pid(), "VmHWM")
    }

    /// SIGTERM (the server's graceful shutdown), then SIGKILL if it is not gone in 30 s.
    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!("warning: the server ignored SIGTERM for 30 s; killing it");
    }
}

impl Drop for Ours {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `kB` field of `/proc/PID/status`.
pub(crate) fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Samples a process's VmRSS every 20 ms until stopped; the highest sample.
pub(crate) struct RssWatch {
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) thread: thread::JoinHandle<u64>,
}

impl RssWatch {
    pub(crate) fn start(pid: u32) -> RssWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut peak = 0;
            while !stopped.load(Ordering::Relaxed) {
                peak = peak.max(proc_status_kb(pid, "VmRSS").unwrap_or(0));
                thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        RssWatch { stop, thread }
    }

    pub(crate) fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

pub(crate) fn mb(kb: Option<u64>) -> String {
    kb.map_or_else(|| "?".into(), |kb| format!("{:.1} MB", kb as f64 / 1024.0))
}

pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
