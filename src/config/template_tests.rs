//! Tests of the template engine: the check-time errors with their lines, the escaping filters, the
//! output bounds, the per-load memo.

use super::*;

fn inline(text: &str, env: &[&str]) -> SinkTemplate {
    SinkTemplate {
        text: Arc::from(text),
        origin: TemplateOrigin::Inline { file: "t.toml".into(), key: "tickets[0].sinks[0].template_text".into() },
        env: env.iter().map(|s| s.to_string()).collect(),
    }
}

fn err(text: &str, kind: Kind) -> String {
    check(&inline(text, &["HOME"]), kind).unwrap_err().to_string()
}

/// A context of `kind` whose token is `token`, with `env` as given.
fn with_token(kind: Kind, token: &str, env: Vec<(String, Option<Value>)>) -> Context {
    Context::new(kind, vec![("token", Value::from(token)), ("name", Value::from("n"))], env)
}

fn rendered(text: &str, context: Context) -> String {
    String::from_utf8(render(&inline(text, &[]), context).unwrap().to_vec()).unwrap()
}

#[test]
fn a_template_naming_only_fields_of_its_kind_passes_the_check() {
    let text = "{{ name }} {{ kind }} {{ token }} {{ access_token }} {{ expires_at }} {{ generation }} {{ env.HOME }}";
    for kind in Kind::ALL {
        check(&inline(text, &["HOME"]), *kind).unwrap();
    }
    check(&inline("{{ ticket }} {{ ticket_expires_at }} {{ url | urlencode }}", &[]), Kind::Sls).unwrap();
    check(&inline("{{ username | shell }}", &[]), Kind::Tcr).unwrap();
}

#[test]
fn an_unknown_field_is_named_with_its_line() {
    assert_eq!(
        err("line one\n{{ tokn }}\n", Kind::Tcr),
        "line 2: unknown field `tokn` (the fields are `name`, `kind`, `access_token`, `token`, `username`, \
         `expires_at`, `generation` and `env.NAME`)"
    );
    // A global function looked up before the unknown name does not hide it.
    assert!(err("{{ range(2) | list }}{{ tiket ~ range(1) }}", Kind::Sls).contains("unknown field `tiket`"));
}

#[test]
fn a_field_the_kind_lacks_is_an_error_for_that_kind() {
    assert_eq!(err("{{ ticket }}", Kind::Tcr), "line 1: a tcr ticket has no `ticket` field (sls tickets have it)");
    assert_eq!(err("\n\n{{ url }}", Kind::Dsw), "line 3: a dsw ticket has no `url` field (sls tickets have it)");
    assert_eq!(err("{{ username }}", Kind::Sls), "line 1: an sls ticket has no `username` field (tcr tickets have it)");
}

#[test]
fn env_names_not_listed_are_refused() {
    assert_eq!(
        err("{{ env.HOME }}{{ env.PATH }}", Kind::Sls),
        "line 1: `env.PATH` is not allowed: list `PATH` in the sink's `template_env`"
    );
}

#[test]
fn include_import_and_extends_are_refused_as_the_engine_lacks_them() {
    for stmt in ["include 'x'", "import 'x' as y", "extends 'x'", "from 'x' import y"] {
        let e = err(&format!("a\n{{% {stmt} %}}"), Kind::Sls);
        let word = stmt.split(' ').next().unwrap();
        assert_eq!(
            e,
            format!(
                "line 2: syntax error: unknown statement {word} (a template is one file: it cannot include, import \
                 or extend others)"
            )
        );
    }
}

#[test]
fn syntax_errors_and_filter_misuse_name_the_line() {
    assert_eq!(
        err("ok\n{{ token ", Kind::Sls),
        "line 2: syntax error: unexpected end of input, expected end of variable block"
    );
    assert_eq!(err("{{ token | nosuch }}", Kind::Sls), "line 1: unknown filter: filter nosuch is unknown");
}

#[test]
fn a_runaway_loop_runs_out_of_fuel_and_a_huge_output_is_refused() {
    let e = err("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", Kind::Sls);
    assert!(e.contains("fuel") || e.contains("more than"), "{e}");
    let e = err("{{ token * 2000000 }}", Kind::Sls);
    assert!(e.contains("more than 1048576 bytes") || e.contains("fuel") || e.contains("invalid operation"), "{e}");
}

#[test]
fn an_allowed_variable_unset_at_render_is_an_error_naming_it_and_no_value() {
    let context = with_token(Kind::Sls, "s3cret", vec![("REG".into(), None)]);
    let e = render(&inline("{{ token }}\n{{ env.REG }}", &["REG"]), context).unwrap_err().to_string();
    assert_eq!(e, "line 2: environment variable `REG` (env.REG) is not set");
}

