//! The SLS share URL: the console link that opens a dashboard with the current ticket.

use zeroize::Zeroizing;

use crate::apis::sls::spec::SlsSpec;

/// The SLS share URL: `console_url` + `sls_ticket=<ticket>&supportRefreshToken=true` + `console_params`
/// (appended to a query `console_url` has, before its fragment, as `url`'s `query_pairs_mut`
/// does), built in a string of exactly its length.
pub(crate) fn share_url(sls: &SlsSpec, ticket: &str) -> Option<Zeroizing<String>> {
    use url::form_urlencoded::{Serializer, byte_serialize};
    let base = sls.console_url.as_deref()?;
    let mut url = url::Url::parse(base).ok()?;
    let fragment = url.fragment().map(str::to_string);
    url.set_fragment(None);
    let pairs = [("sls_ticket", ticket), ("supportRefreshToken", "true")]
        .into_iter()
        .chain(sls.console_params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let encoded = |text: &str| byte_serialize(text.as_bytes()).map(str::len).sum::<usize>();
    let query_len: usize = pairs.clone().map(|(k, v)| encoded(k) + 1 + encoded(v) + 1).sum();
    let length = url.as_str().len() + 1 + query_len + fragment.as_ref().map_or(0, |f| 1 + f.len());
    let mut out = Zeroizing::new(String::with_capacity(length));
    out.push_str(url.as_str());
    if url.query().is_none() {
        out.push('?');
    }
    let start = url.query().map_or(out.len(), |q| out.len() - q.len());
    {
        let mut query = Serializer::for_suffix(&mut *out, start);
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
        query.finish();
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(&fragment);
    }
    debug_assert!(out.len() <= length, "the share URL outgrew its buffer");
    Some(out)
}
