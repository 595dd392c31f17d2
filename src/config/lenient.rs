//! From TOML text to the raw structs with one problem per key, so a single pass reports them all.
//!
//! serde stops at the first value of the wrong type. Here such a key is reported (with what was
//! found and what is expected, in the file's words: `[[tickets]]`, "a duration in quotes") and
//! left out of the document, which is deserialized again without it, until the rest reads. A valid
//! file is deserialized once, straight from its text. Unknown keys are reported too, each with
//! the closest key its table knows ("did you mean `token_lifetime`?"), the list of known keys
//! coming from the raw structs themselves.

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

use super::locate::{KeyPath, Segment};
use super::raw::{RawConfig, RawCredentials, RawHook, RawRateLimits, RawSink, RawTicket};
use crate::apis::kinds::api_keys;
use crate::apis::section::{Key, Shape};

/// A key and what is wrong with it.
pub(super) type KeyProblem = (KeyPath, String);

/// Deserialize `text`, collecting a problem for each key of the wrong type or shape (which is
/// then left out) and for each unknown key. `Err` is a syntax error: nothing can be read.
pub(super) fn read<T: DeserializeOwned>(text: &str) -> Result<(T, Vec<KeyProblem>), toml::de::Error> {
    if let Ok((raw, unknown)) = attempt::<T>(toml::de::Deserializer::parse(text)?) {
        return Ok((raw, with_unknown(Vec::new(), unknown)));
    }
    let mut root = DeTable::parse(text)?;
    let mut problems = Vec::new();
    // Each round removes one key of the document, so the rounds are bounded by its size.
    loop {
        // Deserialized from the tree (not the text), the error names its keys.
        let error = match attempt::<T>(toml::de::Deserializer::from(root.clone())) {
            Ok((raw, unknown)) => return Ok((raw, with_unknown(problems, unknown))),
            Err(e) => e,
        };
        let offset = error.span().map_or(usize::MAX, |s| s.start);
        let Some((path, value)) = remove_named(root.get_mut(), &KeyPath::root(), &error_keys(&error), offset) else {
            return Err(error);
        };
        problems.push((path.clone(), describe(&path, &value, error.message())));
    }
}

type Attempt<T> = Result<(T, Vec<KeyPath>), toml::de::Error>;

fn attempt<T: DeserializeOwned>(deserializer: toml::de::Deserializer<'_>) -> Attempt<T> {
    let mut unknown = Vec::new();
    let raw = serde_ignored::deserialize(deserializer, |path| unknown.push(KeyPath::from_ignored(&path)))?;
    Ok((raw, unknown))
}

fn with_unknown(mut problems: Vec<KeyProblem>, unknown: Vec<KeyPath>) -> Vec<KeyProblem> {
    for path in unknown {
        let message = match suggestion(&path) {
            Some(known) => format!("unknown key; did you mean `{known}`?"),
            None => "unknown key".to_string(),
        };
        problems.push((path, message));
    }
    problems
}

/// The keys (without array indices) of the value a deserialization error is about: the error
/// says them as "in `tickets.token_lifetime`" when it carries no input text.
fn error_keys(error: &toml::de::Error) -> Vec<String> {
    let text = error.to_string();
    let keys = text.lines().rev().find_map(|l| l.strip_prefix("in `")?.strip_suffix('`').map(str::to_string));
    keys.map(|k| k.split('.').map(str::to_string).collect()).unwrap_or_default()
}

/// Remove the value at `keys` below `table`, taking in each array the item that holds byte
/// `offset` (the error's place); when the keys lead nowhere, the last key found is removed.
fn remove_named<'i>(
    table: &mut DeTable<'i>,
    at: &KeyPath,
    keys: &[String],
    offset: usize,
) -> Option<(KeyPath, DeValue<'i>)> {
    let (first, rest) = keys.split_first()?;
    let path = at.key(first);
    let deeper = match table.get_mut(first.as_str()).map(|v| v.get_mut()) {
        None => return None,
        Some(_) if rest.is_empty() => None,
        Some(DeValue::Table(inner)) => remove_named(inner, &path, rest, offset),
        Some(DeValue::Array(items)) => {
            let tables = items.iter().filter(|i| i.get_ref().is_table()).count();
            items.iter_mut().enumerate().find_map(|(i, item)| {
                let here = tables == 1 || holds(item, offset);
                match item.get_mut() {
                    DeValue::Table(inner) if here => remove_named(inner, &path.index(i), rest, offset),
                    _ => None,
                }
            })
        }
        Some(_) => None,
    };
    deeper.or_else(|| table.remove(first.as_str()).map(|v| (path, v.into_inner())))
}