#[test]
fn a_render_error_does_not_quote_a_value() {
    // minijinja's own detail could: at render time only the error's kind is said.
    let context = with_token(Kind::Sls, "s3cret-not-a-number", vec![]);
    let e = render(&inline("{{ token | int }}", &[]), context).unwrap_err().to_string();
    assert!(!e.contains("s3cret"), "{e}");
}

#[test]
fn the_json_filters_escape_hostile_values() {
    let hostile = "a\"b\\c\n</script>'{{ x }}\u{1}é";
    for filter in ["json", "tojson"] {
        let out = rendered(&format!("{{{{ token | {filter} }}}}"), with_token(Kind::Sls, hostile, vec![]));
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), hostile, "{out}");
        assert!(!out.contains('\n'), "{out}");
    }
}

#[test]
fn the_shell_filter_quotes_one_word_that_sh_reads_back() {
    let hostile = "it's $HOME `id` \"q\" \\ ; rm -rf /\n*";
    let out = rendered("{{ token | shell }}", with_token(Kind::Sls, hostile, vec![]));
    assert_eq!(out, "'it'\\''s $HOME `id` \"q\" \\ ; rm -rf /\n*'");
    let sh = std::process::Command::new("sh").arg("-c").arg(format!("printf %s {out}")).output().unwrap();
    assert_eq!(String::from_utf8(sh.stdout).unwrap(), hostile);
    assert_eq!(shell(""), "''");
}

#[test]
fn urlencode_escapes_query_delimiters() {
    let out = rendered("{{ token | urlencode }}", with_token(Kind::Sls, "a b&c=d+e#f?g/é", vec![]));
    assert_eq!(out, "a%20b%26c%3Dd%2Be%23f%3Fg/%C3%A9");
}

#[test]
fn the_properties_filter_escapes_as_properties_store_does() {
    assert_eq!(
        properties("a=b:c#d!e f\\g\nh\ti\r\u{c}é😀"),
        "a\\=b\\:c\\#d\\!e\\ f\\\\g\\nh\\ti\\r\\f\\u00E9\\uD83D\\uDE00"
    );
    assert_eq!(properties("eyJhbGciOi.x-y_z"), "eyJhbGciOi.x-y_z");
}

#[test]
fn the_output_keeps_the_trailing_newline_and_trims_block_newlines() {
    let out = rendered("{% if true %}\nk={{ token }}\n{% endif %}\n", with_token(Kind::Sls, "t", vec![]));
    assert_eq!(out, "k=t\n");
}

#[test]
fn an_html_named_template_is_not_html_escaped() {
    let mut t = inline("{{ token }}", &[]);
    t.origin = TemplateOrigin::File("/x/page.html".into());
    let out = render(&t, with_token(Kind::Sls, "<&>", vec![])).unwrap();
    assert_eq!(&out[..], b"<&>");
}

#[test]
fn the_memo_reads_and_checks_a_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.tmpl");
    std::fs::write(&path, "{{ token }}").unwrap();
    let mut memo = TemplateMemo::default();
    let first = memo.read(&path).unwrap();
    std::fs::write(&path, "{{ changed }}").unwrap();
    let second = memo.read(&path).unwrap();
    assert!(Arc::ptr_eq(&first, &second), "read once per load");
    let t = SinkTemplate { text: first, origin: TemplateOrigin::File(path.clone()), env: Arc::from([]) };
    memo.check(&t, Kind::Sls).unwrap();
    assert_eq!(memo.checked.len(), 1);
    memo.check(&t, Kind::Sls).unwrap();
    assert_eq!(memo.checked.len(), 1);
    let big = dir.path().join("big.tmpl");
    std::fs::File::create(&big).unwrap().set_len(MAX_TEMPLATE_BYTES + 1).unwrap();
    assert_eq!(memo.read(&big).unwrap_err(), "is larger than the limit of 262144 bytes");
}

#[test]
fn b64encode_is_standard_base64_with_padding() {
    let out = rendered("{{ ('user' ~ ':' ~ token) | b64encode }}", with_token(Kind::Tcr, "p+/w?", vec![]));
    assert_eq!(out, "dXNlcjpwKy93Pw==");
}

#[test]
fn a_comment_line_leaves_no_blank_line() {
    let out = rendered("{# a note\n   on two lines #}\nk={{ token }}\n", with_token(Kind::Sls, "t", vec![]));
    assert_eq!(out, "k=t\n");
}
