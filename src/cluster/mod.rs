//! The fleet (issue #19): what nodes sharing their tickets through etcd need beyond one host.
//!
//! [`seal`] seals the secrets kept in etcd; [`view`] is the cluster status this node shows (role,
//! leader, members' last sync), updated by the fleet's code and read by the API and metrics.

pub mod seal;
pub mod view;
