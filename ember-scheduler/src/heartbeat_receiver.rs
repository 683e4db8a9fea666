//! The driver's `HeartbeatReceiver` (reference 002): when each executor was last heard from, and
//! which ones have been silent longer than the executor timeout
//! (`ember.storage.blockManagerHeartbeatTimeoutMs`, else `ember.network.executorTimeout`, else
//! `ember.network.timeout`). A plain state machine on the injected clock; the event loop feeds it
//! heartbeats and asks it for expired executors.
//!
//! As in Spark, silence is only looked at every `ember.network.timeoutInterval` (its
//! `ExpireDeadHosts` schedule, first at start), not at each executor's own deadline: a silent
//! executor is declared lost between the timeout and the timeout plus one interval.

use std::collections::BTreeMap;

use ember_common::ExecutorId;

/// An executor found silent for too long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredExecutor {
    /// Who.
    pub executor_id: ExecutorId,
    /// How long it had been silent when the check ran (`now - lastSeen`), which is what Spark's
    /// warning and loss reason print.
    pub silent_ms: u64,
}

/// Last-seen times of executors, and when the next expiry check is due.
#[derive(Debug)]
pub struct HeartbeatReceiver {
    executor_timeout_ms: u64,
    check_interval_ms: u64,
    next_check_ms: u64,
    /// The context is stopping: nobody is asked to re-register any more (SPARK-34273).
    stopped: bool,
    last_seen: BTreeMap<ExecutorId, u64>,
}

impl HeartbeatReceiver {
    /// Executors silent for longer than `executor_timeout_ms` expire; silence is checked every
    /// `check_interval_ms`, the first time at `now_ms`. The two are validated against each other
    /// when the context starts (Spark's constructor `require`s), not here.
    pub fn new(executor_timeout_ms: u64, check_interval_ms: u64, now_ms: u64) -> Self {
        HeartbeatReceiver {
            executor_timeout_ms,
            // A zero period would make the event loop spin.
            check_interval_ms: check_interval_ms.max(1),
            next_check_ms: now_ms,
            stopped: false,
            last_seen: BTreeMap::new(),
        }
    }

    /// Starts watching a newly registered executor (Spark's `ExecutorRegistered`).
    pub fn executor_added(&mut self, executor_id: &str, now_ms: u64) {
        self.last_seen.insert(executor_id.to_string(), now_ms);
    }

    /// Stops watching an executor that is gone (Spark's `ExecutorRemoved`).
    pub fn executor_removed(&mut self, executor_id: &str) {
        self.last_seen.remove(executor_id);
    }

    /// The context is stopping (Spark's `sc.isStopped`).
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Whether the driver knows the executor.
    pub fn knows(&self, executor_id: &str) -> bool {
        self.last_seen.contains_key(executor_id)
    }

    /// Records a heartbeat and returns whether the executor must register its block manager
    /// again (Spark's `HeartbeatResponse(reregisterBlockManager)`): it must when this receiver
    /// does not know it, or when the block manager master does not know its block manager
    /// (`block_manager_known`, Spark's `executorHeartbeatReceived` answer), but never once the
    /// context is stopping (SPARK-34273).
    pub fn heartbeat(&mut self, executor_id: &str, now_ms: u64, block_manager_known: bool) -> bool {
        let known = match self.last_seen.get_mut(executor_id) {
            Some(t) => {
                *t = (*t).max(now_ms);
                true
            }
            None => false,
        };
        let unknown = !known || !block_manager_known;
        unknown && !self.stopped
    }

    /// Spark's `expireDeadHosts`, when its period is due (else nothing): the executors not heard
    /// from within the timeout, forgotten as they are returned so no later check expires them
    /// twice.
    pub fn expire(&mut self, now_ms: u64) -> Vec<ExpiredExecutor> {
        if now_ms < self.next_check_ms {
            return Vec::new();
        }
        // A fixed rate, as `scheduleAtFixedRate`, without a burst of checks after a late wake-up.
        let behind = (now_ms - self.next_check_ms) / self.check_interval_ms + 1;
        self.next_check_ms += behind * self.check_interval_ms;
        let timeout = self.executor_timeout_ms;
        let dead: Vec<ExpiredExecutor> = self
            .last_seen
            .iter()
            .filter(|(_, t)| now_ms.saturating_sub(**t) > timeout)
            .map(|(id, t)| ExpiredExecutor {
                executor_id: id.clone(),
                silent_ms: now_ms - *t,
            })
            .collect();
        for d in &dead {
            self.last_seen.remove(&d.executor_id);
        }
        dead
    }

    /// When the next expiry check is due.
    pub fn next_deadline_ms(&self) -> u64 {
        self.next_check_ms
    }

