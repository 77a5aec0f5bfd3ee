//! The client-side request budget: at most `per_hour` requests to one provider's API in any
//! rolling hour, shared by every tool of a server.
//!
//! Bitbucket Cloud counts per user over a rolling hour and gives no remaining-count header, so
//! the only way to stay under its limit is to count ourselves. Refusing locally also means a
//! spent budget is answered instantly with a wait time instead of a 429 that burns another call.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const DEFAULT_PER_HOUR: u32 = 1000;

#[derive(Debug)]
pub struct Budget {
    per_hour: u32,
    window: Duration,
    sent: Mutex<VecDeque<Instant>>,
}

impl Budget {
    pub fn per_hour(per_hour: u32) -> Budget {
        Budget::new(per_hour, Duration::from_secs(3600))
    }

    /// A budget over another window (tests use seconds, not an hour).
    pub fn new(per_window: u32, window: Duration) -> Budget {
        Budget {
            per_hour: per_window,
            window,
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// Take one request from the budget, or say how long until one is free.
    pub fn take(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        while sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            sent.pop_front();
        }
        if sent.len() < self.per_hour as usize {
            sent.push_back(now);
            return Ok(());
        }
        let wait = match sent.front() {
            Some(oldest) => self.window.saturating_sub(now.duration_since(*oldest)),
            // A zero budget never frees up.
            None => self.window,
        };
        Err(wait.max(Duration::from_secs(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_when_spent_and_names_the_wait() {
        let b = Budget::new(2, Duration::from_secs(60));
        assert!(b.take().is_ok());
        assert!(b.take().is_ok());
        let wait = b.take().unwrap_err();
        assert!(wait <= Duration::from_secs(60) && wait >= Duration::from_secs(59));
        assert!(
            b.take().is_err(),
            "a refusal takes nothing and frees nothing"
        );
    }

    #[test]
    fn frees_up_after_the_window() {
        let b = Budget::new(1, Duration::from_millis(30));
        assert!(b.take().is_ok());
        assert!(b.take().is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.take().is_ok());
    }
}
