//! The registry of APIs: one line per API names its `kind`, its variant, its spec type.
//!
//! `with_apis!` is that list; the data types generated here from it ([`Kind`], [`ApiSpec`]) are
//! pure data, low enough for `config` to hold, and `apis::registry` generates the behaviour
//! (validate, lifecycle, identity, call, ...) from the same list by the API's
//! [`Api`](crate::apis::api::Api) implementation. Adding an API: a folder `apis/<kind>/` (its
//! `mod.rs`; `spec.rs`, the validated spec and its keys as data, `impl Section`; `section.rs`,
//! their checks, `impl Validate`; `api.rs`, `impl Api`; `client.rs`, the calls), declared by
//! `pub mod <kind>;` in `apis/mod.rs`, and one line below. `apis/example/` (feature
//! `example-api`, test only) is such a folder, its line `#[cfg]`'d: an entry's attributes go on
//! everything made from it. Config's raw ticket, kind names, vendor rule, foreign-key table, sink
//! rules, the embedding route, `/metrics` and the scheduler's dispatch all read this list. What still names one API is that API's own feature: TCR's
//! long-term token revocation (`scheduler/revoke.rs`, `revocation/`, its record in `state.json`)
//! and TCR registries for docker and the kubelet (`config/client.rs`, `cli/registry_login.rs`),
//! plus the demo tickets of `cli/dev.rs`.

/// Calls `$then!` with every registered API as `#[attributes]* Variant "kind" path::to::Spec`;
/// an entry's attributes (a `#[cfg]`) are repeated on every variant and arm made from it.
macro_rules! with_apis {
    ($then:ident) => {
        $then! {
            Sls "sls" crate::apis::sls::spec::SlsSpec,
            Dsw "dsw" crate::apis::dsw::spec::DswSpec,
            Tcr "tcr" crate::apis::tcr::spec::TcrSpec,
            #[cfg(all(test, feature = "example-api"))]
            Example "example" crate::apis::example::spec::ExampleSpec,
        }
    };
}
pub(crate) use with_apis;

