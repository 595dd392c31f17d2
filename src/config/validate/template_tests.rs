//! Tests of `format = "template"` sinks in the config: the keys, the template read at load, every
//! check-time error with the template's (or the config's) file and line.

use std::path::Path;

use crate::config::*;

const HEAD: &str = r#"state_dir = "/tmp/ticketd-test"

[credentials.tc]
vendor = "tencent"

[[tickets]]
name = "registry"
kind = "tcr"
credentials = "tc"
region = "ap-guangzhou"
registry_id = "tcr-abcd1234"
registry = "myreg.tencentcloudcr.com"

[[tickets.sinks]]
type = "file"
path = "/run/ticketd/npmrc"
"#;

/// The config `HEAD` + `sink` (the sink's remaining keys) in `dir`/t.toml, with the files
/// `files` beside it: every problem, as printed.
fn problems(dir: &Path, sink: &str, files: &[(&str, &str)]) -> Vec<String> {
    match load_in(dir, sink, files) {
        Ok(_) => Vec::new(),
        Err(p) => p.0.iter().map(|p| p.to_string()).collect(),
    }
}

fn load_in(dir: &Path, sink: &str, files: &[(&str, &str)]) -> Result<Config, Problems> {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let text = format!("{HEAD}{sink}");
    let path = dir.join("t.toml");
    std::fs::write(&path, &text).unwrap();
    parse_read(&text, &path)
}

fn dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let shown = std::fs::canonicalize(dir.path()).unwrap().display().to_string();
    (dir, shown)
}

fn template_of(config: &Config) -> &template::SinkTemplate {
    let SinkSpec::File(FileSink { format: FileFormat::Template(t), .. }) = &config.tickets[0].sinks[0] else {
        panic!("not a template sink")
    };
    t
}

#[test]
fn a_template_file_is_read_at_load_relative_to_the_config() {
    let (dir, shown) = dir();
    let sink = "format = \"template\"\ntemplate = \"npmrc.tmpl\"\ntemplate_env = [\"HOME\"]\n";
    let config = load_in(dir.path(), sink, &[("npmrc.tmpl", "//{{ env.HOME }}/:_authToken={{ token }}\n")]).unwrap();
    let t = template_of(&config);
    assert_eq!(&*t.text, "//{{ env.HOME }}/:_authToken={{ token }}\n");
    assert_eq!(t.origin, template::TemplateOrigin::File(format!("{shown}/npmrc.tmpl").into()));
    assert_eq!(&*t.env, ["HOME".to_string()]);
    // An edited template is a changed sink: a reload writes it again.
    let edited = load_in(dir.path(), sink, &[("npmrc.tmpl", "{{ token }}\n")]).unwrap();
    assert_ne!(config.tickets[0].sinks, edited.tickets[0].sinks);
}

#[test]
fn an_unknown_field_in_a_template_file_is_reported_at_the_template_line() {
    let (dir, shown) = dir();
    let sink = "format = \"template\"\ntemplate = \"npmrc.tmpl\"\n";
    assert_eq!(
        problems(dir.path(), sink, &[("npmrc.tmpl", "# npm\n\n//r/:_authToken={{ tokn }}\n")]),
        [format!(
            "{shown}/npmrc.tmpl:3: tickets[0].sinks[0].template: unknown field `tokn` (the fields are `name`, `kind`, \
             `access_token`, `token`, `username`, `expires_at`, `generation` and `env.NAME`) (the template of \
             {}/t.toml:18)",
            dir.path().display()
        )]
    );
}

#[test]
fn a_template_that_does_not_parse_is_reported_at_its_line() {
    let (dir, shown) = dir();
    let sink = "format = \"template\"\ntemplate = \"bad.tmpl\"\n";
    let p = problems(dir.path(), sink, &[("bad.tmpl", "ok\n{% if token %}\nno end\n")]);
    assert_eq!(
        p,
        [format!(
            "{shown}/bad.tmpl:3: tickets[0].sinks[0].template: syntax error: unexpected end of input, expected end \
             of block (the template of {}/t.toml:18)",
            dir.path().display()
        )]
    );
}

#[test]
fn a_field_the_kind_lacks_is_a_config_error_for_that_ticket() {
    let (dir, _) = dir();
    let sink = "format = \"template\"\ntemplate_text = \"\"\"\nline one\n{{ ticket }}\"\"\"\n";
    assert_eq!(
        problems(dir.path(), sink, &[]),
        [format!(
            "{}/t.toml:18:1: tickets[0].sinks[0].template_text: template line 2: a tcr ticket has no `ticket` field \
             (sls tickets have it)",
            dir.path().display()
        )]
    );
}

#[test]
fn include_and_env_names_not_allowed_are_config_errors() {
    let (dir, _) = dir();
    let file = dir.path().display().to_string();
    let sink = "format = \"template\"\ntemplate_text = \"{% include '/etc/shadow' %}\"\n";
    assert_eq!(
        problems(dir.path(), sink, &[]),
        [format!(
            "{file}/t.toml:18:1: tickets[0].sinks[0].template_text: template line 1: syntax error: unknown statement \
             include (a template is one file: it cannot include, import or extend others)"
        )]
    );
    let sink = "format = \"template\"\ntemplate_text = \"{{ env.SECRET_KEY }}\"\ntemplate_env = [\"HOME\", \"1BAD\"]\n";
    assert_eq!(
        problems(dir.path(), sink, &[]),
        [
            format!(
                "{file}/t.toml:18:1: tickets[0].sinks[0].template_text: template line 1: `env.SECRET_KEY` is not \
                 allowed: list `SECRET_KEY` in the sink's `template_env`"
            ),
            format!(
                "{file}/t.toml:19:1: tickets[0].sinks[0].template_env: `1BAD` is not an environment variable name \
                 (letters, digits, `_`)"
            ),
        ]
    );
}

#[test]
fn exactly_one_of_template_and_template_text() {
    let (dir, _) = dir();
    let file = dir.path().display().to_string();
    let both = "format = \"template\"\ntemplate = \"a.tmpl\"\ntemplate_text = \"x\"\n";
    assert_eq!(
        problems(dir.path(), both, &[("a.tmpl", "x")]),
        [format!(
            "{file}/t.toml:19:1: tickets[0].sinks[0].template_text: give either `template` (a file) or \
             `template_text`, not both"
        )]
    );
    assert_eq!(
        problems(dir.path(), "format = \"template\"\n", &[]),
        [format!(
            "{file}/t.toml:17:1: tickets[0].sinks[0].format: format = \"template\" needs `template` (a file) or \
             `template_text`"
        )]
    );
    let missing = problems(dir.path(), "format = \"template\"\ntemplate = \"gone.tmpl\"\n", &[]);
    let shown = std::fs::canonicalize(dir.path()).unwrap().display().to_string();
    assert_eq!(
        missing,
        [format!(
            "{file}/t.toml:18:1: tickets[0].sinks[0].template: cannot read the template {shown}/gone.tmpl: No such \
             file or directory (os error 2)"
        )]
    );
}

#[test]
fn template_keys_apply_only_to_format_template() {
    let (dir, _) = dir();
    let file = dir.path().display().to_string();
    let sink = "format = \"json\"\ntemplate_text = \"x\"\ntemplate_env = [\"HOME\"]\n";
    assert_eq!(
        problems(dir.path(), sink, &[]),
        [
            format!("{file}/t.toml:18:1: tickets[0].sinks[0].template_text: applies only to format = \"template\""),
            format!("{file}/t.toml:19:1: tickets[0].sinks[0].template_env: applies only to format = \"template\""),
        ]
    );
}
