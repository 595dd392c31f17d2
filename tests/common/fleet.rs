//! A fleet for the fleet tests (issue #19): three etcd members ([`EtcdCluster`]), the emulator on
//! 127.0.0.1 port 0, and N ticketd nodes (the real binary) running the same SLS tickets and the
//! same `[cluster]`, each with its own Alibaba key (so the emulator's signers say which node
//! called), state_dir, socket, file sinks and logs. Nodes can be killed (`SIGKILL`), stopped
//! (`SIGSTOP`), continued, stopped cleanly and started again.
//!
//! A [`Recorder`] thread samples every node's sinks and the emulator's calls every
//! [`SAMPLE_EVERY`] while the fleet runs, and records the fleet's invariants as it goes: no node's
//! generation goes back, no live node's sink holds an expired token, one token per ticket and
//! generation across the fleet; and when each generation reached each node's sink (the sink
//! file's mtime), for the propagation figures. Two tokens for one ticket and generation are a fork,
//! except while the test says the fallback may run ([`Recorder::allow_fallback`]: etcd without a
//! quorum, each node renewing the fleet's ticket on its own); two tickets are a fork always (a
//! ticket minted without leadership).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use emulator::{Emulator, EmulatorKey, StatsSnapshot, generate_key};

use super::etcd::EtcdCluster;
use super::{BIN, wait_for};

/// Where every node keeps its holdings in etcd.
pub const PREFIX: &str = "/ticketd/fleet";
/// How often the recorder samples the sinks and the emulator.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// How long one socket request may take (a stopped node never answers).
const ASK_WITHIN: Duration = Duration::from_millis(1000);

/// What the fleet runs.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    pub nodes: usize,
    /// SLS tickets `t0`, `t1`, … each with one JSON file sink per node.
    pub tickets: usize,
    pub ticket_lifetime: &'static str,
    pub token_lifetime: &'static str,
    /// `[cluster] lease_ttl`.
    pub lease_ttl: Duration,
    /// With `encryption_key_file` (one key for the fleet).
    pub sealed: bool,
    /// `TICKETD_LOG` of every node.
    pub log: &'static str,
    /// One JSON file sink per ticket and node (the recorder reads them); without, the tickets
    /// only live in each node's board, state and socket (a benchmark's thousands of tickets).
    pub sinks: bool,
    /// Top-level TOML put after `socket` in every config (e.g. `[rate_limits]`).
    pub preamble: &'static str,
}

impl Default for FleetSpec {
    fn default() -> FleetSpec {
        FleetSpec {
            nodes: 3,
            tickets: 2,
            ticket_lifetime: "1h",
            token_lifetime: "10s",
            lease_ttl: Duration::from_secs(2),
            sealed: false,
            log: "ticketd=debug,info",
            sinks: true,
            preamble: "",
        }
    }
}

/// One ticketd node of the fleet.
pub struct Node {
    pub name: String,
    pub dir: PathBuf,
    pub key: EmulatorKey,
    child: Option<Child>,
    stopped: bool,
    runs: u32,
}

impl Node {
    pub fn socket(&self) -> PathBuf {
        self.dir.join("run/ticketd.sock")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("ticketd.toml")
    }

    pub fn sink(&self, ticket: &str) -> PathBuf {
        self.dir.join("out").join(format!("{ticket}.json"))
    }

    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Running and not stopped: it can answer.
    pub fn is_up(&self) -> bool {
        self.child.is_some() && !self.stopped
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn log_path(&self, run: u32) -> PathBuf {
        self.dir.join(format!("log-{run}.txt"))
    }

    /// Every log line of every run of this node.
    pub fn logs(&self) -> String {
        (1..=self.runs).map(|n| std::fs::read_to_string(self.log_path(n)).unwrap_or_default()).collect()
    }

    /// This run's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path(self.runs)).unwrap_or_default()
    }
}

