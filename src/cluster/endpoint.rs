//! Which etcd member a fleet session talks to (issue #19): one that answers, never a channel
//! balanced over every endpoint. etcd-client's balanced channel sends requests to a dead member
//! too, and a session ends on any error, so one member of three killed ended every node's session
//! again and again. A session now probes the endpoints in an order that spreads the nodes over
//! them and keeps the first that answers a linearizable read; a member that dies later ends the
//! sessions on it once, and the next session probes again.

use std::time::Duration;

use etcd_client::{Client, ConnectOptions, GetOptions};

/// The longest a probe of one endpoint may take: connecting (TLS, authentication) and one read.
pub(crate) const PROBE_LIMIT: Duration = Duration::from_secs(1);

/// How long one endpoint has to answer a probe in a fleet of `lease_ttl`: a third of the TTL, at
/// most [`PROBE_LIMIT`], so a few silent members leave time for a live one within the TTL the
/// node gives a connect.
pub(crate) fn probe_timeout(lease_ttl: Duration) -> Duration {
    (lease_ttl / 3).min(PROBE_LIMIT)
}

/// The indices of `count` endpoints in the order node `node` probes them: from a hash of its name
/// modulo the count, then the next ones, wrapping (nodes of one fleet start at different members).
pub(crate) fn probe_order(node: &str, count: usize) -> impl Iterator<Item = usize> {
    // A polynomial hash (Java's String::hashCode, in 64 bits): the same start for a name on every
    // host and build, and names that differ only in a last character (ticketd-0, ticketd-1, ...)
    // get consecutive hashes, so n such nodes start at n different members of n.
    let hash = node.bytes().fold(0_u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let start = if count == 0 { 0 } else { (hash % count as u64) as usize };
    (0..count).map(move |i| (start + i) % count)
}

/// The endpoints that did not answer a probe and why, as an error names them: "URL: why" joined
/// by "; " (etcd's and the transport's messages, never the password).
#[derive(Debug, Default)]
pub(crate) struct Unanswered(Vec<(String, String)>);

impl Unanswered {
    fn push(&mut self, endpoint: &str, why: String) {
        self.0.push((endpoint.to_string(), why));
    }
}

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (endpoint, why)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{endpoint}: {why}")?;
        }
        Ok(())
    }
}

/// Connect to the first of `endpoints`, in node `node`'s [`probe_order`], that answers within
/// `timeout` a linearizable count of the keys under `prefix` (the members': cheap, no key or value
/// comes back; a member without a quorum cannot answer it, so one cut off from the others is
/// skipped).
/// Returns that endpoint and its client, or every endpoint tried and why it was passed over.
pub(crate) async fn first_live<'e>(
    endpoints: &'e [String],
    node: &str,
    options: &ConnectOptions,
    timeout: Duration,
    prefix: &str,
) -> Result<(&'e str, Client), Unanswered> {
    let mut unanswered = Unanswered::default();
    for i in probe_order(node, endpoints.len()) {
        let endpoint = endpoints[i].as_str();
        let probe = async {
            let mut client = Client::connect([endpoint], Some(options.clone())).await?;
            let count = GetOptions::new().with_prefix().with_count_only();
            client.get(prefix.as_bytes(), Some(count)).await?;
            Ok::<_, etcd_client::Error>(client)
        };
        match tokio::time::timeout(timeout, probe).await {
            Ok(Ok(client)) => return Ok((endpoint, client)),
            Ok(Err(e)) => unanswered.push(endpoint, e.to_string()),
            Err(_) => unanswered.push(endpoint, format!("no answer within {}", humantime::format_duration(timeout))),
        }
    }
    Err(unanswered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_19_each_node_probes_every_endpoint_once_and_nodes_start_at_different_ones() {
        for count in 1..=5 {
            for node in ["a", "b", "node-1", "ticketd-0", ""] {
                let mut order: Vec<usize> = probe_order(node, count).collect();
                let start = order[0];
                assert!(order.windows(2).all(|w| w[1] == (w[0] + 1) % count), "{node} of {count}: {order:?}");
                order.sort_unstable();
                assert_eq!(order, (0..count).collect::<Vec<_>>(), "{node} of {count} from {start}");
            }
        }
        assert_eq!(probe_order("a", 0).count(), 0);
        // A StatefulSet's three pods start at three different members of three.
        let starts: std::collections::HashSet<usize> =
            ["ticketd-0", "ticketd-1", "ticketd-2"].iter().map(|n| probe_order(n, 3).next().unwrap()).collect();
        assert_eq!(starts.len(), 3, "{starts:?}");
        // The same name starts at the same member every time.
        assert_eq!(probe_order("ticketd-1", 3).next(), probe_order("ticketd-1", 3).next());
    }

    #[test]
    fn issue_19_a_probe_waits_a_third_of_the_lease_at_most_a_second() {
        assert_eq!(probe_timeout(Duration::from_secs(2)), Duration::from_secs(2) / 3);
        assert_eq!(probe_timeout(Duration::from_secs(3)), Duration::from_secs(1));
        assert_eq!(probe_timeout(Duration::from_secs(60)), PROBE_LIMIT);
    }

    #[test]
    fn issue_19_the_endpoints_not_answering_are_each_named_with_why() {
        let mut unanswered = Unanswered::default();
        assert_eq!(unanswered.to_string(), "");
        unanswered.push("http://10.0.0.1:2379", "tcp connect error".into());
        unanswered.push("http://10.0.0.2:2379", "no answer within 1s".into());
        assert_eq!(
            unanswered.to_string(),
            "http://10.0.0.1:2379: tcp connect error; http://10.0.0.2:2379: no answer within 1s"
        );
    }
}
