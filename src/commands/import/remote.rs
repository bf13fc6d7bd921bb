//! `import --server`: sends a checked file to a running server through its API — contexts and
//! sessions one request each, metrics [`BATCH`] per `POST /metrics/batch` — skipping what the
//! server already holds.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use super::progress::Progress;
use super::reader::{Source, Table, CONTEXTS, SESSIONS};
use super::{Counts, Failure, MetricKey};
use crate::commands::http::{segment, Client, HttpError, ServerUrl};
use crate::commands::text::counted;
use crate::error::ApiError;
use crate::models::{Context, Session};
use crate::tls::CaCert;

/// Metrics asked for per page when reading what a server already holds.
const PAGE: u64 = 10_000;

/// Metrics sent per `POST /metrics/batch` (about half a megabyte: well under the server's batch
/// limit, and a failed request loses little).
const BATCH: usize = 1_000;

/// How long one request to the server may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A running monitor-server, reached through its API.
pub(super) struct Remote {
    client: Client,
}

impl Remote {
    pub(super) fn new(
        server: &ServerUrl,
        token: Option<&str>,
        ca: Option<&CaCert>,
    ) -> Result<Self, HttpError> {
        Ok(Remote {
            client: Client::new(server, token, ca, TIMEOUT)?,
        })
    }

    /// GETs `path`: its JSON body, or `None` for 204 (an empty listing).
    fn get(&self, path: &str) -> Result<Option<Value>, Failure> {
        self.client
            .get(path, &[])
            .map_err(|err| Failure::Target(err.to_string(), 1))
    }

    /// POSTs `body` to `path`; anything but 201 is an error.
    fn post(&self, path: &str, body: &Value) -> Result<(), HttpError> {
        self.client
            .post(path, "application/json", &body.to_string())
    }

    /// Stores `metrics`: in one `POST /metrics/batch`, all or none, or — when `batches` is false,
    /// or the server has no such route (an older server answers 404, which sets `batches` to
    /// false) — one `POST /metrics/` each. On error, how many of them were stored before it.
    fn post_metrics(&self, metrics: &[Value], batches: &mut bool) -> Result<(), (u64, HttpError)> {
        if *batches {
            let mut body = String::new();
            for metric in metrics {
                body.push_str(&metric.to_string());
                body.push('\n');
            }
            match self
                .client
                .post("/metrics/batch", "application/x-ndjson", &body)
            {
                Ok(()) => return Ok(()),
                Err(err) if err.status() == Some(404) => *batches = false,
                Err(err) => return Err((0, err)),
            }
        }
        for (stored, metric) in metrics.iter().enumerate() {
            self.post("/metrics/", metric)
                .map_err(|err| (stored as u64, err))?;
        }
        Ok(())
    }

    /// Every record of a listing (all its pages), an empty one answering 204.
    fn list(&self, path: &str, key: &str) -> Result<Vec<Value>, Failure> {
        let mut records = Vec::new();
        for page in 1.. {
            let separator = if path.contains('?') { '&' } else { '?' };
            let Some(mut body) = self.get(&format!("{path}{separator}page={page}"))? else {
                break;
            };
            match body[key].take() {
                Value::Array(rows) => records.extend(rows),
                _ => {
                    return Err(Failure::Target(
                        format!(
                            "GET {}{path}: the answer lists no `{key}`",
                            self.client.server()
                        ),
                        1,
                    ))
                }
            }
            if !body["next_url"].is_string() {
                break;
            }
        }
        Ok(records)
    }

    /// The stored record with exactly this hash, among those a prefix listing returns.
    fn find(&self, collection: &str, key: &str, h: &str) -> Result<Option<Value>, Failure> {
        let path = format!("/{collection}/{}?per_page={PAGE}", segment(h));
        let records = self.list(&path, collection)?;
        Ok(records.into_iter().find(|record| record[key] == h))
    }
}