/// Whether `value`, or a key or value inside it, spans byte `offset`.
fn holds(value: &toml::Spanned<DeValue<'_>>, offset: usize) -> bool {
    let within = |span: std::ops::Range<usize>| span.start <= offset && offset < span.end;
    within(value.span())
        || match value.get_ref() {
            DeValue::Table(t) => t.iter().any(|(k, v)| within(k.span()) || holds(v, offset)),
            DeValue::Array(items) => items.iter().any(|v| holds(v, offset)),
            _ => false,
        }
}

/// What is wrong with `value` at `path`, which serde refused with `message`.
fn describe(path: &KeyPath, value: &DeValue<'_>, message: &str) -> String {
    let found = match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    };
    let segments = path.segments();
    let key = |i: usize| match segments.get(i) {
        Some(Segment::Key(k)) => Some(k.as_str()),
        _ => None,
    };
    let table = matches!(value, DeValue::Table(_));
    let array = matches!(value, DeValue::Array(_));
    match (segments.len(), key(0), key(segments.len().saturating_sub(1))) {
        (1, Some("tickets"), _) if table => {
            let DeValue::Table(t) = value else { unreachable!("matched as a table") };
            let parts: Vec<String> = t.iter().map(|(k, _)| k.get_ref().to_string()).collect();
            let header = match (parts.iter().any(|k| k == "sinks"), parts.iter().any(|k| k == "on_change")) {
                (true, _) => Some("[[tickets.sinks]]"),
                (false, true) => Some("[tickets.on_change]"),
                _ => None,
            };
            if let Some(header) = header {
                return format!(
                    "`{header}` comes before any `[[tickets]]`: a sink or hook belongs to the ticket whose \
                     `[[tickets]]` header is above it, so start each ticket with `[[tickets]]` and its keys"
                );
            }
            return "write `[[tickets]]` (two brackets): each ticket is one entry of a list".to_string();
        }
        (1, Some("tickets"), _) => return format!("is {found}; write one `[[tickets]]` section per ticket"),
        (3, Some("tickets"), Some("sinks")) if table => {
            return "write `[[tickets.sinks]]` (two brackets): a ticket has a list of sinks".to_string();
        }
        (3, Some("tickets"), Some("on_change")) if array => {
            return "write `[tickets.on_change]` (one bracket): a ticket has one on_change hook".to_string();
        }
        (1, Some("credentials"), _) => {
            return format!("is {found}; write one `[credentials.NAME]` section per credential set");
        }
        (2, Some("credentials"), _) => {
            return format!("is {found}; a credential set is a `[credentials.NAME]` section of keys");
        }
        _ => {}
    }
    let Some(expected) =
        message.strip_prefix("invalid type: ").and_then(|m| m.split_once(", expected ")).map(|(_, e)| e)
    else {
        // Another refusal (a number out of range, say): serde's words, which quote no secret
        // (the secret fields refuse by type only).
        return message.trim().to_string();
    };
    let expected = match expected.trim() {
        "a sequence" => "an array",
        "a map" => "a table",
        e if e.starts_with("struct ") => "a table",
        "u32" => "a whole number from 0 to 4294967295",
        "i64" => "an integer",
        e => e,
    };
    let last = key(segments.len().saturating_sub(1)).unwrap_or_default();
    let hint = if is_duration_key(last, api_keys()) {
        ": a duration in quotes, e.g. \"600s\", \"12h\", \"30d\""
    } else if last == "mode" || last == "socket_mode" {
        ": an octal mode in quotes, e.g. \"0600\""
    } else {
        ""
    };
    format!("is {found}, expected {expected}{hint}")
}

/// Whether the key named `last` holds a duration (a string such as "12h"): a ticket key an API's
/// section declares as [`Shape::Duration`] (`apis` gives them all: a new API's or a new key's
/// hint needs no line here), or one of [`OTHER_DURATION_KEYS`].
fn is_duration_key(last: &str, api_keys: &[Key]) -> bool {
    OTHER_DURATION_KEYS.contains(&last) || api_keys.iter().any(|k| k.shape == Shape::Duration && k.name == last)
}

