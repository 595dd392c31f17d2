//! A keep-alive HTTP/1.1 load generator on a unix socket, and nginx serving a file beside it.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub requests: u64,
    pub seconds: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// Connections that had to be opened again because the server closed one.
    pub reconnects: u64,
}

impl LoadResult {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// `clients` threads, each with one keep-alive connection, sending `GET path` for `duration`.
/// Every answer must be a 200 whose body is `expected`.
pub fn run(socket: &Path, path: &str, expected: &[u8], clients: usize, duration: Duration) -> LoadResult {
    let start = Instant::now();
    let deadline = start + duration;
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (socket, path, expected) = (socket.to_path_buf(), path.to_string(), expected.to_vec());
            std::thread::spawn(move || client(&socket, &path, &expected, deadline))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut reconnects = 0;
    for t in threads {
        let (l, r) = t.join().expect("a load client failed");
        latencies.extend(l);
        reconnects += r;
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        Duration::from_nanos(latencies.get(i).copied().unwrap_or(0))
    };
    LoadResult { requests: latencies.len() as u64, seconds, p50: at(0.50), p99: at(0.99), reconnects }
}

/// One client: request after request on one connection; reconnect only when the server closes it.
fn client(socket: &Path, path: &str, expected: &[u8], deadline: Instant) -> (Vec<u64>, u64) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut reconnects = 0;
    let mut body = Vec::new();
    'connection: while Instant::now() < deadline {
        let stream = UnixStream::connect(socket).expect("connect to the socket");
        let mut writer = stream.try_clone().expect("clone the stream");
        let mut reader = BufReader::with_capacity(16 * 1024, stream);
        while Instant::now() < deadline {
            let sent = Instant::now();
            writer.write_all(request.as_bytes()).expect("send a request");
            match read_response(&mut reader, &mut body) {
                Ok(Some(keep_alive)) => {
                    latencies.push(sent.elapsed().as_nanos() as u64);
                    assert_eq!(body, expected, "the body changed during the run");
                    if !keep_alive {
                        reconnects += 1;
                        continue 'connection;
                    }
                }
                Ok(None) => {
                    reconnects += 1;
                    continue 'connection;
                }
                Err(e) => panic!("reading an answer: {e}"),
            }
        }
    }
    (latencies, reconnects)
}

/// Read one response into `body`: `Some(keep_alive)`, or `None` if the server had closed the
/// connection before answering. Anything but a 200 with a Content-Length is an error.
fn read_response(reader: &mut impl BufRead, body: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    if !line.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("status line {line:?}")));
    }
    let (mut length, mut keep_alive) = (None, true);
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("connection") && value.trim().eq_ignore_ascii_case("close") {
            keep_alive = false;
        }
    }
    let length = length.ok_or_else(|| std::io::Error::other("no Content-Length"))?;
    body.resize(length, 0);
    reader.read_exact(body)?;
    Ok(Some(keep_alive))
}

/// nginx serving `body` at `path` on a unix socket, with its own prefix directory.
pub struct Nginx {
    process: super::process::Running,
    pub socket: PathBuf,
}

impl Nginx {
    /// `None` when there is no nginx on this machine.
    pub fn start(dir: &Path, path: &str, body: &[u8], workers: usize) -> Option<Nginx> {
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().map(PathBuf::from).find(|p| p.exists())?;
        let www = dir.join("www");
        let file = www.join(path.trim_start_matches('/'));
        fs::create_dir_all(file.parent().expect("a parent")).expect("nginx root");
        fs::write(&file, body).expect("the file nginx serves");
        let socket = dir.join("nginx.sock");
        let temp = dir.join("temp");
        fs::create_dir_all(&temp).expect("nginx temp dir");
        // As root, nginx's workers would drop to `nobody`, who cannot enter this 0700 directory.
        // SAFETY: geteuid has no preconditions.
        let user = if unsafe { libc::geteuid() } == 0 { "user root root;" } else { "" };
        let conf = format!(
            "daemon off;\n{user}\nworker_processes {workers};\npid {dir}/nginx.pid;\nerror_log {dir}/nginx-error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n\
             client_body_temp_path {t}/body; proxy_temp_path {t}/proxy; fastcgi_temp_path {t}/fastcgi;\n\
             uwsgi_temp_path {t}/uwsgi; scgi_temp_path {t}/scgi;\n\
             server {{\n    listen unix:{sock};\n    location / {{ root {www}; default_type application/json; }}\n  }}\n}}\n",
            dir = dir.display(),
            t = temp.display(),
            sock = socket.display(),
            www = www.display(),
        );
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf).expect("nginx.conf");
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.join("nginx-error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let nginx = Nginx { process: super::process::Running::new(child), socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while super::process::socket_get(&nginx.socket, path).map(|(s, _)| s).ok() != Some(200) {
            assert!(Instant::now() < deadline, "nginx did not start; see {}/nginx-error.log", dir.display());
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(nginx)
    }

    pub fn stop(self) {
        self.process.stop();
    }
}
