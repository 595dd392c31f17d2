//! The INI subset the vendors' credential files use: `[section]`, `key = value`, `#`/`;` comments.

use std::collections::HashMap;

/// Sections by name, each a map of keys to values.
pub(crate) fn parse(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_string();
            sections.entry(name.clone()).or_default();
            current = Some(name);
        } else if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            let v = v.trim().trim_matches('"');
            sections.entry(section.clone()).or_default().insert(k.trim().to_string(), v.to_string());
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    #[test]
    fn sections_keys_and_comments() {
        let s = super::parse("# c\n[default]\nsecret_id = AKID1\n; x\nsecret_key=\"k\"\n[other]\na = b = c\n");
        assert_eq!(s["default"]["secret_id"], "AKID1");
        assert_eq!(s["default"]["secret_key"], "k");
        assert_eq!(s["other"]["a"], "b = c");
    }
}