    /// The executor timeout, for messages.
    pub fn timeout_ms(&self) -> u64 {
        self.executor_timeout_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(expired: &[ExpiredExecutor]) -> Vec<&str> {
        expired.iter().map(|e| e.executor_id.as_str()).collect()
    }

    /// HeartbeatReceiverSuite "normal heartbeat".
    #[test]
    fn normal_heartbeat() {
        let mut hb = HeartbeatReceiver::new(120_000, 60_000, 0);
        hb.executor_added("1", 0);
        hb.executor_added("2", 0);
        assert!(
            !hb.heartbeat("1", 10, true),
            "a known executor is not re-registered"
        );
        assert!(!hb.heartbeat("2", 20, true));
        assert!(hb.knows("1") && hb.knows("2"));
        assert_eq!(hb.expire(0), vec![], "nobody is silent at the first check");
    }

    /// HeartbeatReceiverSuite "reregister if heartbeat from unregistered executor".
    #[test]
    fn reregister_if_heartbeat_from_unregistered_executor() {
        let mut hb = HeartbeatReceiver::new(120_000, 60_000, 0);
        hb.executor_added("1", 0);
        assert!(
            hb.heartbeat("2", 10, true),
            "an unknown executor re-registers"
        );
        assert!(!hb.knows("2"), "a heartbeat alone does not make it known");
        assert!(!hb.heartbeat("1", 10, true));
    }

    /// HeartbeatReceiverSuite "reregister if heartbeat from removed executor".
    #[test]
    fn reregister_if_heartbeat_from_removed_executor() {
        let mut hb = HeartbeatReceiver::new(120_000, 60_000, 0);
        hb.executor_added("1", 0);
        hb.executor_added("2", 0);
        hb.executor_removed("2");
        assert!(hb.heartbeat("2", 10, true));
        assert!(!hb.heartbeat("1", 10, true));
        assert!(!hb.knows("2"));
    }

    /// Spark's `executorHeartbeatReceived` returning false: a known executor whose block manager
    /// the master forgot re-registers it too.
    #[test]
    fn reregister_if_the_block_manager_is_unknown() {
        let mut hb = HeartbeatReceiver::new(120_000, 60_000, 0);
        hb.executor_added("1", 0);
        assert!(hb.heartbeat("1", 10, false));
        assert!(hb.knows("1"), "the executor itself stays known");
    }

    /// HeartbeatReceiverSuite "SPARK-34273: Do not reregister BlockManager when SparkContext is
    /// stopped".
    #[test]
    fn no_reregister_once_the_context_is_stopping() {
        let mut hb = HeartbeatReceiver::new(120_000, 60_000, 0);
        hb.executor_added("1", 0);
        hb.stop();
        assert!(!hb.heartbeat("2", 10, true), "unknown executor");
        assert!(!hb.heartbeat("1", 10, false), "unknown block manager");
    }

    /// HeartbeatReceiverSuite "expire dead hosts": past the timeout, at the next periodic check,
    /// both silent executors go, each with how long it was silent.
    #[test]
    fn expire_dead_hosts() {
        let timeout = 120_000;
        let mut hb = HeartbeatReceiver::new(timeout, 60_000, 0);
        hb.executor_added("1", 0);
        hb.executor_added("2", 0);
        assert!(!hb.heartbeat("1", 0, true));
        assert!(!hb.heartbeat("2", 0, true));
        assert_eq!(hb.expire(0), vec![]);
        // Spark's test advances its ManualClock past the timeout; here the check that sees it is
        // the first periodic one after it.
        assert_eq!(hb.expire(60_000), vec![]);
        assert_eq!(hb.expire(timeout), vec![]);
        let now = 3 * 60_000;
        assert_eq!(
            hb.expire(now),
            vec![
                ExpiredExecutor {
                    executor_id: "1".into(),
                    silent_ms: now
                },
                ExpiredExecutor {
                    executor_id: "2".into(),
                    silent_ms: now
                },
            ]
        );
        assert!(!hb.knows("1") && !hb.knows("2"));
        assert!(
            hb.heartbeat("1", now, true),
            "an expired executor re-registers"
        );
        assert_eq!(hb.expire(now + 60_000), vec![], "expired only once");
    }

    /// Silence is only looked at every `ember.network.timeoutInterval`: an executor silent just
    /// past the timeout is expired at the next check, with the time it was really silent.
    #[test]
    fn expiry_waits_for_the_periodic_check() {
        let mut hb = HeartbeatReceiver::new(120_000, 60_000, 0);
        assert_eq!(hb.next_deadline_ms(), 0, "the first check runs at start");
        hb.executor_added("a", 0);
        hb.executor_added("b", 0);
        assert!(!hb.heartbeat("a", 50_000, true));
        assert_eq!(hb.expire(0), vec![]);
        assert_eq!(hb.next_deadline_ms(), 60_000);
        assert_eq!(hb.expire(59_999), vec![], "not due yet");
        assert_eq!(hb.expire(60_000), vec![]);
        assert_eq!(
            hb.expire(120_000),
            vec![],
            "exactly at the timeout nobody expires"
        );
        assert_eq!(hb.next_deadline_ms(), 180_000);
        assert_eq!(
            hb.expire(170_001),
            vec![],
            "a is past its timeout, but no check is due"
        );
        assert_eq!(
            hb.expire(180_000),
            vec![
                ExpiredExecutor {
                    executor_id: "a".into(),
                    silent_ms: 130_000
                },
                ExpiredExecutor {
                    executor_id: "b".into(),
                    silent_ms: 180_000
                },
            ]
        );
        assert_eq!(hb.next_deadline_ms(), 240_000);
    }

    /// A late wake-up runs one check and keeps the schedule's phase.
    #[test]
    fn a_late_check_keeps_the_fixed_rate() {
        let mut hb = HeartbeatReceiver::new(1_000, 100, 0);
        hb.executor_added("a", 0);
        assert_eq!(hb.expire(0), vec![]);
        assert_eq!(ids(&hb.expire(1_050)), vec!["a"]);
        assert_eq!(hb.next_deadline_ms(), 1_100);
    }

    #[test]
    fn a_late_heartbeat_never_moves_time_backwards() {
        let mut hb = HeartbeatReceiver::new(100, 1, 0);
        hb.executor_added("a", 50);
        assert!(!hb.heartbeat("a", 10, true));
        assert_eq!(hb.expire(150), vec![]);
        assert_eq!(ids(&hb.expire(151)), vec!["a"]);
    }

    #[test]
    fn removed_executors_never_expire() {
        let mut hb = HeartbeatReceiver::new(100, 1, 0);
        hb.executor_added("c", 0);
        hb.executor_removed("c");
        assert_eq!(hb.expire(10_000), vec![]);
    }
}
