//! A real etcd cluster on loopback for the fleet tests: N `etcd` members on free ports, data in a
//! temp dir, short heartbeat and election timeouts; members can be killed (`SIGKILL`), stopped
//! (`SIGSTOP`), continued and restarted on their ports and data; `etcdctl get --prefix` dumps what
//! the cluster holds.
//!
//! etcd needs its ports on the command line, so each is found by binding port 0 and releasing it;
//! a member that then loses the race for its port (its log says "address already in use") makes
//! [`EtcdCluster::start`] start the whole cluster again on fresh ports (three attempts).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a cluster or a member gets to become healthy.
pub const HEALTHY_WITHIN: Duration = Duration::from_secs(30);
/// One health probe's bound (a stopped member never answers).
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// Raft timings: short for fast elections, long enough for two busy cores.
const HEARTBEAT_MS: u32 = 50;
const ELECTION_MS: u32 = 500;

pub struct EtcdMember {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl EtcdMember {
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub struct EtcdCluster {
    pub dir: tempfile::TempDir,
    pub members: Vec<EtcdMember>,
    token: String,
}

/// A port nothing listens on right now (bound and released: the caller races for it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().expect("local addr").port()
}

impl EtcdCluster {
    /// `n` members, healthy (every member answers `/health` true) within [`HEALTHY_WITHIN`].
    pub async fn start(n: usize) -> EtcdCluster {
        let mut last = String::new();
        for attempt in 1..=3 {
            let cluster = EtcdCluster::spawn(n, attempt);
            match cluster.wait_all_healthy(HEALTHY_WITHIN).await {
                Ok(()) => return cluster,
                Err(why) => {
                    let raced = cluster.members.iter().any(|m| m.log_text().contains("address already in use"));
                    last = format!("{why}\n{}", cluster.logs());
                    if !raced {
                        break;
                    }
                }
            }
        }
        panic!("etcd cluster of {n} did not become healthy: {last}");
    }

    fn spawn(n: usize, attempt: u32) -> EtcdCluster {
        let dir = tempfile::Builder::new().prefix("ticketd-etcd-").tempdir().expect("temp dir");
        let members: Vec<EtcdMember> = (0..n)
            .map(|i| EtcdMember {
                name: format!("etcd{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                data_dir: dir.path().join(format!("etcd{i}.data")),
                log: dir.path().join(format!("etcd{i}.log")),
                child: None,
                starts: 0,
            })
            .collect();
        let token = format!("ticketd-test-{}-{attempt}-{}", std::process::id(), members[0].client_port);
        let mut cluster = EtcdCluster { dir, members, token };
        for i in 0..n {
            cluster.launch(i, "new");
        }
        cluster
    }

    fn initial_cluster(&self) -> String {
        self.members.iter().map(|m| format!("{}={}", m.name, m.peer_url())).collect::<Vec<_>>().join(",")
    }

    fn launch(&mut self, i: usize, state: &str) {
        let initial = self.initial_cluster();
        let token = self.token.clone();
        let m = &mut self.members[i];
        m.starts += 1;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&m.log).expect("etcd log");
        let child = Command::new("etcd")
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &m.client_url(), "--advertise-client-urls", &m.client_url()])
            .args(["--listen-peer-urls", &m.peer_url(), "--initial-advertise-peer-urls", &m.peer_url()])
            .args(["--initial-cluster", &initial, "--initial-cluster-state", state])
            .args(["--initial-cluster-token", &token])
            .args(["--heartbeat-interval", &HEARTBEAT_MS.to_string(), "--election-timeout", &ELECTION_MS.to_string()])
            .args(["--logger", "zap", "--log-level", "warn", "--log-outputs", "stderr"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd runs (apt-get install etcd-server)");
        m.child = Some(child);
    }

    /// Every member's client URL, running or not (what a ticketd node is configured with).
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(EtcdMember::client_url).collect()
    }

    /// The endpoints as a TOML array: `["http://127.0.0.1:1", …]`.
    pub fn endpoints_toml(&self) -> String {
        let quoted: Vec<String> = self.endpoints().iter().map(|e| format!("\"{e}\"")).collect();
        format!("[{}]", quoted.join(", "))
    }

    fn signal(&self, i: usize, signal: rustix::process::Signal) {
        let pid = self.members[i].pid().expect("member running");
        let pid = rustix::process::Pid::from_raw(pid as i32).expect("pid");
        rustix::process::kill_process(pid, signal).expect("signal etcd");
    }

    /// `kill -9` member `i` and reap it.
    pub fn kill(&mut self, i: usize) {
        self.signal(i, rustix::process::Signal::KILL);
        let mut child = self.members[i].child.take().expect("member running");
        child.wait().expect("reap etcd");
    }

