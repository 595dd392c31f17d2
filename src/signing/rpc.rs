//! The Alibaba RPC ("POP v1") signature, as `aliyun/credentials-go` signs STS `AssumeRole`
//! (`providers/ram_role_arn.go`): every parameter (query and form body alike, `Signature` left
//! out) is percent-encoded the RFC 3986 way, sorted by key and joined as `k=v&...`; the string to
//! sign is `METHOD&%2F&<that, percent-encoded again>`; the signature is
//! `base64(HMAC-SHA1(secret + "&", string_to_sign))`, sent as the `Signature` query parameter.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::acs3::percent_encode;

/// `SignatureMethod`.
pub(crate) const SIGNATURE_METHOD: &str = "HMAC-SHA1";
/// `SignatureVersion`.
pub(crate) const SIGNATURE_VERSION: &str = "1.0";

/// The canonicalized query: `pct(key)=pct(value)` sorted by key and joined by `&`.
pub(crate) fn canonicalized<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    super::acs3::canonical_query(params)
}

/// `METHOD&%2F&pct(canonicalized)`.
pub(crate) fn string_to_sign(method: &str, canonicalized: &str) -> String {
    format!("{method}&{}&{}", percent_encode("/"), percent_encode(canonicalized))
}

/// `base64(HMAC-SHA1(secret + "&", string_to_sign))`.
pub(crate) fn signature(secret: &str, string_to_sign: &str) -> String {
    let mut key = zeroize::Zeroizing::new(String::with_capacity(secret.len() + 1));
    key.push_str(secret);
    key.push('&');
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(string_to_sign.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// The signature of `params` (without `Signature`) sent with `method`.
pub(crate) fn sign<K: AsRef<str>, V: AsRef<str>>(method: &str, params: &[(K, V)], secret: &str) -> String {
    signature(secret, &string_to_sign(method, &canonicalized(params)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Alibaba's "RPC signature" document (ECS `DescribeRegions`, AK
    /// `testid`, secret `testsecret`): its string to sign and signature, byte for byte.
    const DOC: [(&str, &str); 8] = [
        ("Timestamp", "2016-02-23T12:46:24Z"),
        ("Format", "XML"),
        ("AccessKeyId", "testid"),
        ("Action", "DescribeRegions"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
        ("Version", "2014-05-26"),
        ("SignatureVersion", "1.0"),
    ];

    #[test]
    fn the_documented_rpc_example_signs_byte_for_byte() {
        let c = canonicalized(&DOC);
        assert_eq!(
            string_to_sign("GET", &c),
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML\
             %26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf\
             %26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(sign("GET", &DOC, "testsecret"), "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
        // The same parameters POSTed (as AssumeRole is): only the verb changes.
        assert_eq!(sign("POST", &DOC, "testsecret"), "MxbnVAM4w6sft9xjVpe/GCKueuk=");
    }

    #[test]
    fn values_are_encoded_the_rfc_3986_way() {
        let c = canonicalized(&[("Policy", "{\"a\": \"b*c~\"}"), ("RoleArn", "acs:ram::1:role/x")]);
        assert_eq!(c, "Policy=%7B%22a%22%3A%20%22b%2Ac~%22%7D&RoleArn=acs%3Aram%3A%3A1%3Arole%2Fx");
    }
}