/// Sends a checked file to a server: the same records and the same rule as `--db`, through the
/// API, one request per context and session and one per [`BATCH`] metrics. There is no
/// transaction across requests, so this is as close to all or nothing as a client can get: the
/// whole file is checked before the first request, and so are the contexts and sessions the
/// server already holds (a conflict refuses the file before anything is sent). A failure after
/// that — the server going away, a full disk — leaves part of the file stored; running the same
/// import again sends only the rest.
pub(super) fn send(
    remote: &Remote,
    source: &Source,
    progress: &mut Progress,
) -> Result<Counts, Failure> {
    let mut counts = Counts::default();
    let conflict = |table: &Table, rowid: i64, record: &str, column: &str, h: &str| {
        Failure::Refused(format!(
            "{} rowid {rowid}: the server already holds {record} with {column} {h} and \
             different content",
            table.name
        ))
    };
    let unreadable = |what: &str, err: ApiError| {
        Failure::Target(
            format!("the server lists {what} this binary cannot read: {err}"),
            1,
        )
    };

    let mut new_contexts = Vec::new();
    for (rowid, context) in &source.contexts {
        match remote.find("contexts", "h", &context.h)? {
            None => new_contexts.push(context),
            Some(stored) => {
                let stored = serde_json::from_value(stored)
                    .map_err(|err| ApiError::bad_request(err.to_string()))
                    .and_then(Context::from_json)
                    .map_err(|err| unreadable("a context", err))?;
                if stored != *context {
                    return Err(conflict(
                        &CONTEXTS,
                        *rowid,
                        "a context",
                        "ENV_H",
                        &context.h,
                    ));
                }
                counts.contexts.skipped += 1;
            }
        }
    }
    let mut new_sessions = Vec::new();
    for (rowid, session) in &source.sessions {
        match remote.find("sessions", "session_h", &session.session_h)? {
            None => new_sessions.push((rowid, session)),
            Some(stored) => {
                let stored = serde_json::from_value(stored)
                    .map_err(|err| ApiError::bad_request(err.to_string()))
                    .and_then(Session::from_json)
                    .map_err(|err| unreadable("a session", err))?;
                if stored != *session {
                    let h = &session.session_h;
                    return Err(conflict(&SESSIONS, *rowid, "a session", "SESSION_H", h));
                }
                counts.sessions.skipped += 1;
            }
        }
    }
    let mut stored = HashSet::new();
    for session_h in &source.metric_sessions {
        let path = format!("/sessions/{}/metrics", segment(session_h));
        let count = remote.get(&format!("{path}/count"))?;
        if count
            .as_ref()
            .and_then(|c| c["count"].as_u64())
            .unwrap_or(0)
            == 0
        {
            continue;
        }
        for m in remote.list(&format!("{path}?per_page={PAGE}"), "metrics")? {
            let text = |field: &str| m[field].as_str().unwrap_or_default().to_owned();
            let parts = [
                "session_h",
                "context_h",
                "item_start_time",
                "item_path",
                "item_variant",
                "kind",
            ]
            .map(text);
            stored.insert(MetricKey::new(parts.each_ref().map(String::as_str)));
        }
    }

    // Sending starts here; from now on a failure may leave part of the file stored.
    let partial = |counts: &Counts, err: HttpError| {
        let sent = counts.contexts.added + counts.sessions.added + counts.metrics.added;
        let message = err.to_string();
        if err.status() == Some(409) {
            return Failure::Refused(message);
        }
        let message = message.trim_end_matches('.');
        Failure::Target(
            if sent == 0 {
                format!("{message}; nothing of this file was stored")
            } else {
                format!(
                    "{message}; {} of this file had been stored before, and running the same \
                     import again sends only the rest",
                    counted(sent, "record")
                )
            },
            1,
        )
    };
    for context in new_contexts {
        let body = serde_json::to_value(context).unwrap_or(Value::Null);
        remote
            .post("/contexts/", &body)
            .map_err(|err| partial(&counts, err))?;
        counts.contexts.added += 1;
    }
    for (_, session) in new_sessions {
        let body = json!({
            "session_h": session.session_h,
            "run_date": session.run_date,
            "scm_ref": session.scm_ref,
            "description": session.description,
        });
        remote
            .post("/sessions/", &body)
            .map_err(|err| partial(&counts, err))?;
        counts.sessions.added += 1;
    }
    let mut done = 0;
    let mut batch = Vec::with_capacity(BATCH);
    let mut batches = true;
    let mut flush = |batch: &mut Vec<Value>, counts: &mut Counts| {
        let sent = remote.post_metrics(batch, &mut batches);
        let stored = match &sent {
            Ok(()) => batch.len() as u64,
            Err((stored, _)) => *stored,
        };
        counts.metrics.added += stored;
        batch.clear();
        sent.map_err(|(_, err)| partial(counts, err))
    };
    source.for_each_metric(|metric| {
        if stored.contains(&MetricKey::of(&metric)) {
            counts.metrics.count(false);
        } else {
            batch.push(serde_json::to_value(&metric).unwrap_or(Value::Null));
            if batch.len() == BATCH {
                flush(&mut batch, &mut counts)?;
            }
        }
        done += 1;
        progress.show("sending", done, source.metrics);
        Ok(())
    })?;
    if !batch.is_empty() {
        flush(&mut batch, &mut counts)?;
    }
    Ok(counts)
}
