//! The Alibaba RPC ("POP v1") signature checked as STS does: `base64(HMAC-SHA1(secret + "&",
//! METHOD&%2F&pct(sorted pct(k)=pct(v) pairs)))` over every parameter but `Signature`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::verify::{mac, pct};

/// The `SignatureMethod` accepted.
pub(crate) const SIGNATURE_METHOD: &str = "HMAC-SHA1";
/// The `SignatureVersion` accepted.
pub(crate) const SIGNATURE_VERSION: &str = "1.0";

/// The signature `params` (query and form body together, `Signature` left out) should carry.
pub(crate) fn expected(method: &str, params: &[(&str, &str)], secret: &str) -> String {
    let to_sign = [method.to_owned(), pct::encode("/"), pct::encode(&pct::sorted_pairs(params.iter().copied()))];
    B64.encode(mac::hmac_sha1(format!("{secret}&").as_bytes(), to_sign.join("&").as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::expected;

    #[test]
    fn string_to_sign_is_method_slash_and_the_sorted_pairs_encoded_twice() {
        let by_hand = crate::verify::mac::hmac_sha1(b"secret&", b"POST&%2F&a%3D1%26b%3D2%25203");
        assert_eq!(
            expected("POST", &[("b", "2 3"), ("a", "1")], "secret"),
            base64::Engine::encode(&super::B64, by_hand)
        );
    }

    /// The worked example of Alibaba's "RPC signature" document (ECS `DescribeRegions`).
    #[test]
    fn the_documented_example() {
        let doc = "Timestamp=2016-02-23T12:46:24Z Format=XML AccessKeyId=testid Action=DescribeRegions \
                   SignatureMethod=HMAC-SHA1 SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf \
                   Version=2014-05-26 SignatureVersion=1.0";
        let params: Vec<(&str, &str)> = doc.split_whitespace().filter_map(|p| p.split_once('=')).collect();
        assert_eq!(params.len(), 8);
        assert_eq!(expected("GET", &params, "testsecret"), "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
        assert_eq!(expected("POST", &params, "testsecret"), "MxbnVAM4w6sft9xjVpe/GCKueuk=");
    }
}
