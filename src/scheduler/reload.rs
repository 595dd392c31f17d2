//! The reload diff: a `ReloadPlan` computed from the running tickets with the new config alone,
//! before anything changes (the loop then applies it).

use crate::board::{Board, Table};
use crate::clock::Now;
use crate::config::TicketSpec;
use crate::scheduler::core::Core;
use crate::scheduler::revoke::{forget_revocations, kept_active};
use crate::store::record::identity;
use crate::token::Holding;

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Settings changed; the held ticket and token are kept.
    pub changed: Vec<String>,
    /// The API target changed; what was held is dropped and obtained anew.
    pub replaced: Vec<String>,
    pub unchanged: usize,
}

/// What a reload does to one ticket of the new config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// New: nothing is held for it.
    Add,
    /// The same settings: keeps everything.
    Keep,
    /// Settings changed, the same target: the holding is kept, the sinks (which may have
    /// changed) are all written again when it holds a valid token (`republish`).
    Change { republish: bool },
    /// The API target changed: what was held is dropped and obtained anew.
    Replace,
}

/// Everything a reload does, decided before anything changes.
///
/// The new tickets are held once, in `tickets`, and their actions beside them (a byte or two
/// each): an action that carried its ticket took 40 bytes where the ticket takes 32, so the plan
/// of a 100,000-ticket reload held a second copy of the list, 3.8 MiB, at the reload's peak.
#[derive(Debug, PartialEq)]
pub(crate) struct ReloadPlan {
    /// Running tickets the new config no longer has, by name (their files stay).
    pub removed: Vec<String>,
    /// The new config's tickets, in its order.
    pub tickets: Vec<TicketSpec>,
    /// What the reload does to each of `tickets`, in the same order.
    pub actions: Vec<Action>,
}

impl ReloadPlan {
    /// The plan that takes the tickets running in `table` to `tickets`, at `now`.
    pub(crate) fn new(table: &Table, tickets: Vec<TicketSpec>, now: Now) -> ReloadPlan {
        // Which running tickets the new config names, by id (a flag each, not a set of names).
        let mut named = vec![false; table.iter().map(|(id, _)| id as usize + 1).max().unwrap_or(0)];
        let actions = tickets
            .iter()
            .map(|spec| match table.id(&spec.name).and_then(|id| Some((id, table.get(id)?))) {
                None => Action::Add,
                Some((id, running)) => {
                    named[id as usize] = true;
                    if running.spec() == spec {
                        Action::Keep
                    } else if identity(running.spec()) == identity(spec) {
                        Action::Change { republish: running.holding().valid_token(now).is_some() }
                    } else {
                        Action::Replace
                    }
                }
            })
            .collect();
        let mut removed: Vec<String> =
            table.iter().filter(|(id, _)| !named[*id as usize]).map(|(_, t)| t.name().to_string()).collect();
        removed.sort_unstable();
        ReloadPlan { removed, tickets, actions }
    }

    /// How many tickets the plan adds.
    pub(crate) fn added(&self) -> usize {
        self.actions.iter().filter(|a| matches!(a, Action::Add)).count()
    }

    /// What the plan changes, by name.
    pub(crate) fn summary(&self) -> ReloadSummary {
        let mut summary = ReloadSummary { removed: self.removed.clone(), ..ReloadSummary::default() };
        for (spec, action) in self.tickets.iter().zip(&self.actions) {
            match action {
                Action::Add => summary.added.push(spec.name.to_string()),
                Action::Keep => summary.unchanged += 1,
                Action::Change { .. } => summary.changed.push(spec.name.to_string()),
                Action::Replace => summary.replaced.push(spec.name.to_string()),
            }
        }
        summary
    }
}

