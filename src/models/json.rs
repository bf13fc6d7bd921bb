//! Reading a request body strictly: exactly one JSON object, a key given twice reported, and
//! typed fields taken out of it with every fault collected ([`FieldReader`]).

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{ApiError, FieldErrors};
use crate::models::iso8601::parse_iso8601;

/// A JSON object as the client sent it, with the keys that appeared more than once.
///
/// serde_json keeps the last of two equal keys without a word; docs/api.md makes a key given twice
/// a 400, so the object is read with a visitor of our own that notices.
///
/// The fields are a plain list: a record has about fifteen, which a linear search finds faster
/// than a hash map hashes a key (serde_json's map hashes every key with SipHash, a tenth of what
/// a POST cost the server before).
#[derive(Debug, Default)]
pub struct JsonObject {
    fields: Vec<(String, Value)>,
    duplicates: Vec<String>,
}

/// Where `key` is among `fields`.
fn index_of(fields: &[(String, Value)], key: &str) -> Option<usize> {
    fields.iter().position(|(name, _)| name == key)
}

impl JsonObject {
    /// Parses a request body, which must be exactly one JSON object.
    pub fn from_slice(body: &[u8]) -> Result<Self, ApiError> {
        serde_json::from_slice(body).map_err(|err| {
            let message = if err.is_data() {
                format!("The request body must be a JSON object: {err}.")
            } else {
                format!("The request body is not valid JSON: {err}.")
            };
            ApiError::bad_request(message)
        })
    }
}

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = JsonObject;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonObject, A::Error> {
                let mut object = JsonObject::default();
                while let Some(key) = map.next_key::<String>()? {
                    let value: Value = map.next_value()?;
                    if index_of(&object.fields, &key).is_some() {
                        if !object.duplicates.contains(&key) {
                            object.duplicates.push(key);
                        }
                    } else {
                        object.fields.push((key, value));
                    }
                }
                Ok(object)
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Takes typed fields out of a [`JsonObject`], collecting every fault instead of stopping at the
/// first, so that one 400 tells the client all that is wrong with its body.
pub(super) struct FieldReader {
    fields: Vec<(String, Value)>,
    errors: FieldErrors,
}

/// The largest length, in characters, of the free-text fields docs/api.md gives no bound for.
pub(super) const FREE_TEXT_MAX: usize = 4096;

impl FieldReader {
    pub(super) fn new(object: JsonObject) -> Self {
        let mut errors = FieldErrors::new();
        for key in object.duplicates {
            errors.insert(key, "is given more than once".into());
        }
        FieldReader {
            fields: object.fields,
            errors,
        }
    }

    fn fail(&mut self, field: &str, reason: impl Into<String>) {
        self.errors
            .entry(field.to_owned())
            .or_insert_with(|| reason.into());
    }

    /// Removes the field known by any of `names` (the output name first, then its aliases) and
    /// returns the spelling found with the value. `None` when absent or given under two spellings.
    fn take(&mut self, names: &[&'static str], required: bool) -> Option<(&'static str, Value)> {
        let Some(first) = names
            .iter()
            .position(|name| index_of(&self.fields, name).is_some())
        else {
            if required {
                self.fail(names[0], "is required");
            }
            return None;
        };
        let name = names[first];
        // Empty, and so not allocated, unless the client used two spellings.
        let others: Vec<&str> = names[first + 1..]
            .iter()
            .copied()
            .filter(|other| index_of(&self.fields, other).is_some())
            .collect();
        if !others.is_empty() {
            let reason = format!(
                "is given under two spellings: {name} and {}",
                others.join(", ")
            );
            self.fail(name, reason);
            return None;
        }
        let index = index_of(&self.fields, name)?;
        Some((name, self.fields.swap_remove(index).1))
    }

    /// A string of at most `max` characters, non-empty when `non_empty`.
    pub(super) fn string(&mut self, names: &[&'static str], non_empty: bool, max: usize) -> String {
        self.optional_string(names, non_empty, max, true)
            .unwrap_or_default()
    }

    pub(super) fn optional_string(
        &mut self,
        names: &[&'static str],
        non_empty: bool,
        max: usize,
        required: bool,
    ) -> Option<String> {
        let (name, value) = self.take(names, required)?;
        match value {
            Value::String(text) if non_empty && text.is_empty() => {
                self.fail(name, "must not be empty");
                None
            }
            Value::String(text) if text.chars().count() > max => {
                self.fail(name, format!("must be at most {max} characters long"));
                None
            }
            Value::String(text) => Some(text),
            other => {
                self.fail(name, format!("must be a string, not {}", kind_of(&other)));
                None
            }
        }
    }

    /// Any JSON number; at least `min` when given.
    pub(super) fn float(&mut self, names: &[&'static str], min: Option<f64>) -> f64 {
        let Some((name, value)) = self.take(names, true) else {
            return 0.0;
        };
        match value.as_f64() {
            Some(number) if min.is_some_and(|min| number < min) => {
                self.fail(
                    name,
                    format!("must be at least {}", min.unwrap_or_default()),
                );
                0.0
            }
            Some(number) => number,
            None => {
                self.fail(name, format!("must be a number, not {}", kind_of(&value)));
                0.0
            }
        }
    }

    /// A non-negative integer; an integral float such as `4.0` counts as one.
    pub(super) fn count(&mut self, names: &[&'static str]) -> i64 {
        let Some((name, value)) = self.take(names, true) else {
            return 0;
        };
        let number = match &value {
            Value::Number(number) => number.as_i64().or_else(|| {
                number
                    .as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            }),
            _ => None,
        };
        match number {
            Some(n) if n >= 0 => n,
            Some(_) => {
                self.fail(name, "must be at least 0");
                0
            }
            None => {
                self.fail(name, format!("must be an integer, not {}", kind_of(&value)));
                0
            }
        }
    }

    /// An ISO 8601 time as Python's `isoformat()` writes it, kept exactly as sent, with the
    /// instant it names in microseconds since 1970 UTC.
    pub(super) fn time(&mut self, names: &[&'static str]) -> (String, i64) {
        let Some((name, value)) = self.take(names, true) else {
            return (String::new(), 0);
        };
        let Value::String(text) = value else {
            let reason = format!("must be an ISO 8601 string, not {}", kind_of(&value));
            self.fail(name, reason);
            return (String::new(), 0);
        };
        match parse_iso8601(&text) {
            Ok(micros) => (text, micros),
            Err(reason) => {
                self.fail(name, reason);
                (String::new(), 0)
            }
        }
    }

    /// A JSON object; `{}` when absent.
    pub(super) fn object(&mut self, names: &[&'static str]) -> Map<String, Value> {
        match self.take(names, false) {
            None => Map::new(),
            Some((_, Value::Object(map))) => map,
            Some((name, other)) => {
                self.fail(
                    name,
                    format!("must be a JSON object, not {}", kind_of(&other)),
                );
                Map::new()
            }
        }
    }

    /// Turns the collected faults into one 400, naming the record.
    pub(super) fn finish<T>(self, record: &str, value: T) -> Result<T, ApiError> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ApiError::BadRequest {
                message: format!(
                    "The {record} is not valid; see `errors` for each field at fault."
                ),
                errors: self.errors,
            })
        }
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_reported() {
        let object = JsonObject::from_slice(br#"{"h": "a", "h": "b"}"#).unwrap();
        assert_eq!(object.duplicates, vec!["h".to_owned()]);
    }
}
