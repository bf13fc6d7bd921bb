//! HTTPS from the command line: `serve --tls-cert --tls-key` refuses a bad certificate or a lone
//! flag in one line before touching the database, and `compare` reaches an HTTPS server through
//! `--ca-cert` or `SSL_CERT_FILE`, refusing in one line a server whose certificate an authority
//! it does not trust signed. (pytest-monitor uploading over HTTPS is in the e2e tests.)

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::common::{monitor_server, run_bounded, Server, TestCerts};

/// `monitor-server serve` on a fresh database with `args`, expected to exit at once.
fn serve_refused(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut command = monitor_server();
    command
        .env_remove("RUST_LOG")
        .args(["serve", "--bind", "127.0.0.1:0", "--db"])
        .arg(dir.join("monitor.db"))
        .args(args);
    let (status, log) =
        run_bounded(command, Duration::from_secs(30)).unwrap_or_else(|err| panic!("{err}"));
    (status.code(), log)
}

fn assert_refused_in_one_line(dir: &Path, args: &[&str], expected: &str) {
    let (code, log) = serve_refused(dir, args);
    assert_eq!(code, Some(2), "{log}");
    assert_eq!(log.trim_end().lines().count(), 1, "{log}");
    assert!(log.contains(expected), "{expected:?} not in {log}");
    assert!(
        !dir.join("monitor.db").exists(),
        "a refused start-up created the database"
    );
}

#[test]
fn a_bad_certificate_or_key_stops_start_up_in_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::make(dir.path());
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    let text = |path: &Path| path.to_str().unwrap().to_owned();

    assert_refused_in_one_line(
        dir.path(),
        &[
            "--tls-cert",
            &text(&garbage),
            "--tls-key",
            &text(&certs.key),
        ],
        &format!(
            "the TLS certificate {} holds no PEM certificate",
            text(&garbage)
        ),
    );
    assert_refused_in_one_line(
        dir.path(),
        &[
            "--tls-cert",
            &text(&certs.cert),
            "--tls-key",
            &text(&garbage),
        ],
        &format!("the TLS key {} holds no PEM private key", text(&garbage)),
    );
    let missing = dir.path().join("missing.pem");
    assert_refused_in_one_line(
        dir.path(),
        &[
            "--tls-cert",
            &text(&missing),
            "--tls-key",
            &text(&certs.key),
        ],
        &format!("cannot read the TLS certificate {}", text(&missing)),
    );
    // The CA's certificate with the server's key: they do not belong together.
    assert_refused_in_one_line(
        dir.path(),
        &[
            "--tls-cert",
            &text(&certs.ca),
            "--tls-key",
            &text(&certs.key),
        ],
        "cannot be used together",
    );
}

#[test]
fn one_tls_flag_without_the_other_stops_start_up_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::make(dir.path());

    assert_refused_in_one_line(
        dir.path(),
        &["--tls-cert", certs.cert.to_str().unwrap()],
        "--tls-cert needs --tls-key",
    );
    assert_refused_in_one_line(
        dir.path(),
        &["--tls-key", certs.key.to_str().unwrap()],
        "--tls-key needs --tls-cert",
    );
}

/// `monitor-server compare` against `server` for two sides no session matches, with `extra`.
fn compare(server: &Server, extra: &[&str], ssl_cert_file: Option<&Path>) -> Output {
    let mut command = monitor_server();
    command
        .env_remove("RUST_LOG")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .args(["compare", "--server", server.address()])
        .args(["--baseline", "build:main/1", "--candidate", "build:main/2"])
        .args(extra);
    if let Some(file) = ssl_cert_file {
        command.env("SSL_CERT_FILE", file);
    }
    command.output().expect("cannot run monitor-server compare")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn compare_reaches_an_https_server_through_its_ca_and_refuses_one_it_does_not_trust() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::make(dir.path());
    let server = Server::serve(
        &dir.path().join("monitor.db"),
        &[
            "--tls-cert",
            certs.cert.to_str().unwrap(),
            "--tls-key",
            certs.key.to_str().unwrap(),
        ],
    );
    assert!(
        server.address().starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );

    let with_ca = compare(&server, &["--ca-cert", certs.ca.to_str().unwrap()], None);
    let with_env = compare(&server, &[], Some(&certs.ca));
    let wrong = compare(
        &server,
        &["--ca-cert", certs.other_ca.to_str().unwrap()],
        None,
    );

    // Reached: the server answers that no session matches (the database is empty).
    for reached in [&with_ca, &with_env] {
        assert_eq!(reached.status.code(), Some(2), "{}", stderr(reached));
        assert!(stderr(reached).contains("404"), "{}", stderr(reached));
    }
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));
    let refusal = stderr(&wrong);
    assert_eq!(refusal.trim_end().lines().count(), 1, "{refusal}");
    assert!(
        refusal.contains("TLS certificate is not trusted") && refusal.contains("--ca-cert"),
        "{refusal}"
    );
    assert!(
        server.stderr().contains("listening on https://"),
        "{}",
        server.stderr()
    );
}

#[test]
fn a_ca_cert_file_that_is_not_pem_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "nope\n").unwrap();

    let output = monitor_server()
        .args(["compare", "--server", "https://127.0.0.1:1"])
        .args(["--baseline", "build:main/1", "--candidate", "build:main/2"])
        .arg("--ca-cert")
        .arg(&garbage)
        .output()
        .expect("cannot run monitor-server compare");

    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("holds no PEM certificate"),
        "{}",
        stderr(&output)
    );
}
