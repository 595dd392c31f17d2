//! The vendors' default credential chains: which sources a `source = "chain"` set tries, in which
//! order (the config holds only each member's settings, [`ChainSpec`]).

use crate::config::{ChainSpec, SourceSpec, Vendor};

/// The members of `vendor`'s default chain, in the order its SDK tries them.
pub(crate) fn chain_members(vendor: Vendor, chain: &ChainSpec) -> Vec<SourceSpec> {
    let ChainSpec { env, profile, oidc, instance, credentials_uri } = chain;
    match vendor {
        // Spec section 4.1: env, OIDC, CLI profile and INI file, ECS RAM role, credentials URI.
        Vendor::Alibaba => vec![
            env.clone(),
            SourceSpec::Oidc(oidc.clone()),
            profile.clone(),
            SourceSpec::EcsRamRole(instance.clone()),
            SourceSpec::CredentialsUri(credentials_uri.clone()),
        ],
        // Spec section 4.2 (Python order): env, profile, CVM role, TKE OIDC.
        Vendor::Tencent => {
            vec![env.clone(), profile.clone(), SourceSpec::CvmRole(instance.clone()), SourceSpec::Oidc(oidc.clone())]
        }
    }
}
