//! Which etcd member a fleet session talks to (issue #19): one that answers, never a channel
//! balanced over every endpoint. etcd-client's balanced channel sends requests to a dead member
//! too, and a session ends on any error, so one member of three killed ended every node's session
//! again and again. A session now probes the endpoints in an order that spreads the nodes over
//! them and keeps the first that answers a linearizable read; a member that dies later ends the
//! sessions on it once, and the next session probes again.

use std::time::Duration;

use etcd_client::{Client, ConnectOptions, GetOptions};

/// The longest a probe of one endpoint runs alone: connecting (TLS, authentication) and one read.
pub(crate) const PROBE_LIMIT: Duration = Duration::from_secs(1);

/// How long a probe of one endpoint runs alone in a fleet of `lease_ttl` before the next one
/// starts beside it: a third of the TTL, at most [`PROBE_LIMIT`], so a silent member delays a
/// connect by that much only.
pub(crate) fn probe_timeout(lease_ttl: Duration) -> Duration {
    (lease_ttl / 3).min(PROBE_LIMIT)
}

/// How long the probes of a connect in a fleet of `lease_ttl` may take in all: half the TTL (the
/// node bounds the whole connect, the lease grant included, by the TTL), so an error that names
/// every endpoint comes before the node's own timeout.
pub(crate) fn probe_budget(lease_ttl: Duration) -> Duration {
    lease_ttl / 2
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

/// Connect to the first of `endpoints` to answer a linearizable count of the keys under `prefix`
/// (the members': cheap, no key or value comes back; a member without a quorum cannot answer it,
/// so one cut off from the others is skipped). The probes start in node `node`'s [`probe_order`]:
/// the next one when the last has failed or has not answered within `step`, the slow ones kept
/// running (a loaded member that answers late still counts). Returns that endpoint and its
/// client, or, once every probe failed or `budget` ran out, every endpoint tried and why.
pub(crate) async fn first_live(
    endpoints: &[String],
    node: &str,
    options: &ConnectOptions,
    step: Duration,
    budget: Duration,
    prefix: &str,
) -> Result<(String, Client), Unanswered> {
    let deadline = tokio::time::Instant::now() + budget;
    let mut order = probe_order(node, endpoints.len());
    let mut probes = tokio::task::JoinSet::new();
    let mut pending: Vec<usize> = Vec::with_capacity(endpoints.len());
    let mut failed: Vec<(usize, String)> = Vec::with_capacity(endpoints.len());
    let mut next_at = tokio::time::Instant::now();
    let mut left = endpoints.len();
    loop {
        if tokio::time::Instant::now() >= next_at
            && let Some(i) = order.next()
        {
            let (endpoint, options, prefix) = (endpoints[i].clone(), options.clone(), prefix.to_string());
            probes.spawn(async move {
                let probe = async {
                    let mut client = Client::connect([endpoint.as_str()], Some(options)).await?;
                    client.get(prefix.as_bytes(), Some(GetOptions::new().with_prefix().with_count_only())).await?;
                    Ok::<_, etcd_client::Error>(client)
                };
                (i, probe.await)
            });
            pending.push(i);
            next_at = tokio::time::Instant::now() + step;
        }
        if left == 0 {
            break;
        }
        let more = pending.len() + failed.len() < endpoints.len();
        tokio::select! {
            joined = probes.join_next(), if !probes.is_empty() => match joined {
                Some(Ok((i, Ok(client)))) => return Ok((endpoints[i].clone(), client)),
                Some(Ok((i, Err(e)))) => {
                    pending.retain(|&p| p != i);
                    failed.push((i, e.to_string()));
                    left -= 1;
                    // A member that refuses: the next one at once.
                    next_at = tokio::time::Instant::now();
                }
                // A probe task does not panic; one that did names its endpoint below as pending.
                Some(Err(_)) | None => {}
            },
            () = tokio::time::sleep_until(next_at), if more => {}
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    let mut unanswered = Unanswered::default();
    let waited = format!("no answer within {}", humantime::format_duration(budget));
    for i in probe_order(node, endpoints.len()) {
        if let Some((_, why)) = failed.iter().find(|(f, _)| *f == i) {
            unanswered.push(&endpoints[i], why.clone());
        } else if pending.contains(&i) {
            unanswered.push(&endpoints[i], waited.clone());
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
