//! Issue 20 part 1: `format = "template"` file sinks, the real binary against the emulator. The
//! four examples in `examples/templates/` are rendered from a TCR ticket and read by their
//! consumers where this machine has them (`npm config list`, `nginx -t` with the snippet
//! included, `kubectl config view`, `java.util.Properties.load`); a hostile value (from an
//! allowed environment variable) goes through each escaping filter and is read back by the
//! program each escaping is for (`sh`, a JSON parser, a URL parser, `Properties.load`); an edited
//! template is rendered again at reload, and a broken one refuses the reload (and `check-config`)
//! with the template's file:line, the last good file kept.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);
const REGISTRY: &str = "myreg.tencentcloudcr.com";
/// Every character some format treats specially: quotes, `\`, `$`, backquotes, the properties
/// separators and comment starts, URL delimiters, whitespace, a newline, non-ASCII.
const HOSTILE: &str = "a'b\"c\\d $HOME `id` e=f:g#h!i &j?k/l+m%n\tö 😀\nnext line";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/templates")
}

/// The shared long-term TCR ticket with its `registry`, and `sinks` after its json sink.
fn config(sinks: &str) -> String {
    let base = TCR_LONGTERM_CONFIG
        .replace("token_type = \"longterm\"\n", &format!("token_type = \"longterm\"\nregistry = \"{REGISTRY}\"\n"));
    format!("{base}{}", sinks.replace("{examples}", &examples().display().to_string()))
}

/// A `format = "template"` sink at `{dir}/out/<name>` with `keys` (its template and so on).
fn sink(name: &str, keys: &str) -> String {
    format!("\n[[tickets.sinks]]\ntype = \"file\"\npath = \"{{dir}}/out/{name}\"\nformat = \"template\"\n{keys}\n")
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?} cannot run: {e}"));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{command:?} failed:\n{said}");
    String::from_utf8(out.stdout).unwrap()
}

/// The token and username the json sink holds, once written.
async fn login(h: &Harness) -> (String, String) {
    let json = wait_for("the TCR token", WAIT, || {
        read_json(&h.path("out/registry.json")).filter(|j| j["generation"].as_u64() >= Some(1))
    })
    .await;
    (json["access_token"].as_str().unwrap().to_string(), json["username"].as_str().unwrap().to_string())
}

async fn rendered(h: &Harness, name: &str) -> String {
    wait_for(name, WAIT, || std::fs::read_to_string(h.path(&format!("out/{name}"))).ok()).await
}

/// `java.util.Properties.load` of each file: `(file, key, value)`, sorted by key.
fn java_properties(dir: &Path, files: &[PathBuf]) -> Vec<(String, String, String)> {
    let program = dir.join("Props.java");
    std::fs::write(
        &program,
        r#"import java.io.FileInputStream;
import java.util.HexFormat;
import java.util.Properties;
import java.util.TreeSet;

public class Props {
    public static void main(String[] args) throws Exception {
        for (String file : args) {
            Properties p = new Properties();
            try (FileInputStream in = new FileInputStream(file)) { p.load(in); }
            for (String key : new TreeSet<>(p.stringPropertyNames())) {
                byte[] value = p.getProperty(key).getBytes("UTF-8");
                System.out.println(file + " " + key + " " + HexFormat.of().formatHex(value));
            }
        }
    }
}
"#,
    )
    .unwrap();
    let out = run(Command::new("java").arg(&program).args(files));
    out.lines()
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let (file, key, hex) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
            let bytes: Vec<u8> =
                (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
            (file.to_string(), key.to_string(), String::from_utf8(bytes).unwrap())
        })
        .collect()
}

