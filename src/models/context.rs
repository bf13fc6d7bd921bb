//! An execution context: the machine a session ran on, read from a request body.

use serde::Serialize;

use crate::error::ApiError;
use crate::models::json::{FieldReader, JsonObject, FREE_TEXT_MAX};

/// The machine a session ran on, identified by pytest-monitor's hash `h`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Context {
    /// pytest-monitor's hash of the fields below.
    pub h: String,
    /// Number of CPUs.
    pub cpu_count: i64,
    /// CPU frequency in MHz.
    pub cpu_frequency: f64,
    /// CPU model.
    pub cpu_type: String,
    /// CPU vendor; empty when the plugin could not tell.
    pub cpu_vendor: String,
    /// Memory in MB.
    pub ram_total: i64,
    /// Host name.
    pub machine_node: String,
    /// Machine type, such as `x86_64`.
    pub machine_type: String,
    /// Architecture, such as `64bit`.
    pub machine_arch: String,
    /// Operating system and release.
    pub system_info: String,
    /// Python version string.
    pub python_info: String,
}

impl Context {
    /// Builds a context from a request body.
    pub fn from_json(object: JsonObject) -> Result<Self, ApiError> {
        let mut r = FieldReader::new(object);
        let context = Context {
            h: r.string(&["h"], true, 128),
            cpu_count: r.count(&["cpu_count"]),
            cpu_frequency: r.float(&["cpu_frequency"], Some(0.0)),
            cpu_type: r.string(&["cpu_type"], false, FREE_TEXT_MAX),
            cpu_vendor: r
                .optional_string(&["cpu_vendor"], false, FREE_TEXT_MAX, false)
                .unwrap_or_default(),
            ram_total: r.count(&["ram_total"]),
            machine_node: r.string(&["machine_node"], false, FREE_TEXT_MAX),
            machine_type: r.string(&["machine_type"], false, FREE_TEXT_MAX),
            machine_arch: r.string(&["machine_arch"], false, FREE_TEXT_MAX),
            system_info: r.string(&["system_info"], false, FREE_TEXT_MAX),
            python_info: r.string(&["python_info"], false, FREE_TEXT_MAX),
        };
        r.finish("execution context", context)
    }
}
