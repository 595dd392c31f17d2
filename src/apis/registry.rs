//! The registered APIs' behaviour: [`ApiSpec`] or [`Kind`] dispatching to each API's [`Api`]
//! implementation, generated from the one list in `apis/kinds.rs`.

use zeroize::Zeroizing;

use crate::apis::api::{Api, CallContext, CallKind, Lifecycle};
use crate::apis::error::{ApiErrorKind, ProviderError};
use crate::apis::kinds::{ApiSpec, Kind, with_apis};
use crate::apis::operation::{BoxFuture, Operation};
use crate::credentials::Credentials;
use crate::token::Issued;

macro_rules! behaviour {
    ($($(#[$meta:meta])* $variant:ident $kind:literal $spec:ty,)+) => {
        impl ApiSpec {
            /// [`Api::lifecycle`] of this ticket's API.
            pub fn lifecycle(&self) -> Lifecycle {
                match self {
                    $($(#[$meta])* ApiSpec::$variant(spec) => Api::lifecycle(spec),)+
                }
            }

            /// [`Api::call_kind`] of this ticket's API.
            pub fn call_kind(&self, op: &Operation) -> CallKind {
                match self {
                    $($(#[$meta])* ApiSpec::$variant(spec) => Api::call_kind(spec, op),)+
                }
            }

            /// [`Api::identity`] of this ticket's API.
            pub fn identity(&self) -> String {
                match self {
                    $($(#[$meta])* ApiSpec::$variant(spec) => Api::identity(spec),)+
                }
            }

            /// [`Api::rate_limit_key`] of this ticket's API.
            pub fn rate_limit_key(&self) -> String {
                match self {
                    $($(#[$meta])* ApiSpec::$variant(spec) => Api::rate_limit_key(spec),)+
                }
            }

            /// [`Api::share_url`] of this ticket's API.
            pub fn share_url(&self, ticket: &str) -> Option<Zeroizing<String>> {
                match self {
                    $($(#[$meta])* ApiSpec::$variant(spec) => Api::share_url(spec, ticket),)+
                }
            }

            /// [`Api::call`] of this ticket's API.
            pub fn call(
                &self,
                context: &CallContext,
                op: Operation,
                credentials: Credentials,
            ) -> BoxFuture<Result<Issued, ProviderError>> {
                // One boxed future, owning what the call borrows, for every API.
                let (spec, context) = (self.clone(), context.clone());
                Box::pin(async move {
                    match &spec {
                        $($(#[$meta])* ApiSpec::$variant(spec) => Api::call(spec, &context, op, &credentials).await,)+
                    }
                })
            }
        }

        impl Kind {
            /// [`Api::EMBEDS`] of this API.
            pub fn embeds(self) -> bool {
                match self {
                    $($(#[$meta])* Kind::$variant => <$spec as Api>::EMBEDS,)+
                }
            }

            /// [`Api::classify`] of this API.
            pub fn classify(self, status: u16, code: &str) -> ApiErrorKind {
                match self {
                    $($(#[$meta])* Kind::$variant => <$spec as Api>::classify(status, code),)+
                }
            }
        }
    };
}

with_apis!(behaviour);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::apis::dsw::spec::DswSpec;
    use crate::apis::sls::spec::SlsSpec;
    use crate::apis::tcr::spec::{LONGTERM_RENEW_BEFORE, TcrSpec, TcrTokenType};
    use crate::config::credential::Vendor;
    use crate::http::Endpoint;
    use crate::signing::sls::V1Mac;

    fn endpoint(host: &str) -> Endpoint {
        Endpoint { base: reqwest::Url::parse(&format!("https://{host}")).unwrap() }
    }

    /// The registry dispatches to each API's own rules: the lifecycle, vendor, identity (the
    /// strings `state.json` holds, unchanged from before the registry) and rate-limit key.
    #[test]
    fn each_kind_dispatches_to_its_own_api() {
        let sls = ApiSpec::Sls(SlsSpec {
            endpoint: endpoint("cn-shanghai.log.aliyuncs.com"),
            ticket_lifetime: Duration::from_secs(86_400),
            token_lifetime: Duration::from_secs(3_600),
            ticket_renew_before: Duration::from_secs(600),
            signature: V1Mac::HmacSha256,
            console_url: None,
            console_params: Vec::new(),
        });
        let dsw = ApiSpec::Dsw(DswSpec {
            endpoint: endpoint("pai-dsw.cn-hangzhou.aliyuncs.com"),
            instance_id: "dsw-1".into(),
            token_lifetime: Duration::from_secs(3_600),
            token_type: None,
            audience: None,
        });
        let tcr = TcrSpec {
            endpoint: endpoint("tcr.tencentcloudapi.com"),
            region: "ap-guangzhou".into(),
            registry_id: "tcr-1".into(),
            token_type: TcrTokenType::LongTerm,
            token_type_written: true,
            description: None,
            registry: None,
        };
        let temp = ApiSpec::Tcr(TcrSpec { token_type: TcrTokenType::Temp, ..tcr.clone() });
        let tcr = ApiSpec::Tcr(tcr);

        assert_eq!(sls.lifecycle(), Lifecycle::TicketAndToken { renew_before: Duration::from_secs(600) });
        assert_eq!(dsw.lifecycle(), Lifecycle::SingleCall);
        assert_eq!(temp.lifecycle(), Lifecycle::SingleCall);
        assert_eq!(tcr.lifecycle(), Lifecycle::LongTerm { renew_before: LONGTERM_RENEW_BEFORE });

        assert_eq!(sls.identity(), "sls endpoint=https://cn-shanghai.log.aliyuncs.com");
        assert_eq!(
            dsw.identity(),
            "dsw endpoint=https://pai-dsw.cn-hangzhou.aliyuncs.com instance_id=dsw-1 token_type=Access audience="
        );
        assert_eq!(
            tcr.identity(),
            "tcr endpoint=https://tcr.tencentcloudapi.com registry_id=tcr-1 token_type=longterm"
        );

        assert_eq!(sls.rate_limit_key(), "https://cn-shanghai.log.aliyuncs.com");
        assert_eq!(tcr.rate_limit_key(), "https://tcr.tencentcloudapi.com");

        assert_eq!([sls.kind(), dsw.kind(), tcr.kind()], [Kind::Sls, Kind::Dsw, Kind::Tcr]);
        assert_eq!(Kind::Sls.vendor(), Vendor::Alibaba);
        assert_eq!(Kind::Dsw.vendor(), Vendor::Alibaba);
        assert_eq!(Kind::Tcr.vendor(), Vendor::Tencent);
        assert_eq!(Kind::ALL.iter().filter(|k| k.embeds()).collect::<Vec<_>>(), [&Kind::Sls]);
        assert_eq!(Kind::Sls.classify(400, "RequestTimeExpired"), ApiErrorKind::ClockSkew);
        assert_eq!(Kind::Tcr.classify(200, "RequestLimitExceeded"), ApiErrorKind::Transient);
    }
}
