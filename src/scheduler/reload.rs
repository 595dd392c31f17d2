//! The reload diff: a `ReloadPlan` computed from the running tickets with the new config alone,
//! before anything changes (the loop then applies it).

use std::collections::HashSet;

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
#[derive(Debug, PartialEq)]
pub(crate) enum Action {
    /// New: nothing is held for it.
    Add(TicketSpec),
    /// The same settings: keeps everything.
    Keep,
    /// Settings changed, the same target: the holding is kept, the sinks (which may have
    /// changed) are all written again when it holds a valid token (`republish`).
    Change { spec: TicketSpec, republish: bool },
    /// The API target changed: what was held is dropped and obtained anew.
    Replace(TicketSpec),
}

/// Everything a reload does, decided before anything changes.
#[derive(Debug, PartialEq)]
pub(crate) struct ReloadPlan {
    /// Running tickets the new config no longer has, by name (their files stay).
    pub removed: Vec<String>,
    /// One per ticket of the new config, in its order.
    pub actions: Vec<Action>,
}

impl ReloadPlan {
    /// The plan that takes the tickets running in `table` to `tickets`, at `now`.
    pub(crate) fn new(table: &Table, tickets: Vec<TicketSpec>, now: Now) -> ReloadPlan {
        let keep: HashSet<&str> = tickets.iter().map(|t| t.name.as_str()).collect();
        let mut removed: Vec<String> =
            table.tickets().map(|t| t.name()).filter(|name| !keep.contains(name)).map(str::to_string).collect();
        removed.sort_unstable();
        drop(keep);
        let actions = tickets
            .into_iter()
            .map(|spec| match table.by_name(&spec.name) {
                None => Action::Add(spec),
                Some(running) if *running.spec() == spec => Action::Keep,
                Some(running) if identity(running.spec()) == identity(&spec) => {
                    Action::Change { spec, republish: running.holding().valid_token(now).is_some() }
                }
                Some(_) => Action::Replace(spec),
            })
            .collect();
        ReloadPlan { removed, actions }
    }

    /// How many tickets the plan adds.
    pub(crate) fn added(&self) -> usize {
        self.actions.iter().filter(|a| matches!(a, Action::Add(_))).count()
    }

    /// What the plan changes, by name.
    pub(crate) fn summary(&self) -> ReloadSummary {
        let mut summary = ReloadSummary { removed: self.removed.clone(), ..ReloadSummary::default() };
        for action in &self.actions {
            match action {
                Action::Add(spec) => summary.added.push(spec.name.to_string()),
                Action::Keep => summary.unchanged += 1,
                Action::Change { spec, .. } => summary.changed.push(spec.name.to_string()),
                Action::Replace(spec) => summary.replaced.push(spec.name.to_string()),
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
    for action in plan.actions {
        let (spec, republish) = match action {
            Action::Keep => continue,
            Action::Add(spec) => {
                core.insert(table, spec, Holding::default(), now);
                continue;
            }
            Action::Change { spec, republish } => (spec, Some(republish)),
            Action::Replace(spec) => (spec, None),
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
        assert_eq!(
            plan.actions,
            [
                Action::Replace(retargeted("target")),
                Action::Add(spec("new")),
                Action::Change { spec: resettled("settings"), republish: true },
                Action::Keep,
            ]
        );
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
                Action::Change { republish, .. } => *republish,
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