/// What one sink held when the recorder read it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub generation: u64,
    /// The first 16 hex digits of the SHA-256 of the access token (never the token).
    pub token: String,
    pub ticket_hash: String,
    pub expires: SystemTime,
    /// The sink file's mtime: when the node wrote it.
    pub written: SystemTime,
}

/// Everything the recorder saw.
#[derive(Debug, Default)]
pub struct Record {
    /// Each token call (SLS CreateTicket or RefreshToken) as first seen, by the node that signed it.
    pub calls: Vec<(Instant, usize)>,
    /// The emulator's counters at the last sample.
    pub stats: StatsSnapshot,
    /// The last thing each node's sink of each ticket held: `(node, ticket)`.
    pub last: HashMap<(usize, String), Seen>,
    /// When each generation of each ticket reached each node's sink: `(ticket, generation)` →
    /// node → the sink file's mtime.
    pub arrivals: BTreeMap<(String, u64), BTreeMap<usize, SystemTime>>,
    /// The token and ticket each generation of each ticket was first seen with, and where.
    pub tokens: HashMap<(String, u64), (String, String, usize)>,
    /// Broken invariants, said without a secret.
    pub violations: Vec<String>,
    /// A ticket generation held with two different tickets, or (the fallback not allowed) two
    /// different tokens, on two nodes or one (a fork), as said.
    pub forks: Vec<String>,
    /// Fallback renewals seen: one ticket and generation with another token of the same ticket
    /// while the fallback was allowed (issue #19: allowed, reconciled when etcd returns).
    pub fallbacks: Vec<String>,
    pub samples: u64,
}

impl Record {
    /// Propagation of each generation that reached every one of `nodes`: from the first node's
    /// sink write to the last one's.
    pub fn propagation(&self, nodes: &[usize]) -> Vec<Duration> {
        self.arrivals
            .values()
            .filter(|at| nodes.iter().all(|n| at.contains_key(n)))
            .map(|at| {
                let times: Vec<SystemTime> = nodes.iter().map(|n| at[n]).collect();
                let first = times.iter().min().copied().expect("nodes");
                let last = times.iter().max().copied().expect("nodes");
                last.duration_since(first).unwrap_or_default()
            })
            .collect()
    }

    /// The nodes that signed a call at or after `since`.
    pub fn callers_since(&self, since: Instant) -> Vec<usize> {
        let mut who: Vec<usize> = self.calls.iter().filter(|(at, _)| *at >= since).map(|(_, n)| *n).collect();
        who.sort_unstable();
        who.dedup();
        who
    }
}

