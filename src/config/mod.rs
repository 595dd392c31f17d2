//! The validated configuration.
//!
//! [`load`] reads a TOML file into `raw` structs mirroring the file, then `validate` builds a
//! [`Config`] with nothing left to fill in later, or returns every problem at once, each naming the
//! file, line and key.
//!
//! This file is the facade: every child imports its siblings directly, never through it.

pub(crate) mod check;
mod checked;
mod client;
pub(crate) mod cluster;
pub(crate) mod credential;
pub(crate) mod defaults;
mod lenient;
mod load;
pub(crate) mod locate;
mod problem;
pub(crate) mod raw;
mod sink;
mod spec;
mod split;
mod stream;
pub(crate) mod template;
mod ticket;
mod validate;

pub use checked::Checked;
pub use client::{ClientConfig, RegistryTicket, load_client, parse_client};
pub use cluster::{
    ClientCert, ClusterAuth, ClusterSpec, DEFAULT_CLUSTER_PREFIX, DEFAULT_LEASE_TTL, MAX_LEASE_TTL, MIN_LEASE_TTL,
    Scope,
};
pub use credential::{
    AssumeRoleSpec, ChainSpec, CredentialSpec, MetadataSpec, OidcSpec, SourceSpec, StaticKeys, Vendor,
};
pub use defaults::*;
pub(crate) use load::check_by_pieces;
pub use load::{check, check_read, config_dir, load, parse, parse_read, read, resolve_path};
pub use locate::KeyPath;
pub use problem::{Problem, Problems};
pub use sink::{DockerConfigSink, EnvNames, FileFormat, FileSink, SinkSpec};
pub use spec::{Config, RateLimits, SocketGroup, SocketSpec};
pub use ticket::{ConsumerSpec, HookSpec, TicketSettings, TicketSpec};

// The API-specific parts of a ticket are the APIs' own (`src/apis/<kind>/spec.rs`, pure data):
// re-exported here so that a ticket's settings read as one shape.
pub use crate::apis::dsw::spec::{DEFAULT_DSW_TOKEN_LIFETIME, DswSpec, DswTokenType, MAX_DSW_TOKEN_LIFETIME};
pub use crate::apis::kinds::{ApiSpec, Kind};
pub use crate::apis::sls::spec::{
    DEFAULT_SLS_TICKET_LIFETIME, DEFAULT_SLS_TOKEN_LIFETIME, MAX_SLS_TICKET_LIFETIME, MAX_SLS_TOKEN_LIFETIME,
    SLS_TICKET_HOSTS, SLS_TICKET_REGIONS, SlsSpec,
};
pub use crate::apis::tcr::spec::{DEFAULT_TCR_ENDPOINT, TcrSpec, TcrTokenType};
pub use crate::http::Endpoint;