/// The duration keys outside the APIs' sections: `[credentials.NAME]` (`duration`,
/// `session_duration`), `on_change` (`timeout`, `debounce`) and `[cluster]` (`lease_ttl`).
const OTHER_DURATION_KEYS: &[&str] = &["duration", "session_duration", "timeout", "debounce", "lease_ttl"];

/// The known key closest to the unknown one at `path`, when one is close enough to be a typo.
fn suggestion(path: &KeyPath) -> Option<&'static str> {
    let segments = path.segments();
    let (Segment::Key(unknown), parent) = segments.split_last()? else { return None };
    let known = known_keys(parent)?;
    let lower = unknown.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (k, strsim::normalized_damerau_levenshtein(&lower, k)))
        .filter(|(_, score)| *score >= 0.6)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| *k)
}

/// The keys of the table at `parent`, read from the raw struct that mirrors it.
fn known_keys(parent: &[Segment]) -> Option<&'static [&'static str]> {
    use Segment::{Index, Key};
    let key = |s: &Segment, name: &str| matches!(s, Key(k) if k == name);
    match parent {
        [] => Some(fields::<RawConfig>()),
        [a] if key(a, "rate_limits") => Some(fields::<RawRateLimits>()),
        [a, Key(_)] if key(a, "credentials") => Some(fields::<RawCredentials>()),
        [a, Index(_)] if key(a, "tickets") => Some(fields::<RawTicket>()),
        [a, Index(_), b, Index(_)] if key(a, "tickets") && key(b, "sinks") => Some(fields::<RawSink>()),
        [a, Index(_), b] if key(a, "tickets") && key(b, "on_change") => Some(fields::<RawHook>()),
        _ => None,
    }
}

