//! The vendors' request vectors (`tests/vectors` of the workspace), replayed as requests received.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use serde_json::Value;

/// Headers to replace in a replayed request: (name, value).
pub(crate) type Changes<'c> = &'c [(&'c str, &'c str)];

/// The vector `name`.
pub(crate) fn load(name: &str) -> Value {
    let path = format!("{}/../../tests/vectors/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
}

/// The string at a JSON pointer.
pub(crate) fn text<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer).and_then(Value::as_str).expect(pointer)
}

/// A request as the server gets it: the vector's method, path and query (or `query`), and its wire
/// headers with `changes` applied (a change replaces every header of that name).
pub(crate) struct Replayed {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
}

impl Replayed {
    /// The `Authorization` header as replayed.
    pub(crate) fn authorization(&self) -> &str {
        self.headers["authorization"].to_str().unwrap()
    }
}

pub(crate) fn replay(v: &Value, query: Option<&str>, changes: Changes) -> Replayed {
    let path_and_query = text(v, "/request/path_and_query");
    let path = path_and_query.split('?').next().unwrap_or("/");
    let query = query.or_else(|| path_and_query.split_once('?').map(|(_, q)| q)).unwrap_or("");
    let uri: Uri = if query.is_empty() { path.parse() } else { format!("{path}?{query}").parse() }.unwrap();
    let mut headers = HeaderMap::new();
    for pair in v["request"]["wire_headers_in_order"].as_array().unwrap() {
        let name = HeaderName::from_bytes(text(pair, "/0").to_ascii_lowercase().as_bytes()).unwrap();
        headers.append(name, HeaderValue::from_str(text(pair, "/1")).unwrap());
    }
    for (name, value) in changes {
        headers.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    Replayed { method: text(v, "/request/method").parse().unwrap(), uri, headers }
}
