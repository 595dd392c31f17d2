//! RFC 3986 percent-encoding, as the Alibaba schemes canonicalise queries or parameters.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but the unreserved `A-Z a-z 0-9 - . _ ~` is `%XX` (so space is `%20`, `*` is `%2A`).
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'~').remove(b'_').remove(b'.').remove(b'-');

pub(crate) fn encode(text: &str) -> String {
    utf8_percent_encode(text, RESERVED).collect()
}

/// `pct(k)=pct(v)` pairs, sorted by encoded key then value, joined by `&`.
pub(crate) fn sorted_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut encoded: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (encode(k), encode(v))).collect();
    encoded.sort_unstable();
    encoded.iter().map(|(k, v)| [k.as_str(), v.as_str()].join("=")).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    #[test]
    fn unreserved_stay_and_keys_sort_before_longer_keys() {
        assert_eq!(super::encode("a b*~-_.+/é"), "a%20b%2A~-_.%2B%2F%C3%A9");
        assert_eq!(super::sorted_pairs([("a1", "x"), ("a", "y z"), ("A", "")]), "A=&a=y%20z&a1=x");
    }
}