/// The field names serde knows for `T` (asked of its `Deserialize` impl, so a key added to a raw
/// struct is known here at once).
fn fields<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(serde::de::Error::custom("probed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let (_, found) = read::<RawConfig>(text).expect("no syntax error");
        found.iter().map(|(path, message)| format!("{path}: {message}")).collect()
    }

    #[test]
    fn each_key_of_the_wrong_type_is_reported_and_the_rest_still_reads() {
        let text = "state_dir = 5\n[[tickets]]\nname = \"a\"\ntoken_lifetime = 600\nrequired = \"yes\"\n\
                    allow_uids = [-1]\n[[tickets.sinks]]\npath = \"/x\"\nmode = 600\n";
        let (raw, found) = read::<RawConfig>(text).unwrap();
        let found: Vec<String> = found.iter().map(|(p, m)| format!("{p}: {m}")).collect();
        assert_eq!(
            found,
            [
                "state_dir: is an integer, expected a string",
                "tickets[0].token_lifetime: is an integer, expected a string: a duration in quotes, e.g. \"600s\", \"12h\", \"30d\"",
                "tickets[0].required: is a string, expected a boolean",
                "tickets[0].allow_uids: invalid value: integer `-1`, expected u32",
                "tickets[0].sinks[0].mode: is an integer, expected a string: an octal mode in quotes, e.g. \"0600\"",
            ]
        );
        assert_eq!(raw.tickets[0].name.as_deref(), Some("a"));
        assert_eq!(raw.tickets[0].sinks[0].path.as_deref(), Some("/x"));
    }

    /// Every duration key an API's section declares gets the hint, in a ticket of that kind
    /// (read from the registry: a new API's duration key is tested here without a line).
    #[test]
    fn every_duration_key_an_api_declares_gets_the_duration_hint() {
        let mut checked = 0;
        for kind in crate::apis::Kind::ALL {
            for key in kind.keys().iter().filter(|k| k.shape == Shape::Duration) {
                let text = format!("[[tickets]]\nname = \"a\"\nkind = \"{}\"\n{} = 600\n", kind.as_str(), key.name);
                let found = problems(&text);
                let said = format!(
                    "tickets[0].{}: is an integer, expected a string: a duration in quotes, e.g. \"600s\"",
                    key.name
                );
                assert!(found.iter().any(|p| p.starts_with(&said)), "{}: {found:?}", kind.as_str());
                checked += 1;
            }
        }
        assert!(checked >= 4, "the registry declares sls's three lifetimes and dsw's token_lifetime");
    }

    /// `[cluster]`'s `lease_ttl` gets the hint too (review F10: it was missing from the list).
    #[test]
    fn the_cluster_lease_ttl_gets_the_duration_hint() {
        let found =
            problems("[cluster]\nbackend = \"etcd\"\nendpoints = [\"http://127.0.0.1:2379\"]\nlease_ttl = 10\n");
        let said = "cluster.lease_ttl: is an integer, expected a string: a duration in quotes";
        assert!(found.iter().any(|p| p.starts_with(said)), "{found:?}");
    }

    /// A duration key a section adds is one by its declaration alone, and only a duration one:
    /// a text key of the same section is not.
    #[test]
    fn a_new_duration_key_in_any_section_is_a_duration_key_by_its_declaration() {
        let section = [Key::text("grace_note"), Key::duration("grace_period")];
        assert!(is_duration_key("grace_period", &section));
        assert!(!is_duration_key("grace_note", &section));
        assert!(!is_duration_key("grace_period", api_keys()), "not declared by any registered API");
        for other in OTHER_DURATION_KEYS {
            assert!(is_duration_key(other, &[]));
        }
    }

    #[test]
    fn a_bad_key_in_a_later_ticket_is_found_in_that_ticket() {
        let text = "[[tickets]]\nname = \"a\"\n[[tickets]]\nname = \"b\"\n[[tickets.sinks]]\npath = 1\n\
                    [[tickets.sinks]]\npath = \"/y\"\n[[tickets]]\nname = 3\n";
        let (raw, found) = read::<RawConfig>(text).unwrap();
        let found: Vec<String> = found.iter().map(|(p, m)| format!("{p}: {m}")).collect();
        assert_eq!(
            found,
            [
                "tickets[1].sinks[0].path: is an integer, expected a string",
                "tickets[2].name: is an integer, expected a string"
            ]
        );
        assert_eq!(raw.tickets.len(), 3);
        assert_eq!(raw.tickets[1].sinks[1].path.as_deref(), Some("/y"));
    }

    #[test]
    fn misplaced_sections_are_explained_in_the_file_s_words() {
        let found = problems("[[tickets.sinks]]\npath = \"/x\"\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("tickets: `[[tickets.sinks]]` comes before any `[[tickets]]`: a sink"),
            "{found:?}"
        );
        let found = problems("[tickets]\nname = \"a\"\n");
        assert_eq!(found, ["tickets: write `[[tickets]]` (two brackets): each ticket is one entry of a list"]);
        let found =
            problems("[[tickets]]\nname = \"a\"\n[tickets.sinks]\npath = \"/x\"\n[[tickets.on_change]]\nexec = []\n");
        assert_eq!(
            found,
            [
                "tickets[0].sinks: write `[[tickets.sinks]]` (two brackets): a ticket has a list of sinks",
                "tickets[0].on_change: write `[tickets.on_change]` (one bracket): a ticket has one on_change hook",
            ]
        );
        let found = problems("[[credentials]]\nvendor = \"alibaba\"\n");
        assert_eq!(found, ["credentials: is an array; write one `[credentials.NAME]` section per credential set"]);
    }

    #[test]
    fn unknown_keys_name_the_closest_known_key() {
        let text = "stat_dir = \"/x\"\n[credentials.a]\nvendr = \"alibaba\"\n[[tickets]]\ntoken_lifetme = \"1h\"\n\
                    Endpoint = \"x\"\ncolour = \"blue\"\n[[tickets.sinks]]\nformt = \"json\"\ntyp = \"file\"\n\
                    [tickets.on_change]\nexc = []\n[rate_limits]\nalibab = 1\n";
        assert_eq!(
            problems(text),
            [
                "stat_dir: unknown key; did you mean `state_dir`?",
                "credentials.a.vendr: unknown key; did you mean `vendor`?",
                "tickets[0].token_lifetme: unknown key; did you mean `token_lifetime`?",
                "tickets[0].Endpoint: unknown key; did you mean `endpoint`?",
                "tickets[0].colour: unknown key",
                "tickets[0].sinks[0].formt: unknown key; did you mean `format`?",
                "tickets[0].sinks[0].typ: unknown key; did you mean `type`?",
                "tickets[0].on_change.exc: unknown key; did you mean `exec`?",
                "rate_limits.alibab: unknown key; did you mean `alibaba`?",
            ]
        );
    }

    #[test]
    fn the_known_keys_come_from_the_raw_structs() {
        assert!(fields::<RawTicket>().contains(&"token_lifetime"));
        assert!(fields::<RawSink>().contains(&"type"));
        assert!(fields::<RawConfig>().contains(&"state_dir"));
    }
}
