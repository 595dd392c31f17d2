//! The registry of APIs: one line per API names its `kind`, its variant and its spec type.
//!
//! `with_apis!` is that list; the data types generated here from it ([`Kind`], [`ApiSpec`]) are
//! pure data, low enough for `config` to hold, and `apis::registry` generates the behaviour
//! (validate, lifecycle, identity, call, ...) from the same list by the API's
//! [`Api`](crate::apis::api::Api) implementation. Adding an API: a folder `apis/<kind>/` with its
//! spec, section, client and `impl Api`, and one line below.

/// Calls `$then!` with every registered API as `Variant "kind" path::to::Spec`.
macro_rules! with_apis {
    ($then:ident) => {
        $then! {
            Sls "sls" crate::apis::sls::spec::SlsSpec,
            Dsw "dsw" crate::apis::dsw::spec::DswSpec,
            Tcr "tcr" crate::apis::tcr::spec::TcrSpec,
        }
    };
}
pub(crate) use with_apis;

macro_rules! data_types {
    ($($variant:ident $kind:literal $spec:ty,)+) => {
        /// Which API a ticket uses (`kind = "..."`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind {
            $(#[doc = concat!("`kind = \"", $kind, "\"`.")] $variant,)+
        }

        impl Kind {
            /// Every registered API, in registration order.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),+];

            /// The `kind = ...` name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Kind::$variant => $kind,)+
                }
            }

            /// The API named `kind = "<name>"`.
            pub fn from_name(name: &str) -> Option<Kind> {
                match name {
                    $($kind => Some(Kind::$variant),)+
                    _ => None,
                }
            }
        }

        /// The API-specific part of a ticket: its validated config section.
        #[derive(Debug, Clone, PartialEq)]
        pub enum ApiSpec {
            $($variant($spec),)+
        }

        impl ApiSpec {
            /// Which API this is.
            pub fn kind(&self) -> Kind {
                match self {
                    $(ApiSpec::$variant(_) => Kind::$variant,)+
                }
            }
        }
    };
}

with_apis!(data_types);

impl Kind {
    /// The registered names, as a message lists them: `sls, dsw or tcr`.
    pub fn names() -> String {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
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
    }
}
