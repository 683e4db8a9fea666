//! The driver's `HeartbeatReceiver` (reference 002): when each executor was last heard from, and
//! which ones have been silent longer than `ember.network.timeout`. A plain state machine on the
//! injected clock; the event loop feeds it heartbeats and asks it for expired executors.

use std::collections::BTreeMap;

use ember_common::ExecutorId;

/// Last-seen times of executors.
#[derive(Debug)]
pub struct HeartbeatReceiver {
    timeout_ms: u64,
    last_seen: BTreeMap<ExecutorId, u64>,
}

impl HeartbeatReceiver {
    /// Executors silent for longer than `timeout_ms` expire.
    pub fn new(timeout_ms: u64) -> Self {
        HeartbeatReceiver {
            timeout_ms,
            last_seen: BTreeMap::new(),
        }
    }

    /// Starts watching a newly registered executor.
    pub fn executor_added(&mut self, executor_id: &str, now_ms: u64) {
        self.last_seen.insert(executor_id.to_string(), now_ms);
    }

    /// Stops watching an executor that is gone.
    pub fn executor_removed(&mut self, executor_id: &str) {
        self.last_seen.remove(executor_id);
    }

    /// Records a heartbeat; false when the executor is unknown, which asks it to register its
    /// block manager again (Spark's `HeartbeatResponse(reregisterBlockManager = true)`).
    pub fn heartbeat(&mut self, executor_id: &str, now_ms: u64) -> bool {
        match self.last_seen.get_mut(executor_id) {
            Some(t) => {
                *t = (*t).max(now_ms);
                true
            }
            None => false,
        }
    }

    /// Executors not heard from within the timeout, forgotten as they are returned.
    pub fn expire(&mut self, now_ms: u64) -> Vec<ExecutorId> {
        let timeout = self.timeout_ms;
        let dead: Vec<ExecutorId> = self
            .last_seen
            .iter()
            .filter(|(_, t)| now_ms.saturating_sub(**t) > timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &dead {
            self.last_seen.remove(id);
        }
        dead
    }

    /// When the next executor would expire, if none is heard from before.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.last_seen
            .values()
            .min()
            .map(|t| t + self.timeout_ms + 1)
    }

    /// The timeout, for messages.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_executors_expire_and_heartbeats_keep_others_alive() {
        let mut hb = HeartbeatReceiver::new(1000);
        hb.executor_added("a", 0);
        hb.executor_added("b", 0);
        assert!(hb.heartbeat("a", 900));
        assert_eq!(
            hb.expire(1000),
            Vec::<String>::new(),
            "exactly at the timeout nobody expires"
        );
        assert_eq!(hb.next_deadline_ms(), Some(1001));
        assert_eq!(hb.expire(1001), vec!["b".to_string()]);
        assert!(
            !hb.heartbeat("b", 1002),
            "an unknown executor is asked to re-register"
        );
        assert!(hb.heartbeat("a", 1800));
        assert_eq!(hb.expire(2700), Vec::<String>::new());
        assert_eq!(hb.expire(2801), vec!["a".to_string()]);
        assert_eq!(hb.next_deadline_ms(), None);
        hb.executor_added("c", 3000);
        hb.executor_removed("c");
        assert_eq!(hb.expire(10_000), Vec::<String>::new());
    }

    #[test]
    fn a_late_heartbeat_never_moves_time_backwards() {
        let mut hb = HeartbeatReceiver::new(100);
        hb.executor_added("a", 50);
        assert!(hb.heartbeat("a", 10));
        assert_eq!(hb.expire(150), Vec::<String>::new());
        assert_eq!(hb.expire(151), vec!["a".to_string()]);
    }
}
