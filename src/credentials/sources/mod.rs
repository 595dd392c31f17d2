//! Credential sources: where the keys of a `[credentials.NAME]` set come from, resolved the way the
//! vendors' SDKs do (spec section 4). [`fetch`] turns a
//! [`CredentialSpec`](crate::config::CredentialSpec) into
//! [`Credentials`](crate::credentials::Credentials) (temporary ones always carry `expires_at`);
//! [`refresher`] keeps them fresh.
//!
//! Vendor files: [`alibaba`] (env, RRSA OIDC, CLI/INI profiles, ECS RAM role) and [`tencent`]
//! (env, profile, CVM role, TKE OIDC); [`assume_role`] (Alibaba `ram_role_arn`, Tencent
//! `role_arn`: STS AssumeRole on top of another set) and [`uri`] (Alibaba `credentials_uri`);
//! [`ini`] is the small INI reader both profile formats share.
//!
//! Each source is one `Source` (`source.rs`: fetch, describe, watch, vars), implemented in its
//! own file (`given.rs` for static and in-memory keys, `env_source.rs`); `dispatch.rs` picks the
//! one a spec names for its vendor and walks the chain, and the environment snapshot holds the
//! union of the config's sources' `vars()`.
//!
//! This file is the facade: every child imports its siblings directly, never through it.

pub(crate) mod alibaba;
pub(crate) mod alibaba_profile;
mod answer;
pub(crate) mod assume_role;
mod chain;
pub(crate) mod cli_profile;
mod context;
mod dispatch;
pub(crate) mod env;
mod env_source;
mod given;
pub(crate) mod ini;
pub(crate) mod refresher;
mod snapshot;
mod source;
pub(crate) mod tencent;
mod timing;
pub(crate) mod uri;

#[cfg(test)]
pub(crate) use chain::chain_members;
pub(crate) use context::Context;
pub(crate) use dispatch::describe;
#[cfg(test)]
pub(crate) use dispatch::fetch;

#[cfg(test)]
mod source_tests;

#[cfg(test)]
mod source_contract_tests;

#[cfg(test)]
mod assume_role_tests;