macro_rules! data_types {
    ($($(#[$meta:meta])* $variant:ident $kind:literal $spec:ty,)+) => {
        /// Which API a ticket uses (`kind = "..."`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind {
            $($(#[$meta])* #[doc = concat!("`kind = \"", $kind, "\"`.")] $variant,)+
        }

        impl Kind {
            /// Every registered API, in registration order.
            pub const ALL: &'static [Kind] = &[$($(#[$meta])* Kind::$variant),+];

            /// The `kind = ...` name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($(#[$meta])* Kind::$variant => $kind,)+
                }
            }

            /// The API named `kind = "<name>"`.
            pub fn from_name(name: &str) -> Option<Kind> {
                match name {
                    $($(#[$meta])* $kind => Some(Kind::$variant),)+
                    _ => None,
                }
            }
        }

        /// The API-specific part of a ticket: its validated config section.
        #[derive(Debug, Clone, PartialEq)]
        pub enum ApiSpec {
            $($(#[$meta])* $variant($spec),)+
        }

        impl Kind {
            /// `Section::KEYS` of this API: the ticket keys it reads.
            pub fn keys(self) -> &'static [Key] {
                match self {
                    $($(#[$meta])* Kind::$variant => <$spec as Section>::KEYS,)+
                }
            }

            /// `Section::VENDOR` of this API.
            pub fn vendor(self) -> Vendor {
                match self {
                    $($(#[$meta])* Kind::$variant => <$spec as Section>::VENDOR,)+
                }
            }

            /// `Section::URL_FORMAT` of this API.
            pub fn url_format(self) -> bool {
                match self {
                    $($(#[$meta])* Kind::$variant => <$spec as Section>::URL_FORMAT,)+
                }
            }

            /// `Section::USERNAME` of this API.
            pub fn username(self) -> bool {
                match self {
                    $($(#[$meta])* Kind::$variant => <$spec as Section>::USERNAME,)+
                }
            }

            /// `Section::DOCKER_CONFIG` of this API.
            pub fn docker_config(self) -> bool {
                match self {
                    $($(#[$meta])* Kind::$variant => <$spec as Section>::DOCKER_CONFIG,)+
                }
            }

            /// `Section::TICKET` of this API.
            pub fn ticket(self) -> bool {
                match self {
                    $($(#[$meta])* Kind::$variant => <$spec as Section>::TICKET,)+
                }
            }
        }

        impl ApiSpec {
            /// Which API this is.
            pub fn kind(&self) -> Kind {
                match self {
                    $($(#[$meta])* ApiSpec::$variant(_) => Kind::$variant,)+
                }
            }
        }
    };
}

use crate::apis::section::{Key, Section};
use crate::config::credential::Vendor;

with_apis!(data_types);

impl Kind {
    /// The registered names, as a message lists them: `sls, dsw or tcr`.
    pub fn names() -> String {
        Kind::names_of(|_| true)
    }

    /// The names of the APIs for which `which` holds, as a message lists them (`sls`).
    pub fn names_of(which: impl Fn(Kind) -> bool) -> String {
        let names: Vec<&str> = Kind::ALL.iter().filter(|k| which(**k)).map(|k| k.as_str()).collect();
        match names.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

impl Kind {
    /// The name with its article, as a message says it: `an sls`, `a tcr` (the names are spoken
    /// letter by letter, so "an" before a letter whose name starts with a vowel sound).
    pub fn a(self) -> String {
        let name = self.as_str();
        let an = name.starts_with(['a', 'e', 'f', 'h', 'i', 'l', 'm', 'n', 'o', 'r', 's', 'x']);
        format!("{} {name}", if an { "an" } else { "a" })
    }
}

/// Every API key of a ticket, each once, in registration order (the first API to declare a key
/// places it): the keys a `[[tickets]]` section may hold besides its own, and the order in which
/// keys of another kind are reported.
pub(crate) fn api_keys() -> &'static [Key] {
    static KEYS: std::sync::OnceLock<Vec<Key>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys: Vec<Key> = Vec::new();
        for key in Kind::ALL.iter().flat_map(|kind| kind.keys()) {
            if !keys.iter().any(|k| k.name == key.name) {
                keys.push(*key);
            }
        }
        keys
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_named_once_and_found_by_its_name() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.as_str()), Some(*kind));
        }
        assert_eq!(Kind::from_name("ecr"), None);
        assert_eq!(Kind::names(), "sls, dsw or tcr");
        assert_eq!([Kind::Sls.a(), Kind::Dsw.a(), Kind::Tcr.a()], ["an sls", "a dsw", "a tcr"]);
        assert_eq!(Kind::names_of(Kind::url_format), "sls");
        assert_eq!(Kind::names_of(Kind::docker_config), "tcr");
    }

    /// The union of the APIs' keys is the list the ticket section had before the registry, in
    /// its order (the order "does not apply" problems come in), and no two APIs read one key in
    /// different shapes.
    #[test]
    fn the_api_keys_are_each_api_s_keys_once_in_registration_order() {
        let names: Vec<&str> = api_keys().iter().map(|k| k.name).collect();
        assert_eq!(
            names,
            [
                "endpoint",
                "ticket_lifetime",
                "token_lifetime",
                "ticket_renew_before",
                "signature_method",
                "console_url",
                "console_params",
                "region",
                "network",
                "instance_id",
                "token_type",
                "audience",
                "registry_id",
                "description",
                "registry",
            ]
        );
        for kind in Kind::ALL {
            for key in kind.keys() {
                let shared = api_keys().iter().find(|k| k.name == key.name).unwrap();
                assert_eq!(shared.shape, key.shape, "{} reads `{}` in another shape", kind.as_str(), key.name);
            }
        }
    }
}
