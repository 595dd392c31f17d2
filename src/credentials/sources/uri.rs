//! Alibaba `source = "credentials_uri"`, as `aliyun/credentials-go` `providers/uri.go` reads it.
//!
//! Also the last member of the default chain when `ALIBABA_CLOUD_CREDENTIALS_URI` is set: `GET
//! <uri>`, HTTP 200 with `{"AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}`, all
//! four required.

use serde::Deserialize;

use super::answer::{Fetched, SourceError, parse_expiration};
use super::context::Context;
use super::source::{Fetching, Source};
pub(crate) use crate::config::check::parse_uri;
use crate::credentials::keys::Credentials;
use crate::secret::Secret;

/// The variable the SDKs read the URI from.
pub(crate) const CREDENTIALS_URI_ENV: &str = "ALIBABA_CLOUD_CREDENTIALS_URI";

/// The URI without its query (which may hold a token), for logs and errors.
pub(crate) fn shown(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UriAnswer {
    access_key_id: Option<String>,
    access_key_secret: Option<String>,
    security_token: Option<String>,
    expiration: Option<String>,
}

/// The URI to read: the configured one, else the variable (absent when neither is set).
pub(crate) fn uri_of(
    configured: Option<&reqwest::Url>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<reqwest::Url, SourceError> {
    match configured {
        Some(u) => Ok(u.clone()),
        None => {
            let text = var(CREDENTIALS_URI_ENV)
                .ok_or_else(|| SourceError::Absent(format!("{CREDENTIALS_URI_ENV} is not set")))?;
            parse_uri(&text).map_err(|e| SourceError::Failed(format!("{CREDENTIALS_URI_ENV}: {e}")))
        }
    }
}

/// One `GET` of the credentials URI.
pub(crate) async fn fetch(configured: Option<&reqwest::Url>, ctx: &Context) -> Result<Fetched, SourceError> {
    let url = uri_of(configured, &|v| ctx.var(v))?;
    let at = shown(&url);
    let response = ctx
        .http
        .get(url)
        .send()
        .await
        .map_err(|e| SourceError::Failed(format!("credentials URI {at}: {}", e.without_url())))?;
    let status = response.status();
    let body = crate::http::read_limited(response)
        .await
        .map_err(|e| SourceError::Failed(format!("credentials URI {at}: {e}")))?;
    let body = zeroize::Zeroizing::new(body);
    if !status.is_success() {
        // Not the body: it is the service's text, and may quote anything.
        return Err(SourceError::Failed(format!("credentials URI {at}: HTTP {status}")));
    }
    let answer: UriAnswer = serde_json::from_slice(&body).map_err(|e| {
        SourceError::Failed(format!(
            "credentials URI {at}: not the expected JSON ({})",
            crate::secret::json_error_without_values(&e)
        ))
    })?;
    let field = |v: Option<String>, f: &str| {
        v.filter(|s| !s.is_empty())
            .ok_or_else(|| SourceError::Failed(format!("credentials URI {at}: no {f} in the answer")))
    };
    let expires_at = parse_expiration(&field(answer.expiration, "Expiration")?)?;
    Ok(Fetched {
        credentials: Credentials {
            access_key_id: Secret::new(field(answer.access_key_id, "AccessKeyId")?),
            access_key_secret: Secret::new(field(answer.access_key_secret, "AccessKeySecret")?),
            security_token: Some(Secret::new(field(answer.security_token, "SecurityToken")?)),
            expires_at: Some(expires_at),
        },
        description: format!("credentials_uri ({at})"),
    })
}

/// Alibaba `source = "credentials_uri"`: the configured URI, else the variable's.
pub(crate) struct CredentialsUri<'a>(pub Option<&'a reqwest::Url>);

impl Source for CredentialsUri<'_> {
    fn fetch<'a>(&'a self, ctx: &'a Context) -> Fetching<'a> {
        Box::pin(fetch(self.0, ctx))
    }

    fn describe(&self, var: &dyn Fn(&str) -> Option<String>) -> Result<String, SourceError> {
        uri_of(self.0, var).map(|u| format!("credentials_uri ({})", shown(&u)))
    }

    fn vars(&self) -> Vec<&str> {
        vec![CREDENTIALS_URI_ENV]
    }
}

#[cfg(test)]
mod tests {
    /// A credentials URI may carry a token in its query: a refused one is named without it.
    #[test]
    fn a_refused_uri_is_named_without_its_query() {
        for text in ["ftp://agent/creds?token=s3cr3t", "not a url?token=s3cr3t"] {
            let e = super::parse_uri(text).unwrap_err().to_string();
            assert!(!e.contains("s3cr3t"), "{e}");
        }
        let url = super::parse_uri("http://127.0.0.1:8080/creds?token=s3cr3t").unwrap();
        assert_eq!(url.query(), Some("token=s3cr3t"), "the query is kept in the URI itself");
    }

    /// Each refusal is a typed `UriError` with the text the `String` error had.
    #[test]
    fn each_refused_uri_says_what_is_wrong_in_the_old_words() {
        use crate::config::check::UriError;
        let kind = |e: &UriError| match e {
            UriError::NotAUrl { .. } => "not a URL",
            UriError::Scheme { .. } => "scheme",
            UriError::NoHost { .. } => "no host",
            UriError::UserInfo => "user info",
        };
        let cases = [
            ("not a url?t=1", "not a URL", "`not a url` is not a URL (relative URL without a base)"),
            ("ftp://agent/c?t=1", "scheme", "`ftp://agent/c`: scheme ftp is not http(s)"),
            ("http://u:p@agent/c", "user info", "a credentials URI has no user info (the value is not shown)"),
            ("unix:/run/agent?t=1", "scheme", "`unix:/run/agent`: scheme unix is not http(s)"),
        ];
        for (text, wanted, said) in cases {
            let e = super::parse_uri(text).unwrap_err();
            assert_eq!(kind(&e), wanted, "{text}: {e:?}");
            assert_eq!(e.to_string(), said);
        }
        let e = super::uri_of(None, &|_| Some("ftp://x/".into())).unwrap_err();
        assert_eq!(e.detail(), "ALIBABA_CLOUD_CREDENTIALS_URI: `ftp://x/`: scheme ftp is not http(s)");
    }
}
