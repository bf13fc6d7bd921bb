//! What a side of a comparison is: the specs that name one ([`SideSpec`]) and the sessions, and
//! runs, a spec resolves to in the store.

use std::collections::BTreeSet;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};

use crate::db::query::like_escape;
use crate::error::ApiError;

/// The forms a side can take, for messages and the document.
pub const SPEC_FORMS: &str = "session:<hash or unique prefix> (or the bare hexadecimal hash or \
     prefix), scm:<ref prefix>, build:<pipeline>/<build>, builds:<pipeline>/<from>..<to>, \
     last:<pipeline>/<n> or (a baseline only) auto";

/// Examples of each form, for the message that refuses a side.
const SPEC_EXAMPLES: &str = "such as 3f2a9c, session:3f2a9c, scm:8d1e, build:main/41, \
     builds:main/30..41, last:main/5 or auto";

/// The largest `n` of `last:<pipeline>/<n>`.
pub const MAX_LAST_BUILDS: u64 = 1000;

/// Which sessions one side of a comparison covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SideSpec {
    /// `session:<prefix>`, or the bare prefix: the one session whose hash is, or starts with,
    /// this.
    Session(String),
    /// `scm:<prefix>`: every session whose SCM reference starts with this.
    Scm(String),
    /// `build:<pipeline>/<build>`: every session of one build of a pipeline.
    Build {
        /// `pipeline_branch`.
        pipeline: String,
        /// `pipeline_build_no`.
        build: String,
    },
    /// `builds:<pipeline>/<from>..<to>`: every build numbered from `from` to `to`.
    Builds {
        /// `pipeline_branch`.
        pipeline: String,
        /// First build number.
        from: u64,
        /// Last build number (included).
        to: u64,
    },
    /// `last:<pipeline>/<n>`: the `n` latest builds, not counting those of the other side.
    Last {
        /// `pipeline_branch`.
        pipeline: String,
        /// How many builds.
        n: u64,
    },
    /// `auto` (a baseline only): the builds of the candidate's pipeline since the last change
    /// detected before the candidate build, which the caller resolves into [`SideSpec::Segment`].
    Auto,
    /// The builds of a stable segment of a pipeline, as `auto` resolves.
    Segment {
        /// `pipeline_branch`.
        pipeline: String,
        /// `pipeline_build_no`s.
        builds: Vec<String>,
    },
}

impl SideSpec {
    /// Parses a spec; the error says what is wrong with it. Text without a kind that is all
    /// hexadecimal digits is a session hash or prefix, as pytest-monitor writes hashes, so the
    /// hash a CI log printed can be pasted as it is.
    pub fn parse(text: &str) -> Result<SideSpec, String> {
        if text == "auto" {
            return Ok(SideSpec::Auto);
        }
        let Some((kind, rest)) = text.split_once(':') else {
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(SideSpec::Session(text.to_owned()));
            }
            return Err(format!(
                "is neither a session hash (hexadecimal digits) nor a spec: use one of \
                 {SPEC_FORMS}, {SPEC_EXAMPLES}"
            ));
        };
        if rest.is_empty() {
            return Err(format!("`{kind}:` needs a value after the colon"));
        }
        // A pipeline name may itself contain `/` (release/2.0): the build part is after the last.
        let pipeline_and = |what: &str| -> Result<(String, String), String> {
            match rest.rsplit_once('/') {
                Some((pipeline, tail)) if !pipeline.is_empty() && !tail.is_empty() => {
                    Ok((pipeline.to_owned(), tail.to_owned()))
                }
                _ => Err(format!(
                    "`{kind}:` must be written {kind}:<pipeline>/<{what}>"
                )),
            }
        };
        match kind {
            "session" => Ok(SideSpec::Session(rest.to_owned())),
            "scm" => Ok(SideSpec::Scm(rest.to_owned())),
            "build" => {
                let (pipeline, build) = pipeline_and("build")?;
                Ok(SideSpec::Build { pipeline, build })
            }
            "builds" => {
                let (pipeline, range) = pipeline_and("from>..<to")?;
                let parsed = range
                    .split_once("..")
                    .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
                match parsed {
                    Some((from, to)) if from <= to => Ok(SideSpec::Builds { pipeline, from, to }),
                    Some(_) => Err("the first build of a range must not be after the last".into()),
                    None => Err(
                        "`builds:` takes a range of build numbers, such as builds:main/30..41"
                            .into(),
                    ),
                }
            }
            "last" => {
                let (pipeline, n) = pipeline_and("n")?;
                match n.parse::<u64>() {
                    Ok(n @ 1..=MAX_LAST_BUILDS) => Ok(SideSpec::Last { pipeline, n }),
                    _ => Err(format!(
                        "`last:` takes a number of builds from 1 to {MAX_LAST_BUILDS}, such as last:main/5"
                    )),
                }
            }
            other => Err(format!(
                "`{other}:` is not a kind of side; use one of {SPEC_FORMS}, {SPEC_EXAMPLES}"
            )),
        }
    }
}

/// One session of a side, with what decides its run.
#[derive(Debug, Clone)]
pub(super) struct SessionRow {
    pub(super) session_h: String,
    pub(super) scm_ref: String,
    pub(super) pipeline: String,
    pub(super) build: String,
}

impl SessionRow {
    /// The run the session belongs to: its pipeline build when it carries one, else its SCM
    /// reference. (pytest-xdist's controller and workers share both.)
    pub(super) fn run_name(&self) -> String {
        if self.build.is_empty() {
            self.scm_ref.clone()
        } else {
            format!("{}/{}", self.pipeline, self.build)
        }
    }
}