fn nginx_t(dir: &Path, snippet: &Path) -> String {
    let ngx = dir.join("nginx");
    std::fs::create_dir_all(&ngx).unwrap();
    let d = ngx.display();
    let conf = ngx.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 16; }}\nhttp {{\n    \
             access_log off;\n    client_body_temp_path {d}/client_body;\n    proxy_temp_path {d}/proxy;\n    \
             fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n    \
             server {{\n        listen unix:{d}/nginx.sock;\n        location /v2/ {{\n            include {};\n            \
             proxy_pass http://127.0.0.1:9;\n        }}\n    }}\n}}\n",
            snippet.display()
        ),
    )
    .unwrap();
    let nginx = if Path::new("/usr/sbin/nginx").is_file() { PathBuf::from("/usr/sbin/nginx") } else { "nginx".into() };
    // Test the configuration only: everything it would write stays under `ngx`.
    let error_log = ngx.join("error.log");
    let args: [&std::ffi::OsStr; 7] = [
        "-t".as_ref(),
        "-p".as_ref(),
        ngx.as_os_str(),
        "-e".as_ref(),
        error_log.as_os_str(),
        "-c".as_ref(),
        conf.as_os_str(),
    ];
    let out = Command::new(nginx).args(args).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "nginx -t refused the rendered snippet:\n{said}");
    said
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_render_and_their_consumers_read_them_and_hostile_values_are_escaped() {
    let h = Harness::start().await;
    let sinks = [
        sink("npmrc", "template = \"{examples}/npmrc.tmpl\"\ntemplate_env = [\"NPM_REGISTRY\"]"),
        sink("registry-auth.conf", "template = \"{examples}/nginx-proxy-header.conf.tmpl\""),
        sink("kubeconfig", "template = \"{examples}/kubeconfig-user.yaml.tmpl\"\ntemplate_env = [\"KUBE_SERVER\"]"),
        sink("app.properties", "template = \"{examples}/app.properties.tmpl\"\nmode = \"0640\""),
        sink("hostile.json", "template_text = '{\"v\": {{ env.HOSTILE | json }}}'\ntemplate_env = [\"HOSTILE\"]"),
        sink("hostile.sh", "template_text = 'printf %s {{ env.HOSTILE | shell }}'\ntemplate_env = [\"HOSTILE\"]"),
        sink(
            "hostile.url",
            "template_text = 'https://x.invalid/p?v={{ env.HOSTILE | urlencode }}&w=1'\ntemplate_env = [\"HOSTILE\"]",
        ),
        sink("hostile.properties", "template_text = 'v={{ env.HOSTILE | properties }}'\ntemplate_env = [\"HOSTILE\"]"),
    ];
    let path = h.write_config(&config(&sinks.concat()));
    let env = [
        ("NPM_REGISTRY", std::ffi::OsStr::new(REGISTRY)),
        ("KUBE_SERVER", std::ffi::OsStr::new("https://kube.example.com:6443")),
        ("HOSTILE", std::ffi::OsStr::new(HOSTILE)),
    ];
    let mut daemon = h.spawn_with_env(&["run", "-c", path.to_str().unwrap()], &env);
    let (token, username) = login(&h).await;

    // .npmrc: the token as the registry's _authToken; npm reads the key for that registry.
    let npmrc = rendered(&h, "npmrc").await;
    assert!(npmrc.ends_with(&format!(
        "registry=https://{REGISTRY}/\n//{REGISTRY}/:_authToken={token}\n//{REGISTRY}/:always-auth=true\n"
    )));
    assert!(npmrc.starts_with("# Written by ticketd from the ticket registry (generation 1); expires "), "{npmrc}");
    if cfg!(have_npm) {
        let listed = run(Command::new("npm").arg("config").arg("list").arg("--userconfig").arg(h.path("out/npmrc")));
        assert!(listed.contains(&format!("//{REGISTRY}/:_authToken = (protected)")), "{listed}");
        assert!(listed.contains(&format!("registry = \"https://{REGISTRY}/\"")), "{listed}");
    } else {
        eprintln!("npm is not installed: the .npmrc is checked by its text only");
    }

    // nginx: Basic auth of username:token, and nginx -t accepts the snippet included.
    let snippet = rendered(&h, "registry-auth.conf").await;
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{token}"));
    assert!(snippet.ends_with(&format!("proxy_set_header Authorization \"Basic {basic}\";\n")), "{snippet}");
    if cfg!(have_nginx) {
        let said = nginx_t(h.dir.path(), &h.path("out/registry-auth.conf"));
        assert!(said.contains("test is successful"), "{said}");
    }

    // kubeconfig: kubectl reads the user's token and the server.
    rendered(&h, "kubeconfig").await;
    if cfg!(have_kubectl) {
        let view = |path: &str| {
            run(Command::new("kubectl")
                .args(["config", "view", "--raw", "-o"])
                .arg(format!("jsonpath={path}"))
                .arg("--kubeconfig")
                .arg(h.path("out/kubeconfig")))
        };
        assert_eq!(view("{.users[0].user.token}"), token);
        assert_eq!(view("{.users[0].name}"), "registry");
        assert_eq!(view("{.clusters[0].cluster.server}"), "https://kube.example.com:6443");
        assert_eq!(view("{.current-context}"), "registry");
    }

    // The hostile value, read back by what each filter escapes for.
    let json = rendered(&h, "hostile.json").await;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap()["v"], HOSTILE);
    rendered(&h, "hostile.sh").await;
    assert_eq!(run(Command::new("sh").arg(h.path("out/hostile.sh"))), HOSTILE);
    let url = url::Url::parse(&rendered(&h, "hostile.url").await).unwrap();
    let pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    assert_eq!(pairs, [("v".to_string(), HOSTILE.to_string()), ("w".to_string(), "1".to_string())]);
    rendered(&h, "hostile.properties").await;
    rendered(&h, "app.properties").await;
    let (app, hostile) = (h.path("out/app.properties"), h.path("out/hostile.properties"));
    if cfg!(have_javac) {
        let read = java_properties(h.dir.path(), &[app.clone(), hostile.clone()]);
        let (a, o) = (app.display().to_string(), hostile.display().to_string());
        let expires =
            read_json(&h.path("out/registry.json")).unwrap()["token_expires_at"].as_str().unwrap().to_string();
        assert_eq!(
            read,
            [
                (a.clone(), "registry.expires-at".to_string(), expires),
                (a.clone(), "registry.password".to_string(), token.clone()),
                (a, "registry.username".to_string(), username.clone()),
                (o, "v".to_string(), HOSTILE.to_string()),
            ]
        );
    } else {
        eprintln!("no JDK: the properties files are not read by java.util.Properties");
    }

    // Written like every sink: the sink's mode (default 0600), no temp file left beside them.
    assert_eq!(mode(&app), 0o640);
    assert_eq!(mode(&h.path("out/npmrc")), 0o600);
    let names: Vec<String> =
        std::fs::read_dir(h.path("out")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), 9, "{names:?}");
    // Never logged.
    let logs = h.all_logs();
    assert!(
        !logs.contains(&token) && !logs.contains(&basic) && !logs.contains("a'b"),
        "a rendered value reached the log"
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0, "{}", daemon.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_template_is_rendered_at_reload_and_a_broken_one_refuses_it_keeping_the_file() {
    let h = Harness::start().await;
    let template = h.path("auth.tmpl");
    std::fs::write(&template, "one {{ token }}\n").unwrap();
    let path = h.write_config(&config(&sink("auth", "template = \"{dir}/auth.tmpl\"")));
    let mut daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    let (token, username) = login(&h).await;
    wait_for("the first rendering", WAIT, || {
        std::fs::read_to_string(h.path("out/auth")).ok().filter(|t| *t == format!("one {token}\n"))
    })
    .await;

    // Edited: a reload renders it again, with the same token (nothing minted).
    std::fs::write(&template, "two {{ username }} {{ token }}\n").unwrap();
    daemon.signal("HUP");
    wait_for("the edited template rendered", WAIT, || {
        std::fs::read_to_string(h.path("out/auth")).ok().filter(|t| *t == format!("two {username} {token}\n"))
    })
    .await;

    // Broken (a field a tcr ticket lacks): the reload is refused with the template's own line;
    // the file keeps what the last good template rendered.
    std::fs::write(&template, "three\n{{ ticket }}\n").unwrap();
    daemon.signal("HUP");
    let log =
        wait_for("the refused reload", WAIT, || Some(daemon.log_text()).filter(|t| t.contains("reload refused"))).await;
    let shown = std::fs::canonicalize(&template).unwrap();
    let want = format!(
        "{}:2: tickets[0].sinks[1].template: a tcr ticket has no `ticket` field (sls tickets have it)",
        shown.display()
    );
    assert!(log.contains(&want), "{want}\nnot in\n{log}");
    assert_eq!(std::fs::read_to_string(h.path("out/auth")).unwrap(), format!("two {username} {token}\n"));

    // check-config says the same, and exits non-zero.
    let out = h.command(&["check-config", "-c", path.to_str().unwrap()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains(&want), "{stderr}");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0, "{}", daemon.log_text());
}
