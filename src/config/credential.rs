//! A validated credential set as data: which vendor, where its keys come from ([`SourceSpec`]);
//! resolving them is `credentials`' job.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::http::Endpoint;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Alibaba,
    Tencent,
}

impl Vendor {
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Alibaba => "alibaba",
            Vendor::Tencent => "tencent",
        }
    }
}

/// A named credential set: which vendor, and where its keys come from.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialSpec {
    pub name: String,
    pub vendor: Vendor,
    pub source: SourceSpec,
}

/// Where keys come from. The values themselves never live in the config.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    /// Environment variables, read at start-up (and on reload).
    Env {
        id_var: String,
        secret_var: String,
        /// The variable holding an STS token; unset or empty means long-term keys.
        token_var: String,
    },
    /// Keys handed over in memory (`ticketd dev` and tests), never from a file.
    InMemory(StaticKeys),
    /// Keys written in the config file itself (`source = "static"`).
    Static(StaticKeys),
    /// A credentials file: Alibaba `~/.aliyun/config.json` then the INI file, Tencent
    /// `~/.tencentcloud/credentials`; re-read at a bounded interval.
    /// `sts_endpoint` and `metadata_endpoint` override the hosts the Alibaba CLI modes
    /// RamRoleArn, ChainableRamRoleArn, OIDC and EcsRamRole call.
    Profile {
        profile: Option<String>,
        file: Option<PathBuf>,
        sts_endpoint: Option<Endpoint>,
        metadata_endpoint: Option<Endpoint>,
    },
    /// Alibaba RRSA (`AssumeRoleWithOIDC`) or Tencent TKE (`AssumeRoleWithWebIdentity`), the
    /// role and token file named by the vendor's environment variables.
    Oidc(OidcSpec),
    /// Alibaba ECS instance RAM role (metadata service, IMDSv2 token).
    EcsRamRole(MetadataSpec),
    /// Tencent CVM instance role (metadata service).
    CvmRole(MetadataSpec),
    /// STS `AssumeRole` signed with the keys of another set (Alibaba `ram_role_arn`, Tencent
    /// `role_arn`), so chains such as ECS role -> cross-account role work.
    AssumeRole(AssumeRoleSpec),
    /// Alibaba `credentials_uri`: temporary keys from a local HTTP service (the URI set in the
    /// config, else `ALIBABA_CLOUD_CREDENTIALS_URI`).
    CredentialsUri(Option<reqwest::Url>),
    /// The vendor's default chain (spec section 4): the settings of its members; their order is
    /// the credential layer's (`credentials::sources::chain_members`), the first that yields keys wins.
    Chain(Box<ChainSpec>),
}

/// Keys given as they are (written in the file, or handed over in memory): the text of a key
/// pair, not yet credentials. Not printable: `Debug` shows only whether a token is present.
#[derive(Clone, PartialEq)]
pub struct StaticKeys {
    pub access_key_id: crate::secret::Secret,
    pub access_key_secret: crate::secret::Secret,
    /// An STS/session token: the keys are temporary.
    pub security_token: Option<crate::secret::Secret>,
    /// When keys handed over in memory stop working, when known (keys in the file: `None`).
    pub expires_at: Option<std::time::SystemTime>,
}

impl fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeys").field("temporary", &self.security_token.is_some()).finish_non_exhaustive()
    }
}

/// The settings of a default chain's members (`source = "chain"`, or no `source`): every
/// member's keys as written for that set; which members a vendor's chain has, and in which
/// order, the credential layer decides.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainSpec {
    /// The variables (a [`SourceSpec::Env`]).
    pub env: SourceSpec,
    /// The credentials files (a [`SourceSpec::Profile`]).
    pub profile: SourceSpec,
    pub oidc: OidcSpec,
    /// The instance role (ECS RAM role or CVM role, by vendor).
    pub instance: MetadataSpec,
    /// Alibaba's `credentials_uri`, when written (else the variable, when set).
    pub credentials_uri: Option<reqwest::Url>,
}

/// An STS `AssumeRole` on top of another credential set.
#[derive(Debug, Clone, PartialEq)]
pub struct AssumeRoleSpec {
    pub vendor: Vendor,
    /// The `[credentials.NAME]` whose keys sign the call (`base_credentials`).
    pub base: String,
    pub role_arn: String,
    /// Overrides `ALIBABA_CLOUD_ROLE_SESSION_NAME` / the default `ticketd-<unix seconds>`.
    pub role_session_name: Option<String>,
    pub external_id: Option<String>,
    /// A JSON policy document narrowing the role's permissions.
    pub policy: Option<String>,
    /// `DurationSeconds` (`session_duration`).
    pub duration: Duration,
    /// Overrides the vendor's STS host; tests use a loopback URL.
    pub sts_endpoint: Option<Endpoint>,
}

/// An STS web-identity exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct OidcSpec {
    /// Overrides the vendor's STS host (and the region/VPC variables); tests use a loopback URL.
    pub sts_endpoint: Option<Endpoint>,
    /// Overrides `ALIBABA_CLOUD_ROLE_SESSION_NAME` / the default session name.
    pub role_session_name: Option<String>,
    /// `DurationSeconds`.
    pub duration: Duration,
}

/// An instance metadata service.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataSpec {
    /// Overrides the metadata host (`http://100.100.100.200`, `http://metadata.tencentyun.com`).
    pub metadata_endpoint: Option<Endpoint>,
    /// The role; discovered from the metadata service when unset.
    pub role_name: Option<String>,
    /// Alibaba only: fall back to IMDSv1 when the IMDSv2 token cannot be fetched.
    pub imdsv1_fallback: bool,
}

impl SourceSpec {
    /// The `source = ...` name.
    pub fn name(&self) -> &'static str {
        match self {
            SourceSpec::Env { .. } => "env",
            SourceSpec::InMemory(_) => "in-memory",
            SourceSpec::Static(_) => "static",
            SourceSpec::Profile { .. } => "profile",
            SourceSpec::Oidc(_) => "oidc",
            SourceSpec::EcsRamRole(_) => "ecs_ram_role",
            SourceSpec::CvmRole(_) => "cvm_role",
            SourceSpec::AssumeRole(a) => match a.vendor {
                Vendor::Alibaba => "ram_role_arn",
                Vendor::Tencent => "role_arn",
            },
            SourceSpec::CredentialsUri(_) => "credentials_uri",
            SourceSpec::Chain(_) => "chain",
        }
    }
}
