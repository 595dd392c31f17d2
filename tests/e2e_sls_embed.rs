//! The SLS embed example (`examples/sls-embed/`) for real: the real ticketd against the emulator,
//! Debian's nginx running the example's site config in front of the unix socket, and headless
//! Chromium loading a page that plays the SLS iframe's part. The iframe posts
//! `{type:'refreshToken', ticket}`, the example's `embed.js` (loaded unchanged) fetches the nginx
//! path and posts `{type:'applyAccessToken', accessToken, ticket}` back, and the iframe writes what
//! it received into the page, which Chromium dumps.
//!
//! Needs `nginx` and `chromium` on PATH (`apt-get install nginx chromium`). Without them the test
//! is reported as ignored (build.rs looks for them), unless `CI` is set: then it runs and fails.
//!
//! As root, nginx's workers run as `nobody:nogroup`, exactly like a deployment where the web server
//! is not ticketd's user: the socket is `0660` with group `nogroup`, and the ticket has
//! `allow_gids = [65534]`, so the request passes both the file mode and the `SO_PEERCRED` check.
//! As another user, nginx runs as that user, which ticketd always allows.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const WAIT: Duration = Duration::from_secs(30);
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sls-embed");

fn is_root() -> bool {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() == 0 }
}

/// The path of `program` on PATH.
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

/// A child that gets SIGTERM (then SIGKILL) when dropped, so nginx's workers go with the master.
struct Reaped(Child, &'static str);

impl Drop for Reaped {
    fn drop(&mut self) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.1);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the example's nginx.conf no longer contains `{from}`");
    text.replace(from, to)
}

/// The example's site config, pointed at the test's socket, web root and port.
fn site_config(socket: &Path, root: &Path, port: u16) -> String {
    let site = std::fs::read_to_string(format!("{EXAMPLE}/nginx.conf")).expect("examples/sls-embed/nginx.conf");
    let site = replace_once(&site, "listen 80;", &format!("listen 127.0.0.1:{port};"));
    let site = replace_once(&site, "listen [::]:80;", "");
    let site = replace_once(&site, "/run/ticketd/ticketd.sock", &socket.display().to_string());
    replace_once(&site, "root /var/www/sls-embed;", &format!("root {};", root.display()))
}

/// A whole nginx.conf around the site: everything nginx writes stays in `dir`.
fn nginx_config(dir: &Path, site: &str) -> String {
    let d = dir.display();
    let user = if is_root() { "user nobody nogroup;" } else { "" };
    format!(
        r#"{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    default_type application/octet-stream;
    types {{ text/html html; application/javascript js; }}
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{site}
}}
"#
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A plain HTTP/1.0 GET on loopback: (status, body).
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// The test page: the iframe is ours (same origin), the handler is the example's `embed.js`.
const TEST_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>sls-embed test</title></head>
<body>
<pre id="result">no answer</pre>
<iframe id="myIframe" src="iframe.html"></iframe>
<script src="embed.js" data-api="/api/sls-access-token" data-iframe="myIframe"></script>
</body></html>
"#;

/// Plays the SLS iframe: asks for a token once the parent has loaded, records the answer.
fn iframe_page(ticket: &str) -> String {
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"></head><body><script>
window.addEventListener('message', (e) => {{
  parent.document.getElementById('result').textContent = JSON.stringify({{origin: e.origin, data: e.data}});
}});
function ask() {{ parent.postMessage({{type: 'refreshToken', ticket: {ticket:?}}}, location.origin); }}
if (parent.document.readyState === 'complete') ask(); else parent.addEventListener('load', ask);
</script></body></html>
"#
    )
}

fn unescape_html(text: &str) -> String {
    text.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(all(have_nginx, have_chromium)), ignore = "needs nginx and chromium (apt-get install nginx chromium)")]