/// The recorder thread and what it shares with the test.
pub struct Recorder {
    record: Arc<Mutex<Record>>,
    /// Nodes whose sinks must hold a good token: set once a started node's sinks all do, cleared
    /// before it is killed or stopped.
    live: Arc<Vec<AtomicBool>>,
    /// Nodes the recorder should arm once their sinks are all good.
    armed: Arc<Vec<AtomicBool>>,
    /// Whether a renewal on each node alone (the same ticket, another token) is allowed now.
    fallback: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    fn start(emulator: Arc<Emulator>, keys: Vec<String>, sinks: Vec<Vec<(String, PathBuf)>>) -> Recorder {
        let n = sinks.len();
        let record = Arc::new(Mutex::new(Record::default()));
        let live: Arc<Vec<AtomicBool>> = Arc::new((0..n).map(|_| AtomicBool::new(false)).collect());
        let armed: Arc<Vec<AtomicBool>> = Arc::new((0..n).map(|_| AtomicBool::new(false)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let fallback = Arc::new(AtomicBool::new(false));
        let thread = {
            let (record, live, armed, stop) = (record.clone(), live.clone(), armed.clone(), stop.clone());
            let fallback = fallback.clone();
            std::thread::spawn(move || {
                let mut signers_seen = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let signers = emulator.token_call_signers();
                    let stats = emulator.stats();
                    let now = Instant::now();
                    let mut r = record.lock().unwrap_or_else(PoisonError::into_inner);
                    for id in signers.iter().skip(signers_seen) {
                        match keys.iter().position(|k| k == id) {
                            Some(node) => r.calls.push((now, node)),
                            None => r.violations.push(format!("a token call signed by an unknown key {id}")),
                        }
                    }
                    signers_seen = signers.len();
                    r.stats = stats;
                    let fallback = fallback.load(Ordering::Relaxed);
                    for (node, tickets) in sinks.iter().enumerate() {
                        let mut all_good = true;
                        for (ticket, path) in tickets {
                            let live = live[node].load(Ordering::Relaxed);
                            let good = sample(&mut r, node, ticket, path, live, fallback);
                            all_good &= good;
                        }
                        if all_good && armed[node].load(Ordering::Relaxed) {
                            live[node].store(true, Ordering::Relaxed);
                        }
                    }
                    r.samples += 1;
                    drop(r);
                    std::thread::sleep(SAMPLE_EVERY);
                }
            })
        };
        Recorder { record, live, armed, fallback, stop, thread: Some(thread) }
    }

    /// A copy of what was recorded so far, taken under the lock.
    pub fn with<T>(&self, f: impl FnOnce(&Record) -> T) -> T {
        f(&self.record.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// From now on (`true`) or no longer, a generation held with another token of the same
    /// ticket is a fallback renewal, not a fork. Set once etcd has lost its quorum; cleared once
    /// the fleet converged again after etcd returned.
    pub fn allow_fallback(&self, allowed: bool) {
        self.fallback.store(allowed, Ordering::Relaxed);
    }

    pub fn is_live(&self, node: usize) -> bool {
        self.live[node].load(Ordering::Relaxed)
    }

    fn arm(&self, node: usize) {
        self.armed[node].store(true, Ordering::Relaxed);
    }

    fn disarm(&self, node: usize) {
        self.armed[node].store(false, Ordering::Relaxed);
        self.live[node].store(false, Ordering::Relaxed);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn short_hash(text: &str) -> String {
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
}

/// Read one sink (the file opened once: its mtime and its text are of the same write, which
/// replaced the file whole); check it against what the node and the fleet held before (`fallback`:
/// another token of the same ticket is a fallback renewal). Whether it holds a good token now.
fn sample(r: &mut Record, node: usize, ticket: &str, path: &Path, live: bool, fallback: bool) -> bool {
    use std::io::Read as _;
    let Ok(mut file) = std::fs::File::open(path) else { return false };
    let Ok(meta) = file.metadata() else { return false };
    let mut text = String::new();
    if file.read_to_string(&mut text).is_err() {
        return false;
    }
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        r.violations.push(format!("node {node} {ticket}: the sink is not JSON"));
        return false;
    };
    let (Some(generation), Some(token), Some(expires)) = (
        json["generation"].as_u64(),
        json["access_token"].as_str(),
        json["token_expires_at"].as_str().and_then(|t| humantime::parse_rfc3339_weak(t).ok()),
    ) else {
        r.violations.push(format!("node {node} {ticket}: the sink lacks generation, access_token or token_expires_at"));
        return false;
    };
    let written = SystemTime::UNIX_EPOCH + Duration::new(meta.mtime() as u64, meta.mtime_nsec() as u32);
    let seen = Seen {
        generation,
        token: short_hash(token),
        ticket_hash: short_hash(json["ticket"].as_str().unwrap_or_default()),
        expires,
        written,
    };
    let good = expires > SystemTime::now();
    if live && !good {
        r.violations.push(format!(
            "node {node} {ticket}: a live node's sink holds an expired token (generation {generation}, expired {})",
            humantime::format_rfc3339_millis(expires)
        ));
    }
    let key = (node, ticket.to_string());
    if let Some(before) = r.last.get(&key) {
        if generation < before.generation {
            r.violations.push(format!(
                "node {node} {ticket}: the generation went back from {} to {generation}",
                before.generation
            ));
        }
        if generation == before.generation && seen.token != before.token {
            let what = format!("node {node} {ticket}: generation {generation} changed its token");
            divergence(r, what, seen.ticket_hash == before.ticket_hash && fallback);
        }
    }
    let gen_key = (ticket.to_string(), generation);
    match r.tokens.get(&gen_key) {
        Some((first, first_ticket, at)) if *first != seen.token => {
            let same_ticket = *first_ticket == seen.ticket_hash;
            let what = match same_ticket {
                true => format!("{ticket} generation {generation}: node {at} and node {node} hold different tokens"),
                false => format!("{ticket} generation {generation}: node {at} and node {node} hold different tickets"),
            };
            divergence(r, what, same_ticket && fallback);
        }
        Some(_) => {}
        None => {
            r.tokens.insert(gen_key.clone(), (seen.token.clone(), seen.ticket_hash.clone(), node));
        }
    }
    r.arrivals.entry(gen_key).or_default().entry(node).or_insert(written);
    r.last.insert(key, seen);
    good
}

/// Two holdings of one generation: a fallback renewal (`allowed`) or a fork; each said once.
fn divergence(r: &mut Record, what: String, allowed: bool) {
    let list = if allowed { &mut r.fallbacks } else { &mut r.forks };
    if !list.contains(&what) {
        list.push(what);
    }
}

/// The etcd cluster, the emulator and the nodes.
pub struct Fleet {
    pub etcd: EtcdCluster,
    pub emulator: Arc<Emulator>,
    pub dir: tempfile::TempDir,
    pub spec: FleetSpec,
    pub nodes: Vec<Node>,
    pub recorder: Recorder,
    /// The fleet's `encryption_key_file` text (base64), when sealed.
    pub sealing_key: Option<String>,
}

impl Fleet {
    /// Three etcd members (healthy), the emulator, and the nodes' configs written; no node runs yet.
    pub async fn new(spec: FleetSpec) -> Fleet {
        let etcd = EtcdCluster::start(3).await;
        Fleet::with_etcd(etcd, spec).await
    }

    /// [`Fleet::new`] on an etcd cluster the caller started.
    pub async fn with_etcd(etcd: EtcdCluster, spec: FleetSpec) -> Fleet {
        let keys: Vec<EmulatorKey> = (0..spec.nodes).map(|i| generate_key(&format!("LTAIn{i}"))).collect();
        let emulator =
            Emulator::start(([127, 0, 0, 1], 0).into(), keys.clone(), SystemTime::now).await.expect("emulator");
        let emulator = Arc::new(emulator);
        let dir = tempfile::Builder::new().prefix("ticketd-fleet-").tempdir().expect("temp dir");
        let sealing_key = spec.sealed.then(|| {
            use base64::Engine as _;
            let key: [u8; 32] = rand::random();
            let text = base64::engine::general_purpose::STANDARD.encode(key);
            let path = dir.path().join("cluster.key");
            std::fs::write(&path, format!("{text}\n")).expect("write the key file");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
            text
        });
        let nodes: Vec<Node> = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let name = format!("n{i}");
                let dir = dir.path().join(&name);
                std::fs::create_dir_all(&dir).expect("node dir");
                Node { name, dir, key, child: None, stopped: false, runs: 0 }
            })
            .collect();
        let sinks = nodes
            .iter()
            .map(|n| match spec.sinks {
                true => (0..spec.tickets).map(|t| (format!("t{t}"), n.sink(&format!("t{t}")))).collect(),
                false => Vec::new(),
            })
            .collect();
        let recorder =
            Recorder::start(emulator.clone(), nodes.iter().map(|n| n.key.access_key_id.clone()).collect(), sinks);
        let fleet = Fleet { etcd, emulator, dir, spec, nodes, recorder, sealing_key };
        for i in 0..fleet.nodes.len() {
            std::fs::write(fleet.nodes[i].config(), fleet.config(i)).expect("write a node's config");
        }
        fleet
    }

    pub fn ticket_names(&self) -> Vec<String> {
        (0..self.spec.tickets).map(|t| format!("t{t}")).collect()
    }

    /// Node `i`'s config: the fleet's tickets and `[cluster]`, its own name, state, socket, sinks.
    pub fn config(&self, i: usize) -> String {
        let node = &self.nodes[i];
        let dir = node.dir.display();
        let key_line = match self.spec.sealed {
            true => format!("encryption_key_file = \"{}\"\n", self.dir.path().join("cluster.key").display()),
            false => String::new(),
        };
        let mut text = format!(
            "state_dir = \"{dir}/state\"\nsocket = \"{dir}/run/ticketd.sock\"\n{preamble}\n\
             [credentials.prod]\nvendor = \"alibaba\"\n\n\
             [cluster]\nbackend = \"etcd\"\nendpoints = {endpoints}\nprefix = \"{PREFIX}\"\nnode = \"{name}\"\n\
             lease_ttl = \"{ttl}s\"\n{key_line}",
            preamble = self.spec.preamble,
            endpoints = self.etcd.endpoints_toml(),
            name = node.name,
            ttl = self.spec.lease_ttl.as_secs(),
        );
        for t in 0..self.spec.tickets {
            text.push_str(&format!(
                "\n[[tickets]]\nname = \"t{t}\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"{emulator}\"\n\
                 ticket_lifetime = \"{ticket}\"\ntoken_lifetime = \"{token}\"\n",
                emulator = self.emulator.url(),
                ticket = self.spec.ticket_lifetime,
                token = self.spec.token_lifetime,
            ));
            if self.spec.sinks {
                text.push_str(&format!("\n[[tickets.sinks]]\ntype = \"file\"\npath = \"{dir}/out/t{t}.json\"\n"));
            }
        }
        text
    }

    /// `ticketd` with node `i`'s key in a cleared environment.
    pub fn command(&self, i: usize, args: &[&str]) -> Command {
        let key = &self.nodes[i].key;
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", &key.access_key_id)
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", key.access_key_secret.expose())
            .env("TICKETD_LOG", self.spec.log)
            .stdin(Stdio::null());
        cmd
    }

    /// Start node `i` (`ticketd run`); its stderr goes to its `log-N.txt`. The recorder holds it to
    /// a good token in every sink once all of them first hold one.
    pub fn start(&mut self, i: usize) {
        assert!(!self.nodes[i].is_running(), "node {i} already runs");
        let config = self.nodes[i].config();
        let mut command = self.command(i, &["run", "-c", config.to_str().expect("utf-8 path")]);
        let node = &mut self.nodes[i];
        node.runs += 1;
        let log = std::fs::File::create(node.log_path(node.runs)).expect("log file");
        node.child = Some(command.stdout(Stdio::null()).stderr(log).spawn().expect("spawn ticketd"));
        node.stopped = false;
        self.recorder.arm(i);
    }

    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
    }

    fn signal(&self, i: usize, signal: rustix::process::Signal) {
        let pid = self.nodes[i].pid().expect("node running");
        let pid = rustix::process::Pid::from_raw(pid as i32).expect("pid");
        rustix::process::kill_process(pid, signal).expect("signal ticketd");
    }

    /// `kill -9` node `i` and reap it.
    pub fn kill(&mut self, i: usize) {
        self.recorder.disarm(i);
        self.signal(i, rustix::process::Signal::KILL);
        let mut child = self.nodes[i].child.take().expect("node running");
        child.wait().expect("reap ticketd");
        self.nodes[i].stopped = false;
    }

    /// `SIGSTOP` node `i`: it holds its socket and lease and does nothing.
    pub fn stop(&mut self, i: usize) {
        self.recorder.disarm(i);
        self.signal(i, rustix::process::Signal::STOP);
        self.nodes[i].stopped = true;
    }

    /// `SIGCONT` node `i`.
    pub fn cont(&mut self, i: usize) {
        self.signal(i, rustix::process::Signal::CONT);
        self.nodes[i].stopped = false;
        self.recorder.arm(i);
    }

    /// `SIGTERM` node `i` and wait for it to exit; its exit code.
    pub async fn term(&mut self, i: usize, within: Duration) -> i32 {
        self.recorder.disarm(i);
        self.signal(i, rustix::process::Signal::TERM);
        let child = self.nodes[i].child.as_mut().expect("node running");
        let status = wait_for(&format!("node {i} to exit"), within, || child.try_wait().expect("try_wait")).await;
        self.nodes[i].child = None;
        status.code().unwrap_or(-1)
    }

    /// `GET path` on node `i`'s socket, bounded: the status and JSON body, or `None`.
    pub async fn ask(&self, i: usize, path: &str) -> Option<(u16, serde_json::Value)> {
        if !self.nodes[i].is_up() {
            return None;
        }
        let (code, body) = ticketd::api::client::get_within(&self.nodes[i].socket(), path, ASK_WITHIN).await.ok()?;
        Some((code, serde_json::from_slice(&body).unwrap_or_default()))
    }

    /// Node `i`'s `GET /v1/cluster`.
    pub async fn view(&self, i: usize) -> Option<serde_json::Value> {
        self.ask(i, "/v1/cluster").await.filter(|(code, _)| *code == 200).map(|(_, v)| v)
    }

    /// The node that says it leads, when every other node that answers names it as the leader.
    pub async fn leader(&self) -> Option<usize> {
        let mut views = Vec::new();
        for i in 0..self.nodes.len() {
            if let Some(view) = self.view(i).await {
                views.push((i, view));
            }
        }
        let leaders: Vec<usize> = views.iter().filter(|(_, v)| v["role"] == "leader").map(|(i, _)| *i).collect();
        let [leader] = leaders[..] else { return None };
        let name = &self.nodes[leader].name;
        views.iter().all(|(_, v)| v["leader"].as_str() == Some(name)).then_some(leader)
    }

    /// Wait until one node leads and every node that answers agrees (see [`Fleet::leader`]).
    pub async fn wait_leader(&self, within: Duration) -> usize {
        let start = Instant::now();
        loop {
            if let Some(leader) = self.leader().await {
                return leader;
            }
            assert!(start.elapsed() < within, "no agreed leader after {within:?}\n{}", self.describe().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until every sink of node `i` holds a good token.
    pub async fn wait_serving(&self, i: usize, within: Duration) {
        let start = Instant::now();
        while !self.recorder.is_live(i) {
            assert!(start.elapsed() < within, "node {i} not serving after {within:?}\n{}", self.describe().await);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Wait until every running node serves, and they all hold the same ticket and token of every
    /// ticket (one holding).
    pub async fn wait_converged(&self, within: Duration) {
        let start = Instant::now();
        loop {
            let up: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.nodes[i].is_up()).collect();
            if up.iter().all(|&i| self.recorder.is_live(i)) && self.converged(&up) {
                return;
            }
            assert!(start.elapsed() < within, "the fleet did not converge in {within:?}\n{}", self.describe().await);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Whether every one of `nodes` holds the same ticket and token of each ticket. (Not the same
    /// generation number: a node that renewed on its own while etcd was away renumbers the
    /// leader's holding above its own when it adopts it, so generations never go back on it.)
    pub fn converged(&self, nodes: &[usize]) -> bool {
        self.recorder.with(|r| {
            self.ticket_names().iter().all(|t| {
                let seen: Vec<Option<(&str, &str)>> = nodes
                    .iter()
                    .map(|&n| r.last.get(&(n, t.clone())).map(|s| (s.ticket_hash.as_str(), s.token.as_str())))
                    .collect();
                seen.iter().all(|s| s.is_some() && *s == seen[0])
            })
        })
    }

    /// Kill the leader (`kill -9`) with a call in flight: its next call is held 400 ms by the
    /// emulator ([`emulator::faults::Fault::Delay`]) and it dies while waiting for the answer, so
    /// the new leader has a call to retry. The killed node and the time from the kill to another
    /// node's first call (bounded by `within`).
    pub async fn kill_the_leader_mid_call(&mut self, within: Duration) -> (usize, Duration) {
        use emulator::faults::{Fault, FaultPlan, Service, Trigger};
        let leader = self.wait_leader(within).await;
        let injected = self.stats().faults_injected;
        let delay = FaultPlan { fault: Fault::Delay(Duration::from_millis(400)), trigger: Trigger::FirstN(1) };
        self.emulator.inject(Service::Sls, Some(delay));
        wait_for("the leader's next call", within, || (self.stats().faults_injected > injected).then_some(())).await;
        self.kill(leader);
        let killed = Instant::now();
        let first = wait_for("a new leader's call", within, || {
            self.recorder.with(|r| r.calls.iter().find(|(at, n)| *at >= killed && *n != leader).map(|(at, _)| *at))
        })
        .await;
        self.emulator.inject(Service::Sls, None);
        (leader, first - killed)
    }

    /// The emulator's counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.emulator.stats()
    }

    /// Every node's view and sinks and the recorder's findings, for a failure message (no secret).
    pub async fn describe(&self) -> String {
        let mut out = String::new();
        for i in 0..self.nodes.len() {
            let view = self.view(i).await.map(|v| v.to_string()).unwrap_or_else(|| "no answer".into());
            out.push_str(&format!("node {i} (up {}): {view}\n", self.nodes[i].is_up()));
        }
        self.recorder.with(|r| {
            let mut last: Vec<_> = r.last.iter().collect();
            last.sort_by(|a, b| a.0.cmp(b.0));
            for ((node, ticket), seen) in last {
                out.push_str(&format!("  node {node} {ticket}: generation {} token {}\n", seen.generation, seen.token));
            }
            out.push_str(&format!(
                "stats {:?}\nviolations {:?}\nforks {:?}\nfallback renewals {:?}\n",
                r.stats, r.violations, r.forks, r.fallbacks
            ));
        });
        for node in &self.nodes {
            out.push_str(&format!("--- {} log (tail) ---\n{}\n", node.name, tail(&node.logs(), 30)));
        }
        out
    }

    /// Every secret a scan of etcd or of the logs looks for: the tickets and tokens the emulator
    /// issued, the nodes' key secrets, and the sealing key (text and bytes).
    pub fn secrets(&self) -> Vec<Vec<u8>> {
        let mut secrets: Vec<Vec<u8>> = self.emulator.issued_secrets().into_iter().map(String::into_bytes).collect();
        for node in &self.nodes {
            secrets.push(node.key.access_key_secret.expose().as_bytes().to_vec());
        }
        if let Some(key) = &self.sealing_key {
            use base64::Engine as _;
            secrets.push(key.as_bytes().to_vec());
            secrets.push(base64::engine::general_purpose::STANDARD.decode(key).expect("the key's base64"));
        }
        secrets
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The `q` quantile (0..=1) of `values`, nearest rank.
pub fn quantile(values: &[Duration], q: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// No node's log holds a secret; the nodes are killed first (a stopped one too).
impl Drop for Fleet {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.emulator.stop();
        if std::thread::panicking() {
            return;
        }
        let secrets = self.secrets();
        for node in &self.nodes {
            for run in 1..=node.runs {
                let path = node.log_path(run);
                let text = std::fs::read(&path).unwrap_or_default();
                if let Some((i, encoding)) =
                    super::etcd::find_secret(&text, &secrets.iter().map(Vec::as_slice).collect::<Vec<_>>())
                {
                    panic!("{}: secret {i} of {} reached a log line ({encoding})", path.display(), secrets.len());
                }
            }
        }
        eprintln!(
            "fleet log check: {} nodes' logs, {} secrets looked for in every encoding: none found",
            self.nodes.len(),
            secrets.len()
        );
    }
}
