//! The one HTTP client of the commands that talk to a running server (`compare`, `import
//! --server`): it parses the server's URL, sets the timeout, sends the token and words every
//! failure the same way.
//!
//! `https://` servers are reached with rustls ([`crate::tls`]), trusting the system's certificate
//! authorities, `SSL_CERT_FILE`, or the one `--ca-cert` names.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::tls::{self, CaCert};

/// A server's API base, as given on the command line: its root (`http://HOST:PORT`,
/// `https://HOST`, or a path below which a proxy serves it) with or without `/api/v1`, the same
/// as the plugin is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// `http[s]://HOST:PORT/api/v1`, without a trailing slash.
    api: String,
}

impl ServerUrl {
    /// Checks `text` for `--server`; the error is the reason alone, since clap names the flag
    /// and the value.
    pub fn parse(text: &str) -> Result<ServerUrl, String> {
        let url = text.trim();
        let Some((scheme, rest)) = ["http://", "https://"]
            .into_iter()
            .find_map(|scheme| Some((scheme, url.strip_prefix(scheme)?)))
        else {
            return Err("must be an http:// or https:// URL, such as http://127.0.0.1:8050".into());
        };
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if host.is_empty() {
            return Err("names no host; give one, such as http://127.0.0.1:8050".into());
        }
        let path = path.trim_end_matches('/');
        let path = path.strip_suffix("/api/v1").unwrap_or(path);
        Ok(ServerUrl {
            api: format!("{scheme}{host}{path}/api/v1"),
        })
    }

    /// `http[s]://HOST:PORT/api/v1`, without a trailing slash.
    pub fn api(&self) -> &str {
        &self.api
    }

    /// Whether the server is reached over HTTPS.
    pub fn is_https(&self) -> bool {
        self.api.starts_with("https://")
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
    /// of the answer. `token` goes with every request as `Authorization: Bearer`. An `https://`
    /// server must present a certificate signed by `ca` when given, else by an authority the
    /// system trusts (or `SSL_CERT_FILE` holds).
    pub fn new(
        server: &ServerUrl,
        token: Option<&str>,
        ca: Option<&CaCert>,
        timeout: Duration,
    ) -> Result<Client, HttpError> {
        let mut agent = ureq::AgentBuilder::new().timeout(timeout);
        if server.is_https() {
            let config = tls::client_config(ca).map_err(|message| HttpError {
                status: None,
                message,
            })?;
            agent = agent.tls_config(std::sync::Arc::new(config));
        }
        Ok(Client {
            agent: agent.build(),
            server: server.clone(),
            token: token.map(str::to_owned),
        })
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
                message: match tls::untrusted_certificate(&transport) {
                    Some(why) => format!("cannot reach {}: {why}", self.server.api),
                    None => format!("cannot reach the server: {transport}"),
                },
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
    fn only_an_http_or_https_url_with_a_host_is_accepted() {
        let https = ServerUrl::parse("https://h/api/v1/").unwrap();
        assert_eq!(https.api(), "https://h/api/v1");
        assert!(https.is_https());
        assert!(!ServerUrl::parse("http://h").unwrap().is_https());
        for bad in [
            "h:8050",
            "ftp://h",
            "http://",
            "https://",
            "http:///api/v1",
            "",
        ] {
            assert!(ServerUrl::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(segment("abc-1.2_~"), "abc-1.2_~");
        assert_eq!(segment("a/b?c d%"), "a%2Fb%3Fc%20d%25");
        assert_eq!(segment("é"), "%C3%A9");
    }
}