    /// Make sure member `i` is not the raft leader (`etcdctl move-leader` to another running
    /// member when it is), so that killing or stopping it next costs no election: a request in
    /// flight during one fails with "etcdserver: leader changed", which a test that means to
    /// lose a follower must not see. Panics with the logs when no other member takes over in
    /// [`HEALTHY_WITHIN`].
    pub async fn lead_elsewhere(&self, i: usize) {
        let start = Instant::now();
        loop {
            let (ids, leader) = self.raft_members();
            match leader.and_then(|leader| ids.iter().position(|&id| id == Some(leader))) {
                Some(leading) if leading != i => return,
                Some(_) => {
                    if let Some(other) = ids.iter().enumerate().find_map(|(j, id)| id.filter(|_| j != i)) {
                        // Refused while an election is on: the next round asks again.
                        let _ = self.etcdctl_command().args(["move-leader", &format!("{other:x}")]).output();
                    }
                }
                None => {}
            }
            assert!(start.elapsed() < HEALTHY_WITHIN, "member {i} still leads etcd\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The member that leads etcd's raft, as the first answering member reports it: `None`
    /// during an election or when no member answers.
    pub fn leader(&self) -> Option<usize> {
        let (ids, leader) = self.raft_members();
        leader.and_then(|leader| ids.iter().position(|&id| id == Some(leader)))
    }

    /// Each member's raft id (`None` for one not running or not answering) and the leader's id as
    /// the first answering member reports it, from `etcdctl endpoint status -w json`.
    fn raft_members(&self) -> (Vec<Option<u64>>, Option<u64>) {
        let mut ids = vec![None; self.members.len()];
        let mut leader = None;
        let Ok(out) = self.etcdctl_command().args(["endpoint", "status", "-w", "json"]).output() else {
            return (ids, leader);
        };
        let statuses: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        for status in statuses {
            let endpoint = status["Endpoint"].as_str().unwrap_or_default();
            let Some(j) = self.members.iter().position(|m| m.client_url() == endpoint) else { continue };
            ids[j] = status["Status"]["header"]["member_id"].as_u64();
            leader = leader.or(status["Status"]["leader"].as_u64().filter(|&id| id != 0));
        }
        (ids, leader)
    }

    /// `SIGSTOP` member `i`: it holds its ports and answers nothing.
    pub fn stop(&self, i: usize) {
        self.signal(i, rustix::process::Signal::STOP);
    }

    /// `SIGCONT` member `i`.
    pub fn cont(&self, i: usize) {
        self.signal(i, rustix::process::Signal::CONT);
    }

    /// Start member `i` again (after [`EtcdCluster::kill`]) on its ports and data; healthy within
    /// [`HEALTHY_WITHIN`] when a quorum is up with it.
    pub fn restart(&mut self, i: usize) {
        assert!(!self.members[i].is_running(), "restart of a running member {i}");
        self.launch(i, "existing");
    }

    /// Whether member `i` answers `/health` with `"health":"true"` (it is in a cluster with a leader).
    pub async fn healthy(&self, i: usize) -> bool {
        self.http_get(i, "/health").await.is_some_and(|answer| answer.contains(r#""health":"true""#))
    }

    /// Member `i`'s Prometheus exposition (`/metrics` on its client port), when it answers.
    pub async fn metrics(&self, i: usize) -> Option<String> {
        self.http_get(i, "/metrics").await
    }

    /// The sum over the running members of every sample of the counter `name` whose labels
    /// contain `label` (e.g. `grpc_method="Txn"`), from their `/metrics`.
    pub async fn counter(&self, name: &str, label: &str) -> f64 {
        let mut sum = 0.0;
        for i in 0..self.members.len() {
            let text = self.metrics(i).await.unwrap_or_default();
            for line in text.lines() {
                let Some(rest) = line.strip_prefix(name) else { continue };
                if !(rest.starts_with('{') || rest.starts_with(' ')) || !rest.contains(label) {
                    continue;
                }
                sum += rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            }
        }
        sum
    }

    /// `GET path` on member `i`'s client port (HTTP/1.0, bounded by one probe's timeout): the
    /// whole answer when it is an HTTP one.
    async fn http_get(&self, i: usize, path: &str) -> Option<String> {
        if !self.members[i].is_running() {
            return None;
        }
        let probe = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.members[i].client_port)).await.ok()?;
            stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).await.ok()?;
            let mut answer = Vec::new();
            stream.take(16 * 1024 * 1024).read_to_end(&mut answer).await.ok()?;
            Some(String::from_utf8_lossy(&answer).into_owned())
        };
        tokio::time::timeout(PROBE_TIMEOUT, probe).await.ok().flatten().filter(|a| a.starts_with("HTTP/1."))
    }

    /// Wait until every running member is healthy, or say which is not after `timeout`.
    pub async fn wait_all_healthy(&self, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let mut sick = Vec::new();
            for (i, m) in self.members.iter().enumerate() {
                if m.is_running() && !self.healthy(i).await {
                    sick.push(m.name.clone());
                }
            }
            if sick.is_empty() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(format!("after {timeout:?} not healthy: {}", sick.join(", ")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until member `i` is healthy; panics with the logs after `timeout`.
    pub async fn wait_healthy(&self, i: usize, timeout: Duration) {
        let start = Instant::now();
        while !self.healthy(i).await {
            assert!(start.elapsed() < timeout, "etcd member {i} not healthy after {timeout:?}\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until no running member reports healthy (a lost quorum shows within an election
    /// timeout or two); panics after `timeout`.
    pub async fn wait_no_quorum(&self, timeout: Duration) {
        let start = Instant::now();
        loop {
            let mut any = false;
            for i in 0..self.members.len() {
                any |= self.healthy(i).await;
            }
            if !any {
                return;
            }
            assert!(start.elapsed() < timeout, "etcd still reports a healthy member after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `etcdctl` against the running members (bounded: 2 s to dial, 5 s a command), from a cleared
    /// environment (apt-get install etcd-client).
    fn etcdctl_command(&self) -> Command {
        let live: Vec<String> = self.members.iter().filter(|m| m.is_running()).map(EtcdMember::client_url).collect();
        assert!(!live.is_empty(), "etcdctl with no member running");
        let mut command = Command::new("etcdctl");
        command
            .arg(format!("--endpoints={}", live.join(",")))
            .args(["--dial-timeout=2s", "--command-timeout=5s"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ETCDCTL_API", "3");
        command
    }

    /// `etcdctl` against the running members, with `args`; its stdout (panics on failure).
    pub fn etcdctl(&self, args: &[&str]) -> Vec<u8> {
        let out = self.etcdctl_command().args(args).stdin(Stdio::null()).output().expect("etcdctl runs");
        assert!(out.status.success(), "etcdctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// Every key and value under `prefix`, as `etcdctl get --prefix` prints them (key line, value
    /// line), for scans.
    pub fn dump(&self, prefix: &str) -> Vec<u8> {
        self.etcdctl(&["get", "--prefix", prefix])
    }

    /// [`EtcdCluster::dump`] as JSON (`-w json`: keys and values in base64), the other form a scan
    /// must cover.
    pub fn dump_json(&self, prefix: &str) -> Vec<u8> {
        self.etcdctl(&["get", "--prefix", "-w", "json", prefix])
    }

    /// `etcdctl put key` with the value from stdin (any bytes, a NUL included).
    pub fn put_bytes(&self, key: &str, value: &[u8]) {
        use std::io::Write as _;
        let mut child = self
            .etcdctl_command()
            .args(["put", key])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("etcdctl runs");
        child.stdin.take().expect("stdin").write_all(value).expect("write to etcdctl");
        assert!(child.wait().expect("etcdctl exits").success(), "etcdctl put {key}");
    }

    /// Every member's log, for a failure message.
    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("--- {} ({} starts) ---\n{}", m.name, m.starts, tail(&m.log_text(), 40)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The first of `secrets` found in `haystack` in any encoding a scan of etcd must cover: raw, hex
/// (lower and upper case) and standard or URL-safe base64 at each of the three byte alignments;
/// its index and the encoding's name.
pub fn find_secret(haystack: &[u8], secrets: &[&[u8]]) -> Option<(usize, &'static str)> {
    secrets.iter().enumerate().find_map(|(i, secret)| {
        encodings(secret)
            .into_iter()
            .find(|(_, needle)| !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle.as_slice()))
            .map(|(name, _)| (i, name))
    })
}

/// `secret` as each encoding could show it inside a longer text.
fn encodings(secret: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let mut out = vec![
        ("raw", secret.to_vec()),
        ("hex", hex::encode(secret).into_bytes()),
        ("HEX", hex::encode_upper(secret).into_bytes()),
    ];
    for (name, engine) in [("base64", &STANDARD), ("base64url", &URL_SAFE)] {
        for shift in 0..3 {
            // Behind `shift` other bytes, the characters that depend on the secret's bytes alone:
            // drop the group it shares with what is before it and the one with what follows.
            let mut shifted = vec![0u8; shift];
            shifted.extend_from_slice(secret);
            let text = engine.encode(&shifted).into_bytes();
            let start = if shift == 0 { 0 } else { 4 };
            let end = text.len().saturating_sub(4).max(start);
            out.push((name, text[start..end].to_vec()));
        }
    }
    out
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                // SIGKILL ends a stopped member too.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