async fn nginx_and_chromium_answer_the_iframe_with_the_current_token() {
    let nginx = which("nginx")
        .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file()))
        .expect("nginx is needed (apt-get install nginx)");
    let chromium = which("chromium").expect("chromium is needed (apt-get install chromium)");

    let h = Harness::start().await;
    // nginx's workers (nobody) must reach the socket and read the web root inside the temp dir.
    std::fs::set_permissions(h.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = h.path("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let access = if is_root() { "socket_mode = \"0660\"\nsocket_group = 65534" } else { "" };
    let allow = if is_root() { "allow_gids = [65534]" } else { "" };
    let path = h.write_config(&format!(
        r#"
state_dir = "{{dir}}/state"
socket = "{{dir}}/run/ticketd.sock"
{access}

[credentials.prod]
vendor = "alibaba"

[[tickets]]
name = "dashboard"
kind = "sls"
credentials = "prod"
endpoint = "{{emulator}}"
ticket_lifetime = "1h"
token_lifetime = "10m"
{allow}

[[tickets.sinks]]
type = "file"
path = "{{dir}}/out/dashboard.json"
"#
    ));
    let mut daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    let sink = wait_for("the first token", WAIT, || read_json(&h.path("out/dashboard.json"))).await;
    let socket = run.join("ticketd.sock");
    wait_for("the socket", WAIT, || socket.exists().then_some(())).await;
    if is_root() {
        assert_eq!(mode(&socket), 0o660);
    }

    // The web root: the example's embed.js unchanged, and the test's page and iframe.
    let www = h.path("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::copy(format!("{EXAMPLE}/embed.js"), www.join("embed.js")).unwrap();
    std::fs::write(www.join("test.html"), TEST_PAGE).unwrap();
    let ticket = sink["ticket"].as_str().expect("the sink holds the ticket");
    std::fs::write(www.join("iframe.html"), iframe_page(ticket)).unwrap();
    for file in ["embed.js", "test.html", "iframe.html"] {
        std::fs::set_permissions(www.join(file), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&www, std::fs::Permissions::from_mode(0o755)).unwrap();

    // nginx in the foreground, with the example's site config.
    let ngx = h.path("nginx");
    std::fs::create_dir(&ngx).unwrap();
    let port = free_port();
    let conf = ngx.join("nginx.conf");
    std::fs::write(&conf, nginx_config(&ngx, &site_config(&socket, &www, port))).unwrap();
    let started = Instant::now();
    let child = Command::new(&nginx)
        .arg("-p")
        .arg(&ngx)
        .arg("-e")
        .arg(ngx.join("error.log"))
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .spawn()
        .expect("start nginx");
    let _nginx = Reaped(child, "nginx");
    let nginx_log = || std::fs::read_to_string(ngx.join("error.log")).unwrap_or_default();
    let (code, body) = wait_for("nginx to answer", WAIT, || http_get(port, "/api/sls-access-token").ok()).await;
    assert_eq!(code, 200, "nginx answered {code}: {body}\nnginx log:\n{}", nginx_log());
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["accessToken"], sink["access_token"]);
    assert_eq!(answer["ticket"], sink["ticket"]);
    eprintln!("nginx up and proxying in {:?}", started.elapsed());

    // Chromium, headless, kept on this machine: no proxy, no DNS, no background traffic.
    let profile = h.path("chromium-profile");
    std::fs::create_dir(&profile).unwrap();
    let dom_file = h.path("dom.html");
    let chromium_log = h.path("chromium.log");
    let started = Instant::now();
    let mut browser = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-sync",
            "--no-proxy-server",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("http://127.0.0.1:{port}/test.html"))
        .env("HOME", h.path("chromium-home"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&dom_file).unwrap())
        .stderr(std::fs::File::create(&chromium_log).unwrap())
        .spawn()
        .expect("start chromium");
    let status = wait_for("chromium to dump the page", Duration::from_secs(90), || browser.try_wait().unwrap()).await;
    eprintln!("chromium ran for {:?}", started.elapsed());
    let dom = std::fs::read_to_string(&dom_file).unwrap_or_default();
    let log = std::fs::read_to_string(&chromium_log).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}):\n{log}");
    let result = dom
        .split_once("<pre id=\"result\">")
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .map(|(text, _)| unescape_html(text))
        .unwrap_or_else(|| panic!("no result in the page:\n{dom}\nchromium log:\n{log}"));
    let got: serde_json::Value = serde_json::from_str(&result).unwrap_or_else(|_| {
        panic!("the iframe got no answer: {result}\nchromium log:\n{log}\nnginx log:\n{}", nginx_log())
    });

    // The iframe got exactly the applyAccessToken message, from its parent's origin, holding what
    // ticketd's json sink holds.
    assert_eq!(got["origin"], format!("http://127.0.0.1:{port}"));
    let data = &got["data"];
    assert_eq!(data["type"], "applyAccessToken", "{got}");
    assert_eq!(data["accessToken"], sink["access_token"], "{got}");
    assert_eq!(data["ticket"], sink["ticket"], "{got}");
    assert_eq!(data.as_object().unwrap().len(), 3, "{got}");
    let access = std::fs::read_to_string(ngx.join("access.log")).unwrap();
    assert!(access.contains("GET /api/sls-access-token"), "the page asked nginx: {access}");

    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
}
