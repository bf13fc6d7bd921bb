//! A batch of metrics sent as newline-delimited JSON: one metric per line, all or nothing, a
//! fault reported with its line.

use crate::error::ApiError;
use crate::models::json::JsonObject;
use crate::models::metric::Metric;

/// Parses a batch of metrics sent as newline-delimited JSON (`application/x-ndjson`): one
/// metric object per line, each read exactly as a single POST's body ([`Metric::from_json`]).
/// Lines that are empty or hold only whitespace are skipped (a trailing newline, a blank line
/// between groups); a `\r` before the newline is whitespace too.
///
/// All or nothing: the first line at fault makes the whole batch a 400 whose message starts with
/// `line N: ` (lines numbered from 1, blank ones included, as an editor shows them; `body`'s first
/// line is `first_line`, so that a batch may be parsed in pieces) and whose `errors` holds
/// `"line": "N"` beside that line's own field errors.
pub fn metrics_from_ndjson(body: &[u8], first_line: usize) -> Result<Vec<Metric>, ApiError> {
    let lines = line_ends(body) + 1;
    let mut metrics = Vec::with_capacity(lines);
    for (i, line) in body.split(|&byte| byte == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let metric = JsonObject::from_slice(line)
            .and_then(Metric::from_json)
            .map_err(|err| at_line(first_line + i, err))?;
        metrics.push(metric);
    }
    Ok(metrics)
}

/// The metrics of a batch ([`metrics_from_ndjson`]) a few lines at a time, in the order of the
/// body: what lets a batch of any size be stored with the records of only a few pieces in
/// memory at once. A piece at fault is an error naming its line, and ends the iteration.
pub struct NdjsonPieces<'a> {
    /// What is left to parse.
    rest: &'a [u8],
    /// The number of `rest`'s first line.
    line: usize,
    lines_per_piece: usize,
}

impl<'a> NdjsonPieces<'a> {
    /// The pieces of `body`, each of at most `lines_per_piece` lines (at least one).
    pub fn new(body: &'a [u8], lines_per_piece: usize) -> Self {
        NdjsonPieces {
            rest: body,
            line: 1,
            lines_per_piece: lines_per_piece.max(1),
        }
    }
}

impl Iterator for NdjsonPieces<'_> {
    type Item = Result<Vec<Metric>, ApiError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        // The end of the piece: just past its last line's newline, or the end of the body.
        let end = self
            .rest
            .iter()
            .enumerate()
            .filter(|&(_, &byte)| byte == b'\n')
            .nth(self.lines_per_piece - 1)
            .map_or(self.rest.len(), |(at, _)| at + 1);
        let (piece, rest) = self.rest.split_at(end);
        let parsed = metrics_from_ndjson(piece, self.line);
        self.line += self.lines_per_piece;
        // Nothing after a fault: the batch is refused at its first one.
        self.rest = if parsed.is_ok() { rest } else { &[] };
        Some(parsed)
    }
}

/// How many lines of newline-delimited `text` end in it (its `\n` bytes).
pub fn line_ends(text: &[u8]) -> usize {
    text.iter().filter(|&&byte| byte == b'\n').count()
}

/// `err`, found on line `number` of a batch: its message prefixed with the line, and the line
/// among its `errors`.
fn at_line(number: usize, err: ApiError) -> ApiError {
    match err {
        ApiError::BadRequest {
            message,
            mut errors,
        } => {
            // A line is one metric, so the single POST's "request body" is the line here.
            let message = message.replacen("The request body", "The line", 1);
            errors.insert("line".into(), number.to_string());
            ApiError::BadRequest {
                message: format!("line {number}: {message}"),
                errors,
            }
        }
        other => other,
    }
}
