//! Requests to one server: its answers, and routes expanded into the URLs asked.

use std::fmt::Write as _;
use std::time::Duration;

use monitor_server::routes::Answer as Shape;
use serde_json::Value;

use crate::dataset::{param_values, ASKED_ELSEWHERE};

/// One server's answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    /// The parsed JSON body; `Null` for an empty body, a string describing any other body.
    pub(crate) body: Value,
}

pub(crate) struct Server {
    pub(crate) label: &'static str,
    pub(crate) base: String,
    pub(crate) agent: ureq::Agent,
}

/// A server that could not be reached: the run stops with exit code 2.
pub(crate) struct Unreachable(pub(crate) String);

impl Server {
    pub(crate) fn new(label: &'static str, base: &str) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .redirects(0)
            .build();
        Server {
            label,
            base: base.trim_end_matches('/').to_owned(),
            agent,
        }
    }

    pub(crate) fn get(&self, path: &str) -> Result<Reply, Unreachable> {
        self.reply(self.agent.get(&format!("{}{path}", self.base)).call())
    }

    pub(crate) fn post(&self, path: &str, body: &Value) -> Result<Reply, Unreachable> {
        let request = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("Content-Type", "application/json");
        self.reply(request.send_string(&body.to_string()))
    }

    pub(crate) fn reply(
        &self,
        result: Result<ureq::Response, ureq::Error>,
    ) -> Result<Reply, Unreachable> {
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(err)) => {
                return Err(Unreachable(format!(
                    "{} ({}): {err}",
                    self.label, self.base
                )))
            }
        };
        let status = response.status();
        let content_type = response.content_type().to_owned();
        let text = response
            .into_string()
            .map_err(|err| Unreachable(format!("{} ({}): {err}", self.label, self.base)))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| {
                Value::String(format!("<{} bytes of {content_type}>", text.len()))
            })
        };
        Ok(Reply {
            status,
            content_type,
            body,
        })
    }

    /// `(metrics, sessions, contexts)` counts, to tell an empty server from a loaded one.
    pub(crate) fn counts(&self) -> Result<[i64; 3], Unreachable> {
        let mut counts = [0; 3];
        for (slot, what) in counts.iter_mut().zip(["metrics", "sessions", "contexts"]) {
            let reply = self.get(&format!("/{what}/count"))?;
            *slot = reply.body["count"].as_i64().unwrap_or(-1);
        }
        Ok(counts)
    }
}

/// Percent-encodes a path segment or query value (everything but RFC 3986's unreserved set).
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn asked_elsewhere(path: &str) -> Option<(String, &'static str)> {
    ASKED_ELSEWHERE
        .iter()
        .find(|(ours, _, _)| *ours == path)
        .map(|(_, reference, id)| (reference.to_string(), *id))
}

/// The concrete paths of one route pattern: every combination of its parameters' values.
pub(crate) fn expand(route: &str, shape: Shape) -> Result<Vec<String>, String> {
    let mut paths = vec![String::new()];
    for segment in route.split('/').filter(|s| !s.is_empty()) {
        let values: Vec<String> = match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
        {
            Some(name) => {
                let values = param_values(route, name);
                if values.is_empty() {
                    return Err(format!("no probe value for path parameter `{name}`"));
                }
                values.into_iter().map(encode).collect()
            }
            None => vec![segment.to_owned()],
        };
        paths = paths
            .iter()
            .flat_map(|p| values.iter().map(move |v| format!("{p}/{v}")))
            .collect();
    }
    // the reference declares its collection roots with a trailing slash (and redirects without)
    if route.matches('/').count() == 1 && !matches!(shape, Shape::Document(_)) {
        for path in &mut paths {
            path.push('/');
        }
    }
    Ok(paths)
}

// ------------------------------------------------------------------------------------------
