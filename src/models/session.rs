//! A session: one pytest run and its tags, read from a request body and listed with its tags.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::models::json::{FieldReader, JsonObject, FREE_TEXT_MAX};

/// One pytest run: when, at which SCM revision, and its tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// pytest-monitor's hash of the run.
    pub session_h: String,
    /// When the run started, exactly as sent.
    pub run_date: String,
    /// SCM revision the run tested; may be empty.
    pub scm_ref: String,
    /// Tags: `description`, each `--tag k=v`, and CI facts such as `pipeline_branch`.
    pub description: Map<String, Value>,
}

/// One tag of a session, as listed in its `tags` array.
#[derive(Debug, Serialize)]
pub struct Tag<'a> {
    /// The tag's key in `description`.
    pub name: &'a str,
    /// The tag's value; a value that is not a string is given as its JSON text.
    pub value: String,
}

impl Session {
    /// Builds a session from a request body; a missing `description` means no tags.
    pub fn from_json(object: JsonObject) -> Result<Self, ApiError> {
        let mut r = FieldReader::new(object);
        let session = Session {
            session_h: r.string(&["session_h"], true, 128),
            run_date: r.time(&["run_date"]).0,
            scm_ref: r.string(&["scm_ref"], false, FREE_TEXT_MAX),
            description: r.object(&["description"]),
        };
        r.finish("session", session)
    }

    /// The session's tags in the order they were sent.
    pub fn tags(&self) -> impl Iterator<Item = Tag<'_>> {
        self.description.iter().map(|(name, value)| Tag {
            name,
            value: tag_value(value),
        })
    }
}

/// The text a tag value is listed and searched by.
pub fn tag_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

impl Serialize for Session {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Session", 5)?;
        s.serialize_field("session_h", &self.session_h)?;
        s.serialize_field("run_date", &self.run_date)?;
        s.serialize_field("scm_ref", &self.scm_ref)?;
        s.serialize_field("description", &self.description)?;
        s.serialize_field("tags", &self.tags().collect::<Vec<_>>())?;
        s.end()
    }
}
