//! Checking a ticket's API keys: the trait each API's `section.rs` implements ([`Validate`]), with
//! the dispatch to the ticket kind's, generated from the registry (`apis/kinds.rs`).

use crate::apis::kinds::{ApiSpec, Kind, with_apis};
use crate::apis::section::{RawKeys, Section};
use crate::config::check::Checker;
use crate::config::locate::KeyPath;

/// What a section's checks may need of the rest of its ticket.
pub(crate) struct TicketContext {
    /// Whether one of the ticket's file sinks has `format = "url"`.
    pub(crate) url_sink: bool,
}

/// An API's checks of its keys ([`Section::KEYS`]), implemented by its spec type in
/// `apis/<kind>/section.rs`: every problem reported at its key through `c`, the spec only when
/// there was none.
pub(crate) trait Validate: Section + Sized {
    fn validate(c: &mut Checker<'_>, keys: &RawKeys, at: &KeyPath, ticket: &TicketContext) -> Option<Self>;
}

macro_rules! dispatch {
    ($($(#[$meta:meta])* $variant:ident $kind:literal $spec:ty,)+) => {
        /// Check the `keys` of a `kind` ticket at `at` with that API's [`Validate`].
        pub(crate) fn validate(
            kind: Kind,
            c: &mut Checker<'_>,
            keys: &RawKeys,
            at: &KeyPath,
            ticket: &TicketContext,
        ) -> Option<ApiSpec> {
            match kind {
                $($(#[$meta])* Kind::$variant => <$spec as Validate>::validate(c, keys, at, ticket).map(ApiSpec::$variant),)+
            }
        }
    };
}

with_apis!(dispatch);

#[cfg(test)]
mod tests {
    use crate::apis::kinds::{Kind, api_keys};
    use crate::apis::section::Shape;

    /// Every kind's section refuses each key of the other kinds with the text the ticket check
    /// always gave, at the key's file:line (the report lists them in the file's order).
    #[test]
    fn each_kind_refuses_every_key_of_the_other_kinds() {
        for &kind in Kind::ALL {
            let foreign: Vec<_> =
                api_keys().iter().filter(|key| !kind.keys().iter().any(|k| k.name == key.name)).collect();
            assert!(!foreign.is_empty(), "{} reads every key", kind.as_str());
            let mut text = format!("[[tickets]]\nname = \"t\"\nkind = \"{}\"\ncredentials = \"c\"\n", kind.as_str());
            for key in foreign.iter().rev() {
                match key.shape {
                    Shape::Text | Shape::Duration => text.push_str(&format!("{} = \"1h\"\n", key.name)),
                    Shape::Table => text.push_str(&format!("{} = {{ a = \"b\" }}\n", key.name)),
                }
            }
            let problems = crate::config::parse(&text, "t.toml").expect_err("foreign keys are refused");
            let refused: Vec<String> = problems
                .0
                .iter()
                .filter(|p| p.message.starts_with("does not apply"))
                .map(|p| format!("{}:{}: {}", p.line.unwrap(), p.key, p.message))
                .collect();
            let line = |name: &str| 5 + foreign.len() - 1 - foreign.iter().position(|k| k.name == name).unwrap();
            let expected: Vec<String> = foreign
                .iter()
                .rev()
                .map(|k| {
                    format!("{}:tickets[0].{}: does not apply to kind = \"{}\"", line(k.name), k.name, kind.as_str())
                })
                .collect();
            assert_eq!(refused, expected, "{text}");
        }
    }

    /// The kind names a message lists come from the registry.
    #[test]
    fn an_unknown_kind_is_refused_with_the_registered_names() {
        let problems = crate::config::parse("[[tickets]]\nname = \"t\"\nkind = \"ecr\"\n", "t.toml").unwrap_err();
        let expected = format!("unknown kind `ecr` (expected {})", Kind::names());
        assert!(problems.0.iter().any(|p| p.key == "tickets[0].kind" && p.message == expected), "{problems}");
        assert_eq!(Kind::names(), "sls, dsw or tcr");
    }
}
