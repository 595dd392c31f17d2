//! The fleet (issue #19): what nodes sharing their tickets through etcd need beyond one host.
//!
//! [`seal`] seals the secrets kept in etcd; [`view`] is the cluster status this node shows (role,
//! leader, members' last sync), updated by the fleet's code and read by the API and metrics.
//! [`keys`] names the etcd keys, [`record`] is a holding as etcd stores it, [`fence`] the
//! compares that keep a deposed leader's write out, [`gate`] what the scheduler may do for a
//! ticket in each role, [`link`] the scheduler's handle on the fleet, `order` the mod-revision order holdings are
//! applied in; with the `etcd` feature, `prepare` reads what a connection needs (password, key,
//! TLS files), `endpoint` picks the one etcd member a session uses, `etcd` is the connection (lease, election, membership, fenced writes, the initial
//! read and the watch) and `node` the task that runs it and implements the link.

#[cfg(feature = "etcd")]
pub(crate) mod endpoint;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod fence;
pub mod gate;
pub mod keys;
pub mod link;
#[cfg(feature = "etcd")]
pub mod node;
#[cfg(feature = "etcd")]
pub(crate) mod order;
#[cfg(feature = "etcd")]
pub mod prepare;
pub mod record;
pub mod seal;
pub mod view;
