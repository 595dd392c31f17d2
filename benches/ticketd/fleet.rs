//! The fleet benchmark (issue #19, `cargo bench --features etcd --bench ticketd -- fleet`): three
//! ticketd nodes and three etcd members on loopback, through the fleet tests' harness
//! (`tests/common/fleet.rs`, the in-process emulator). Failover over leader kills, propagation
//! to every node's sinks, etcd requests per refresh, and three nodes holding 10,000 tickets: each
//! node's RSS, etcd's database size and each node's idle wakeups.

use std::time::{Duration, Instant};

use super::{Options, Report};

#[path = "../../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use common::fleet::{Fleet, FleetSpec, quantile};

const WAIT: Duration = Duration::from_secs(60);

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

pub fn bench_fleet(options: &Options, report: &mut Report) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        failover_and_requests(options, report).await;
        many_tickets(options, report).await;
    });
}

/// The etcd gRPC requests every member received, by method (unary calls and stream messages).
async fn etcd_requests(fleet: &Fleet) -> Vec<(&'static str, f64)> {
    let mut out = Vec::new();
    for method in ["Range", "Txn", "Put", "LeaseGrant", "LeaseKeepAlive", "LeaseRevoke", "Watch", "Campaign"] {
        let label = format!("grpc_method=\"{method}\"");
        out.push((method, fleet.etcd.counter("grpc_server_msg_received_total", &label).await));
    }
    out
}

async fn failover_and_requests(options: &Options, report: &mut Report) {
    let rounds = options.pick(20, 5);
    let window = options.pick(Duration::from_secs(60), Duration::from_secs(15));
    report.line(&format!(
        "\n## 6. Fleet: three ticketd nodes, three etcd members (loopback), 4 SLS tickets with 10 s tokens, \
         lease_ttl 2 s: etcd requests over {window:?} of refresh waves, then {rounds} leader kills (kill -9 with a \
         call in flight)\n"
    ));
    let spec = FleetSpec { tickets: 4, log: "ticketd=info", ..FleetSpec::default() };
    let ttl = spec.lease_ttl;
    let mut fleet = Fleet::new(spec).await;
    fleet.start_all();
    fleet.wait_leader(WAIT).await;
    fleet.wait_converged(WAIT).await;

    let before = etcd_requests(&fleet).await;
    let refreshes_before = fleet.stats().refresh_token;
    tokio::time::sleep(window).await;
    let after = etcd_requests(&fleet).await;
    let refreshes = fleet.stats().refresh_token - refreshes_before;
    let per = |n: f64| if refreshes == 0 { 0.0 } else { n / refreshes as f64 };
    let mut total = 0.0;
    let mut detail = Vec::new();
    for ((method, b), (_, a)) in before.iter().zip(&after) {
        let d = a - b;
        total += d;
        if d > 0.0 {
            detail.push(format!("{method} {d:.0} ({:.2}/refresh, {:.2}/s)", per(d), d / window.as_secs_f64()));
        }
    }
    report.line(&format!(
        "- etcd requests over {window:?}: {total:.0} for {refreshes} refreshes = **{:.1} per refresh** \
         (the keep-alives and the watch included); by method: {}",
        per(total),
        detail.join(", ")
    ));

    let mut failovers = Vec::new();
    for _ in 0..rounds {
        let (leader, failover) = fleet.kill_the_leader_mid_call(WAIT).await;
        failovers.push(failover);
        fleet.start(leader);
        fleet.wait_serving(leader, WAIT).await;
    }
    fleet.wait_converged(WAIT).await;
    let (p50, p99) = (quantile(&failovers, 0.5), quantile(&failovers, 0.99));
    report.line(&format!(
        "- failover (kill -9 of the leader to the new leader's first call) over {rounds} kills: p50 {} p99 {} max {}",
        ms(p50),
        ms(p99),
        ms(quantile(&failovers, 1.0))
    ));
    let bound = ttl + Duration::from_secs(2);
    report.target("failover p99 <= lease_ttl + 2 s", p99 <= bound, format!("p99 {}", ms(p99)));
    let propagation = fleet.recorder.with(|r| r.propagation(&[0, 1, 2]));
    let (p50, p99) = (quantile(&propagation, 0.5), quantile(&propagation, 0.99));
    report.line(&format!(
        "- propagation (a generation's first sink write on any node to its last on the three) over {} generations: \
         p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
        propagation.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        quantile(&propagation, 1.0).as_secs_f64() * 1e3
    ));
    report.target("propagation p99 <= 250 ms", p99 <= Duration::from_millis(250), format!("p99 {}", ms(p99)));
    let (violations, forks) = fleet.recorder.with(|r| (r.violations.len(), r.forks.len()));
    let stats = fleet.stats();
    report.line(&format!(
        "- invariants: {violations} broken, {forks} forks; CreateTicket {} (4 tickets), RefreshToken {}",
        stats.create_ticket, stats.refresh_token
    ));
}

