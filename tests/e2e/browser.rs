//! A headless Chromium driven through `chromedriver` over WebDriver's HTTP protocol, with
//! `ureq` and `serde_json`: enough to open a page, wait for what it shows, click, type and take
//! screenshots, as a person would.
//!
//! Chromium and chromedriver are prerequisites (Debian: `apt-get install chromium
//! chromium-driver`): when missing, [`Browser::start`] fails the test on CI (`CI=true`) and
//! prints a loud `SKIPPED:` line elsewhere.
#![allow(dead_code)] // each test uses its own part

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::common::on_ci;

/// The window every screenshot is taken at, so they look the same from run to run.
pub const WINDOW: (u32, u32) = (1280, 900);

/// How long a condition may take to hold before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

const DRIVER_START: Duration = Duration::from_secs(30);
/// The W3C name of an element reference in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver with one browser session; both end on drop.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

/// The first of `names` found on the PATH.
fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium, or returns `None` after printing `SKIPPED:`
    /// when they are not installed (a failure on CI).
    pub fn start(test: &str) -> Option<Browser> {
        let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"]);
        let driver = find_program(&["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let reason = "chromium and chromedriver must be on the PATH \
                          (Debian: apt-get install chromium chromium-driver)";
            if on_ci() {
                panic!("{test}: the browser is a prerequisite on CI: {reason}");
            }
            // Straight to stderr: the harness hides `eprintln!` of a test that passes.
            let _ = writeln!(
                std::io::stderr(),
                "\n=======================================================================\n\
                 SKIPPED: {test}: {reason}\n(with CI=true this is a failure)\n\
                 ======================================================================="
            );
            return None;
        };
        Some(Self::launch(&chromium, &driver))
    }

    fn launch(chromium: &Path, driver: &Path) -> Browser {
        let port = crate::common::free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", driver.display()));
        let profile = tempfile::tempdir().expect("a temp dir for the browser profile");
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build();
        let mut browser = Browser {
            driver: child,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            agent,
            _profile: profile,
        };
        browser.wait_for_driver();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ])
        .collect::<Vec<_>>();
        let answer = browser.send(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium.to_string_lossy(), "args": args},
                "goog:loggingPrefs": {"browser": "ALL"},
            }}})),
        );
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {answer}"))
            .to_owned();
        browser
    }

    fn wait_for_driver(&mut self) {
        let deadline = Instant::now() + DRIVER_START;
        loop {
            let ready = self
                .agent
                .get(&format!("{}/status", self.base))
                .timeout(Duration::from_secs(2))
                .call()
                .ok()
                .and_then(|r| r.into_string().ok())
                .and_then(|body| serde_json::from_str::<Value>(&body).ok())
                .is_some_and(|v| v["value"]["ready"] == json!(true));
            if ready {
                return;
            }
            if let Ok(Some(status)) = self.driver.try_wait() {
                panic!("chromedriver exited ({status}) before it was ready");
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver was not ready within {DRIVER_START:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// One WebDriver command; its `value`. A WebDriver error fails the test with its message.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let request = self.agent.request(method, &url);
        let outcome = match body {
            Some(body) => request
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
            None => request.call(),
        };
        let response = match outcome {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(err) => panic!("{method} {url}: {err}"),
        };
        let status = response.status();
        let answer: Value = response
            .into_string()
            .map_err(|err| err.to_string())
            .and_then(|body| serde_json::from_str(&body).map_err(|err| err.to_string()))
            .unwrap_or_else(|err| panic!("{method} {url}: not JSON: {err}"));
        assert!(
            status < 400,
            "{method} {path} failed ({status}): {}",
            answer["value"]
        );
        answer["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url` and waits until the page has loaded (not until its script has drawn).
    pub fn goto(&self, url: &str) {
        self.send(
            "POST",
            &self.session_path("/url"),
            Some(json!({"url": url})),
        );
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; what it returns.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.send(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Polls `script` until it returns something other than null, false, 0 or ""; returns that.
    /// Fails after [`WAIT`] with `what` and the page's text.
    pub fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.execute(script, args.clone());
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!(0)
                && value != json!("");
            if truthy {
                return value;
            }
            if Instant::now() >= deadline {
                let text = self.execute("return document.body.innerText", json!([]));
                panic!(
                    "waited {WAIT:?} for {what}; last value {value}; the page shows:\n{}",
                    text.as_str().unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// Opens the dashboard at `#hash` of `origin` and waits for the view to finish drawing.
    /// The view must end "ready" (not in an error); returns the page's text.
    /// The page is loaded afresh each time, as when a link is opened in a new tab.
    pub fn open_view(&self, origin: &str, hash: &str) -> String {
        self.load(origin, hash);
        self.wait_ready(hash)
    }

    /// Loads the dashboard afresh at `#hash`: from a blank page, so that the same address
    /// opened twice is loaded twice.
    fn load(&self, origin: &str, hash: &str) {
        self.goto("about:blank");
        self.goto(&format!("{origin}/#{hash}"));
    }

    /// Opens the view at `#hash`, which must end in an error; returns the error shown.
    pub fn open_failing_view(&self, origin: &str, hash: &str) -> String {
        self.load(origin, hash);
        let state = self.wait_drawn(hash);
        assert_eq!(state, json!("error"), "the view #{hash} did not fail");
        self.text("[role=alert]")
    }

    /// Waits until the view at `#hash` is drawn and returns the page's text.
    pub fn wait_ready(&self, hash: &str) -> String {
        let state = self.wait_drawn(hash);
        let text = self.text("body");
        assert_eq!(
            state,
            json!("ready"),
            "the view #{hash} ended in an error:\n{text}"
        );
        text
    }

    /// Waits until the view at `#hash` is drawn; its final state, "ready" or "error".
    fn wait_drawn(&self, hash: &str) -> Value {
        self.wait_for(
            &format!("the view #{hash} to finish drawing"),
            // `data-hash` is set with `data-state` when a view starts drawing, so a view
            // finished before the address changed does not count.
            "const body = document.body; \
             return body.dataset.hash === arguments[0] && body.dataset.state !== 'loading' \
                && body.dataset.state",
            json!([format!("#{hash}")]),
        )
    }

    /// The visible text of the first element matching `css` (the text content of an SVG one,
    /// which has no `innerText`).
    pub fn text(&self, css: &str) -> String {
        self.execute(
            "const e = document.querySelector(arguments[0]); \
             return e ? (e.innerText ?? e.textContent) : null",
            json!([css]),
        )
        .as_str()
        .unwrap_or_else(|| panic!("no element matches {css}"))
        .to_owned()
    }

    /// The visible texts of every element matching `css`.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let value = self.execute(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText)",
            json!([css]),
        );
        serde_json::from_value(value).expect("a list of texts")
    }

    /// How many elements match `css`.
    pub fn count(&self, css: &str) -> usize {
        self.execute(
            "return document.querySelectorAll(arguments[0]).length",
            json!([css]),
        )
        .as_u64()
        .unwrap_or_default() as usize
    }

    fn element(&self, css: &str) -> String {
        let found = self.send(
            "POST",
            &self.session_path("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        found[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no element matches {css}: {found}"))
            .to_owned()
    }

    /// Clicks the first element matching `css`, as a mouse would.
    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.send(
            "POST",
            &self.session_path(&format!("/element/{id}/click")),
            Some(json!({})),
        );
    }

    /// Types `text` into the first element matching `css`.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.send(
            "POST",
            &self.session_path(&format!("/element/{id}/value")),
            Some(json!({"text": text})),
        );
    }

    /// Chooses the option whose value is `value` in the `<select>` matching `css`, once the
    /// menu holds it (menus fill in as their lists arrive).
    pub fn choose(&self, css: &str, value: &str) {
        let option = format!("{css} option[value=\"{value}\"]");
        self.wait_for(
            &format!("the menu {css} to offer {value}"),
            "return document.querySelector(arguments[0]) !== null",
            json!([option]),
        );
        self.click(&option);
    }

    /// Saves a PNG of the window to `path`.
    pub fn screenshot(&self, path: &Path) {
        let encoded = self.send("GET", &self.session_path("/screenshot"), None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .expect("the screenshot is base64");
        assert!(bytes.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        std::fs::write(path, bytes)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
    }

    /// The messages the page wrote to the console at level `SEVERE` (errors, refused resources,
    /// Content-Security-Policy violations) since the last call.
    pub fn console_errors(&self) -> Vec<String> {
        let entries = self.send(
            "POST",
            &self.session_path("/se/log"),
            Some(json!({"type": "browser"})),
        );
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == json!("SEVERE"))
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Resizes the window (the screenshot's size).
    pub fn resize(&self, width: u32, height: u32) {
        self.send(
            "POST",
            &self.session_path("/window/rect"),
            Some(json!({"width": width, "height": height})),
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(&format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
