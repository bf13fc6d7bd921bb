//! The one HTTP client of the commands that talk to a running server (`compare`, `import
//! --server`): it parses the server's URL, sets the timeout, sends the token and words every
//! failure the same way.
//!
//! Plain HTTP only, for now: ureq is built without TLS, so an `https://` URL is refused when the
//! command line is parsed rather than when the first request fails. Supporting it means
//! accepting it in [`ServerUrl::parse`] and giving the agent a TLS connector in [`Client::new`];
//! nothing else here or in the commands changes.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// A server's API base, as given on the command line: its root (`http://HOST:PORT`, or a path
/// below which a proxy serves it) with or without `/api/v1`, the same as the plugin is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// `http://HOST:PORT/api/v1`, without a trailing slash.
    api: String,
}

impl ServerUrl {
    /// Checks `text` for `--server`; the error is the reason alone, since clap names the flag
    /// and the value.
    pub fn parse(text: &str) -> Result<ServerUrl, String> {
        let url = text.trim();
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(if url.starts_with("https://") {
                "this client speaks plain HTTP only (HTTPS is not supported yet); reach the \
                 server on its own http:// address, such as http://127.0.0.1:8050"
                    .into()
            } else {
                "must be an http:// URL, such as http://127.0.0.1:8050".into()
            });
        };
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if host.is_empty() {
            return Err("names no host; give one, such as http://127.0.0.1:8050".into());
        }
        let path = path.trim_end_matches('/');
        let path = path.strip_suffix("/api/v1").unwrap_or(path);
        Ok(ServerUrl {
            api: format!("http://{host}{path}/api/v1"),
        })
    }

    /// `http://HOST:PORT/api/v1`, without a trailing slash.
    pub fn api(&self) -> &str {
        &self.api
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.api)
    }
}

/// Why a request failed, as one line for stderr, with the status when the server answered.
#[derive(Debug)]
pub struct HttpError {
    status: Option<u16>,
    message: String,
}

impl HttpError {
    /// The HTTP status the server answered, or `None` when it could not be reached or its
    /// answer could not be read.
    pub fn status(&self) -> Option<u16> {
        self.status
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A running monitor-server, reached through one agent: every request has the same timeout and
/// carries the token.
pub struct Client {
    agent: ureq::Agent,
    server: ServerUrl,
    token: Option<String>,
}

impl Client {
    /// A client for `server`; each request may take `timeout`, from connecting to the last byte
    /// of the answer. `token` goes with every request as `Authorization: Bearer`.
    pub fn new(server: &ServerUrl, token: Option<&str>, timeout: Duration) -> Client {
        Client {
            agent: ureq::AgentBuilder::new().timeout(timeout).build(),
            server: server.clone(),
            token: token.map(str::to_owned),
        }
    }

    /// The server this client talks to.
    pub fn server(&self) -> &ServerUrl {
        &self.server
    }

    /// GETs `path` (below the API base, possibly with a query) with `query` added: the JSON
    /// answer, or `None` for 204 No Content (an empty listing).
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Option<Value>, HttpError> {
        let mut request = self.request("GET", path);
        for (name, value) in query {
            request = request.query(name, value);
        }
        let response = request
            .call()
            .map_err(|err| self.failure("GET", path, err))?;
        if response.status() == 204 {
            return Ok(None);
        }
        serde_json::from_reader(response.into_reader())
            .map(Some)
            .map_err(|err| HttpError {
                status: None,
                message: format!("GET {}: the answer is not JSON ({err})", self.url(path)),
            })
    }

    /// POSTs `body`, of type `content_type`, to `path`; anything but 201 Created is an error.
    pub fn post(&self, path: &str, content_type: &str, body: &str) -> Result<(), HttpError> {
        let response = self
            .request("POST", path)
            .set("Content-Type", content_type)
            .send_string(body)
            .map_err(|err| self.failure("POST", path, err))?;
        match response.status() {
            201 => Ok(()),
            status => Err(HttpError {
                status: Some(status),
                message: format!("POST {} answered {status}, not 201", self.url(path)),
            }),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.api)
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let request = self.agent.request(method, &self.url(path));
        match &self.token {
            Some(token) => request.set("Authorization", &format!("Bearer {token}")),
            None => request,
        }
    }

    /// One line for a failed request: the status and the server's `message`, or why the server
    /// could not be reached (ureq's account names the URL).
    fn failure(&self, method: &str, path: &str, err: ureq::Error) -> HttpError {
        match err {
            ureq::Error::Status(status, response) => {
                let explained = response
                    .into_string()
                    .ok()
                    .and_then(|body| serde_json::from_str::<Value>(&body).ok())
                    .and_then(|body| body["message"].as_str().map(str::to_owned));
                let url = self.url(path);
                HttpError {
                    status: Some(status),
                    message: match explained {
                        Some(message) => format!("{method} {url} answered {status}: {message}"),
                        None => format!("{method} {url} answered {status}"),
                    },
                }
            }
            ureq::Error::Transport(transport) => HttpError {
                status: None,
                message: format!("cannot reach the server: {transport}"),
            },
        }
    }
}

/// `text` as one path segment: everything but RFC 3986's unreserved characters percent-encoded.
pub fn segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_may_be_given_with_or_without_the_api_base() {
        for url in [
            "http://h:1",
            "http://h:1/",
            " http://h:1/api/v1",
            "http://h:1/api/v1/",
        ] {
            assert_eq!(ServerUrl::parse(url).unwrap().api(), "http://h:1/api/v1");
        }
        assert_eq!(
            ServerUrl::parse("http://h/monitor").unwrap().api(),
            "http://h/monitor/api/v1"
        );
    }

    #[test]
    fn only_a_plain_http_url_with_a_host_is_accepted() {
        assert!(ServerUrl::parse("https://h")
            .unwrap_err()
            .contains("plain HTTP only"));
        for bad in ["h:8050", "ftp://h", "http://", "http:///api/v1", ""] {
            assert!(ServerUrl::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn compare_and_import_refuse_an_https_server_alike_when_the_command_line_is_parsed() {
        use clap::Parser;

        let refusal = |args: &[&str]| match crate::commands::cli::Cli::try_parse_from(args) {
            Ok(_) => panic!("{args:?} was accepted"),
            Err(err) => err.to_string(),
        };
        let compare = refusal(&[
            "monitor-server",
            "compare",
            "--server",
            "https://h:8050",
            "--baseline",
            "b",
            "--candidate",
            "c",
        ]);
        let import = refusal(&[
            "monitor-server",
            "import",
            "--server",
            "https://h:8050",
            "f.pymon",
        ]);
        let reason = ServerUrl::parse("https://h:8050").unwrap_err();
        assert!(compare.contains(&reason), "{compare}");
        assert!(import.contains(&reason), "{import}");
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(segment("abc-1.2_~"), "abc-1.2_~");
        assert_eq!(segment("a/b?c d%"), "a%2Fb%3Fc%20d%25");
        assert_eq!(segment("é"), "%C3%A9");
    }
}