const SESSION_ROWS: &str = "SELECT s.session_h, s.scm_ref, coalesce(p.value, ''), \
     coalesce(b.value, '') FROM sessions s \
     LEFT JOIN session_tags p ON p.session_id = s.id AND p.name = 'pipeline_branch' \
     LEFT JOIN session_tags b ON b.session_id = s.id AND b.name = 'pipeline_build_no'";

fn session_rows(
    conn: &Connection,
    condition: &str,
    params: Vec<SqlValue>,
) -> rusqlite::Result<Vec<SessionRow>> {
    let sql = format!("{SESSION_ROWS} WHERE {condition} ORDER BY s.id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(params), |row| {
        Ok(SessionRow {
            session_h: row.get(0)?,
            scm_ref: row.get(1)?,
            pipeline: row.get(2)?,
            build: row.get(3)?,
        })
    })?;
    rows.collect()
}

fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.to_owned())
}

/// The sessions `spec` names. `others` are the other side's sessions, which `last:` skips the
/// builds of. A `session:` prefix matching several sessions is a 400 (`side` names the
/// parameter), unless one of them is the exact hash.
pub(super) fn resolve(
    conn: &Connection,
    side: &str,
    written: &str,
    spec: &SideSpec,
    others: &[SessionRow],
) -> Result<Vec<SessionRow>, ApiError> {
    let rows = match spec {
        SideSpec::Auto => {
            return Err(ApiError::bad_field(
                format!("The {side} `{written}` is not valid here."),
                side,
                "auto is a baseline only, for a candidate written build:<pipeline>/<build>",
            ))
        }
        SideSpec::Segment { pipeline, builds } => {
            session_rows(conn, "p.value = ? AND b.value != ''", vec![text(pipeline)])?
                .into_iter()
                .filter(|s| builds.contains(&s.build))
                .collect()
        }
        SideSpec::Session(prefix) => {
            let found = session_rows(
                conn,
                "s.session_h LIKE ? ESCAPE '\\'",
                vec![text(&format!("{}%", like_escape(prefix)))],
            )?;
            match found.iter().find(|s| s.session_h == *prefix) {
                Some(exact) => vec![exact.clone()],
                None if found.len() > 1 => {
                    return Err(ApiError::bad_field(
                        format!(
                        "The {side} `{written}` is ambiguous: {} sessions start with `{prefix}`.",
                        found.len()
                    ),
                        side,
                        "give more of the session hash",
                    ))
                }
                None => found,
            }
        }
        SideSpec::Scm(prefix) => session_rows(
            conn,
            "s.scm_ref LIKE ? ESCAPE '\\'",
            vec![text(&format!("{}%", like_escape(prefix)))],
        )?,
        SideSpec::Build { pipeline, build } => session_rows(
            conn,
            "p.value = ? AND b.value = ?",
            vec![text(pipeline), text(build)],
        )?,
        SideSpec::Builds { pipeline, from, to } => {
            session_rows(conn, "p.value = ? AND b.value != ''", vec![text(pipeline)])?
                .into_iter()
                .filter(|s| {
                    s.build
                        .parse::<u64>()
                        .is_ok_and(|n| (*from..=*to).contains(&n))
                })
                .collect()
        }
        SideSpec::Last { pipeline, n } => {
            let sessions =
                session_rows(conn, "p.value = ? AND b.value != ''", vec![text(pipeline)])?;
            let taken: BTreeSet<&str> = others
                .iter()
                .filter(|s| s.pipeline == *pipeline)
                .map(|s| s.build.as_str())
                .collect();
            // Build numbers in numeric order (as /pipelines/<p>/builds lists them): by length,
            // then by text.
            let mut builds: Vec<&str> = sessions
                .iter()
                .map(|s| s.build.as_str())
                .filter(|b| !taken.contains(b))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            builds.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
            let keep: BTreeSet<String> = builds
                .iter()
                .rev()
                .take(usize::try_from(*n).unwrap_or(usize::MAX))
                .map(|b| b.to_string())
                .collect();
            sessions
                .into_iter()
                .filter(|s| keep.contains(&s.build))
                .collect()
        }
    };
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!(
            "The {side} `{written}` matches no session."
        )));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_pipelines_that_contain_slashes() {
        assert_eq!(
            SideSpec::parse("build:release/2.0/7"),
            Ok(SideSpec::Build {
                pipeline: "release/2.0".into(),
                build: "7".into()
            })
        );
        assert_eq!(
            SideSpec::parse("builds:main/3..12"),
            Ok(SideSpec::Builds {
                pipeline: "main".into(),
                from: 3,
                to: 12
            })
        );
        assert_eq!(
            SideSpec::parse("last:main/5"),
            Ok(SideSpec::Last {
                pipeline: "main".into(),
                n: 5
            })
        );
        assert_eq!(SideSpec::parse("auto"), Ok(SideSpec::Auto));
        assert_eq!(
            SideSpec::parse("session:ab12"),
            Ok(SideSpec::Session("ab12".into()))
        );
        assert_eq!(
            SideSpec::parse("AB12"),
            Ok(SideSpec::Session("AB12".into()))
        );
        for bad in [
            "",
            "main",
            "ab12/3",
            "main/41",
            "build:41",
            "build:main/",
            "builds:main/5..3",
            "builds:main/a..b",
            "last:main/0",
            "tag:x",
            "scm:",
        ] {
            assert!(SideSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