/// Apply `plan` to the tickets in `table` at `now`: unchanged tickets keep everything, changed
/// ones keep their holding, retargeted ones start anew, removed ones stop (their files stay).
pub(crate) fn apply(plan: ReloadPlan, core: &mut Core, board: &Board, table: &mut Table, now: Now) {
    for name in &plan.removed {
        if let Some(gone) = table.id(name).and_then(|id| table.remove(id)) {
            forget_revocations(board, name);
            kept_active(name, gone.written(), "it is no longer in the config");
        }
    }
    table.reserve(plan.added());
    for (spec, action) in plan.tickets.into_iter().zip(plan.actions) {
        let republish = match action {
            Action::Keep => continue,
            Action::Add => {
                core.insert(table, spec, Holding::default(), now);
                continue;
            }
            Action::Change { republish } => Some(republish),
            Action::Replace => None,
        };
        let id = table.id(&spec.name).expect("a changed ticket is on the board");
        let ticket = table.get_mut(id).expect("the ticket is on the board");
        if let Some(republish) = republish {
            // The sinks may have changed: all are written again.
            ticket.reconfigured(spec, republish);
            if republish {
                core.publish(table, id);
            }
        } else {
            let name = spec.name.clone();
            forget_revocations(board, &name);
            kept_active(&name, ticket.written(), "its target changed");
            // A call still out for the old target is dropped when it returns (its epoch is old).
            ticket.retargeted(spec, core.next_epoch());
        }
        core.queue.reschedule(table, id, now);
    }
    table.touch();
    core.saves.soon(now.mono);
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::board::Ticket;
    use crate::clock::{Clock, PausedClock, from_unix_seconds};
    use crate::config::ApiSpec;
    use crate::secret::Secret;
    use crate::token::{Current, Holding, TokenPart};

    const HOUR: Duration = Duration::from_secs(3600);

    fn spec(name: &str) -> TicketSpec {
        crate::scheduler::tests::sls_ticket(name, 24 * HOUR, HOUR)
    }

    fn holding(now: SystemTime, expires_in: Duration) -> Holding {
        let token = TokenPart {
            value: Secret::new("token"),
            username: None,
            token_id: None,
            issued_at: now.into(),
            expires_at: (now + expires_in).into(),
        };
        Holding {
            current: Some(Current { ticket: None, token, generation: 1, refreshed_at: now.into(), expires_mono: None }),
            pending: None,
        }
    }

    fn table(tickets: Vec<(TicketSpec, Holding)>) -> Table {
        let mut table = Table::default();
        for (spec, holding) in tickets {
            table.insert(Ticket::new(spec, holding, 1, 0));
        }
        table
    }

    fn retargeted(name: &str) -> TicketSpec {
        let mut spec = spec(name);
        let ApiSpec::Sls(sls) = &mut spec.api else { unreachable!("an sls ticket") };
        sls.endpoint.base = url::Url::parse("https://cn-beijing.log.aliyuncs.com").unwrap();
        spec
    }

    fn resettled(name: &str) -> TicketSpec {
        let mut spec = spec(name);
        let ApiSpec::Sls(sls) = &mut spec.api else { unreachable!("an sls ticket") };
        sls.token_lifetime = 2 * HOUR;
        spec
    }

    #[test]
    fn a_plan_sorts_each_ticket_into_exactly_one_action_in_config_order() {
        let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
        let now = clock.read();
        let running = table(vec![
            (spec("same"), Holding::default()),
            (spec("gone-b"), Holding::default()),
            (spec("settings"), holding(now.wall, HOUR)),
            (spec("target"), holding(now.wall, HOUR)),
            (spec("gone-a"), Holding::default()),
        ]);
        let plan = ReloadPlan::new(
            &running,
            vec![retargeted("target"), spec("new"), resettled("settings"), spec("same")],
            now,
        );
        assert_eq!(plan.removed, ["gone-a", "gone-b"], "removed, by name");
        assert_eq!(plan.actions, [Action::Replace, Action::Add, Action::Change { republish: true }, Action::Keep]);
        assert_eq!(plan.tickets, [retargeted("target"), spec("new"), resettled("settings"), spec("same")]);
        assert_eq!(plan.added(), 1);
        assert_eq!(
            plan.summary(),
            ReloadSummary {
                added: vec!["new".into()],
                removed: vec!["gone-a".into(), "gone-b".into()],
                changed: vec!["settings".into()],
                replaced: vec!["target".into()],
                unchanged: 1,
            }
        );
    }

    #[test]
    fn a_plan_holds_the_new_tickets_once_in_the_list_it_was_given() {
        // At 100,000 tickets a second list of them is 3 MiB at the reload's peak.
        let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
        let tickets: Vec<TicketSpec> = (0..1000).map(|i| spec(&format!("t{i}"))).collect();
        let list = tickets.as_ptr();
        let running = table(vec![(spec("t1"), Holding::default()), (spec("gone"), Holding::default())]);
        let plan = ReloadPlan::new(&running, tickets, clock.read());
        assert_eq!(plan.tickets.as_ptr(), list, "the tickets stay in their list");
        assert!(size_of::<Action>() <= 2, "an action is {} bytes", size_of::<Action>());
        assert_eq!(
            (plan.removed.as_slice(), plan.added(), plan.actions[1]),
            (["gone".to_string()].as_slice(), 999, Action::Keep)
        );
    }

    #[test]
    fn a_changed_ticket_is_republished_only_while_it_holds_a_valid_token() {
        let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
        let now = clock.read();
        let running = table(vec![
            (spec("none"), Holding::default()),
            (spec("valid"), holding(now.wall, HOUR)),
            (spec("expired"), holding(now.wall - 2 * HOUR, HOUR)),
        ]);
        let plan = ReloadPlan::new(&running, vec![resettled("none"), resettled("valid"), resettled("expired")], now);
        let republish: Vec<bool> = plan
            .actions
            .iter()
            .map(|a| match a {
                Action::Change { republish } => *republish,
                other => panic!("a change of settings, not {other:?}"),
            })
            .collect();
        assert_eq!(republish, [false, true, false]);
        assert!(plan.removed.is_empty());
    }

    #[test]
    fn the_same_config_plans_nothing_and_an_empty_one_removes_everything() {
        let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
        let now = clock.read();
        let running = table(vec![(spec("a"), Holding::default()), (spec("b"), holding(now.wall, HOUR))]);
        let same = ReloadPlan::new(&running, vec![spec("b"), spec("a")], now);
        assert_eq!(same.actions, [Action::Keep, Action::Keep]);
        assert_eq!(same.summary(), ReloadSummary { unchanged: 2, ..ReloadSummary::default() });
        let empty = ReloadPlan::new(&running, Vec::new(), now);
        assert_eq!(empty.removed, ["a", "b"]);
        assert!(empty.actions.is_empty());
        // Computing a plan changes nothing.
        assert_eq!(running.len(), 2);
        assert!(running.by_name("b").unwrap().holding().current.is_some());
    }
}