async fn many_tickets(options: &Options, report: &mut Report) {
    let n = options.pick(10_000, 1_000);
    let window = options.pick(Duration::from_secs(60), Duration::from_secs(10));
    report.line(&format!(
        "\n### Three nodes holding {n} SLS tickets (1 h tickets and tokens, no sinks), idle over {window:?}\n"
    ));
    let spec = FleetSpec {
        tickets: n,
        ticket_lifetime: "1h",
        token_lifetime: "1h",
        lease_ttl: Duration::from_secs(10),
        log: "ticketd=warn",
        sinks: false,
        preamble: "\n[rate_limits]\nalibaba = 1000000\n",
        ..FleetSpec::default()
    };
    let mut fleet = Fleet::new(spec).await;
    let start = Instant::now();
    fleet.start_all();
    let leader = fleet.wait_leader(WAIT).await;
    let mut ready = Vec::new();
    for i in 0..3 {
        let limit = Duration::from_secs(1200);
        while fleet.ask(i, "/readyz").await.map(|(code, _)| code) != Some(200) {
            assert!(start.elapsed() < limit, "node {i} not ready after {limit:?}\n{}", fleet.describe().await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        ready.push(start.elapsed());
    }
    report.line(&format!(
        "- every node ready (all {n} tickets held) {:.1} s after start; the leader (node {leader}) made {} CreateTicket \
         and {} RefreshToken",
        ready.iter().max().copied().unwrap_or_default().as_secs_f64(),
        fleet.stats().create_ticket,
        fleet.stats().refresh_token
    ));
    let pids: Vec<u32> = fleet.nodes.iter().map(|n| n.pid().expect("running")).collect();
    let before: Vec<u64> = pids.iter().map(|&p| switches(p)).collect();
    let etcd_before = etcd_requests(&fleet).await;
    tokio::time::sleep(window).await;
    let after: Vec<u64> = pids.iter().map(|&p| switches(p)).collect();
    let etcd_after = etcd_requests(&fleet).await;
    for (i, &pid) in pids.iter().enumerate() {
        let role = if i == leader { "leader" } else { "follower" };
        report.line(&format!(
            "- node {i} ({role}): RSS {:.1} MiB, {:.2} wakeups/s idle (context switches of all threads over {window:?})",
            super::process::rss_kib(pid) as f64 / 1024.0,
            (after[i] - before[i]) as f64 / window.as_secs_f64()
        ));
    }
    let idle: f64 = etcd_before.iter().zip(&etcd_after).map(|((_, b), (_, a))| a - b).sum();
    report.line(&format!(
        "- etcd requests while idle: {:.2}/s for the fleet (lease keep-alives)",
        idle / window.as_secs_f64()
    ));
    let status = fleet.etcd.etcdctl(&["endpoint", "status", "-w", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&status).expect("etcdctl endpoint status -w json");
    let sizes: Vec<String> = status
        .as_array()
        .map(|members| {
            members
                .iter()
                .map(|m| {
                    let db = m["Status"]["dbSize"].as_f64().unwrap_or(0.0) / (1024.0 * 1024.0);
                    let used = m["Status"]["dbSizeInUse"].as_f64().unwrap_or(0.0) / (1024.0 * 1024.0);
                    format!("{db:.1} MiB ({used:.1} in use)")
                })
                .collect()
        })
        .unwrap_or_default();
    let dump = fleet.etcd.dump(common::fleet::PREFIX);
    report.line(&format!(
        "- etcd database per member: {}; `etcdctl get --prefix` of the fleet: {:.1} MiB",
        sizes.join(", "),
        dump.len() as f64 / (1024.0 * 1024.0)
    ));
}

/// Context switches of every thread of `pid`, summed.
fn switches(pid: u32) -> u64 {
    super::process::context_switches(pid).iter().map(|(_, n)| n).sum()
}
