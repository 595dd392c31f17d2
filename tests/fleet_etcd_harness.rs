//! The etcd test cluster harness itself (tests/common/etcd.rs): three members on free loopback
//! ports become healthy, survive the loss of one, report the loss of quorum when two are gone,
//! recover when they are restarted on their data, and hand their raft leadership to another member
//! when a test is about to take the leader away.

mod common;

use std::time::Duration;

use common::etcd::{EtcdCluster, HEALTHY_WITHIN};

#[tokio::test]
#[cfg_attr(
    not(all(have_etcd, have_etcdctl)),
    ignore = "needs etcd and etcdctl (apt-get install etcd-server etcd-client)"
)]
async fn issue_19_three_members_keep_a_quorum_through_one_loss_and_lose_it_at_two() {
    let mut cluster = EtcdCluster::start(3).await;
    assert_eq!(cluster.endpoints().len(), 3);
    cluster.etcdctl(&["put", "/harness/k", "v1"]);
    assert_eq!(cluster.dump("/harness/"), b"/harness/k\nv1\n");

    cluster.kill(0);
    cluster.wait_all_healthy(HEALTHY_WITHIN).await.unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    cluster.etcdctl(&["put", "/harness/k", "v2"]);

    cluster.kill(1);
    cluster.wait_no_quorum(Duration::from_secs(15)).await;
    assert!(!cluster.healthy(2).await);

    cluster.restart(0);
    cluster.restart(1);
    cluster.wait_all_healthy(HEALTHY_WITHIN).await.unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(cluster.dump("/harness/"), b"/harness/k\nv2\n", "the data survived the restarts");
}

#[tokio::test]
#[cfg_attr(
    not(all(have_etcd, have_etcdctl)),
    ignore = "needs etcd and etcdctl (apt-get install etcd-server etcd-client)"
)]
async fn issue_19_a_stopped_member_is_unhealthy_and_healthy_again_when_continued() {
    let cluster = EtcdCluster::start(3).await;
    // A follower: a stopped leader would leave the other two unhealthy until they elect one.
    cluster.lead_elsewhere(2).await;
    cluster.stop(2);
    assert!(!cluster.healthy(2).await, "a SIGSTOPped member answers nothing");
    assert!(cluster.healthy(0).await && cluster.healthy(1).await, "two of three keep the quorum");
    cluster.cont(2);
    cluster.wait_healthy(2, HEALTHY_WITHIN).await;
}

/// The scan the fleet tests run over etcd finds a secret stored in clear, in hex or in base64 at
/// any alignment, in both of etcdctl's outputs, and finds nothing once the value is sealed.
#[tokio::test]
#[cfg_attr(
    not(all(have_etcd, have_etcdctl)),
    ignore = "needs etcd and etcdctl (apt-get install etcd-server etcd-client)"
)]
async fn issue_19_the_secret_scan_finds_every_encoding_and_nothing_sealed() {
    use base64::Engine as _;
    use common::etcd::find_secret;
    let cluster = EtcdCluster::start(1).await;
    let token = b"TOKEN-9f8e7d6c5b4a-the-shared-access-token";
    let scan = |prefix: &str| {
        let (raw, json) = (cluster.dump(prefix), cluster.dump_json(prefix));
        find_secret(&raw, &[token]).or_else(|| find_secret(&json, &[token]))
    };
    cluster.put_bytes("/scan/plain/k", &[b"{\"token\":\"".as_slice(), token, b"\"}"].concat());
    assert_eq!(scan("/scan/plain/"), Some((0, "raw")));
    for shift in 0..3 {
        let mut value = vec![b'x'; shift];
        value.extend_from_slice(token);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&value);
        let key = format!("/scan/b64-{shift}/k");
        cluster.put_bytes(&key, encoded.as_bytes());
        assert_eq!(scan(&format!("/scan/b64-{shift}/")), Some((0, "base64")), "shift {shift}");
    }
    cluster.put_bytes("/scan/hex/k", hex::encode(token).as_bytes());
    assert_eq!(scan("/scan/hex/"), Some((0, "hex")));

    let sealer = ticketd::cluster::seal::Sealer::from_key(&[3; 32]);
    let sealed = sealer.seal(b"/scan/sealed/k", token);
    cluster.put_bytes("/scan/sealed/k", &sealed);
    assert_eq!(scan("/scan/sealed/"), None, "a sealed value shows the token in no encoding");
    let json = cluster.dump_json("/scan/sealed/");
    let stored = base64::engine::general_purpose::STANDARD.encode(&sealed);
    assert!(String::from_utf8_lossy(&json).contains(&stored), "the sealed bytes were stored whole");
}

/// `lead_elsewhere` moves etcd's raft leadership off the member that holds it (a test that kills
/// a follower must not run into an election), and leaves it alone when another member leads.
#[tokio::test]
#[cfg_attr(
    not(all(have_etcd, have_etcdctl)),
    ignore = "needs etcd and etcdctl (apt-get install etcd-server etcd-client)"
)]
async fn issue_19_the_raft_leadership_moves_off_a_member_on_request() {
    let cluster = EtcdCluster::start(3).await;
    let leading = cluster.leader().unwrap_or_else(|| panic!("no raft leader\n{}", cluster.logs()));
    cluster.lead_elsewhere(leading).await;
    let now = cluster.leader().expect("a leader after the move");
    assert_ne!(now, leading, "the leadership moved off member {leading}");
    let other = (0..3).find(|&i| i != now).expect("a member that does not lead");
    cluster.lead_elsewhere(other).await;
    assert_eq!(cluster.leader(), Some(now), "a follower's request moves nothing");
}
