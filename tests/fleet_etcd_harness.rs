//! The etcd test cluster harness itself (tests/common/etcd.rs): three members on free loopback
//! ports become healthy, survive the loss of one, report the loss of quorum when two are gone,
//! and recover when they are restarted on their data.

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
    cluster.stop(2);
    assert!(!cluster.healthy(2).await, "a SIGSTOPped member answers nothing");
    assert!(cluster.healthy(0).await && cluster.healthy(1).await, "two of three keep the quorum");
    cluster.cont(2);
    cluster.wait_healthy(2, HEALTHY_WITHIN).await;
}
