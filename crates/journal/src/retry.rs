//! Retry policy shared by upload and download: exponential backoff with full jitter, a bounded
//! number of attempts per cycle, and a pluggable sleeper so tests can record the delays
//! instead of waiting them out.

use std::time::Duration;

/// How often and how patiently to retry transient failures (network errors, timeouts, 5xx,
/// 408, 429, mismatched acknowledgements) within one cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request per cycle, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff before the first retry is drawn from `[0, base_delay]`.
    pub base_delay: Duration,
    /// Upper bound of the backoff window (it doubles per retry until it reaches this).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Something that waits: `std::thread::sleep` in production, a recorder in tests.
pub type Sleeper = Box<dyn FnMut(Duration) + Send>;

/// The production sleeper.
pub fn thread_sleeper() -> Sleeper {
    Box::new(std::thread::sleep)
}

/// Full-jitter backoff ("sleep = random(0, min(cap, base · 2^n))"): many gates that lost the
/// host at the same moment do not come back in lockstep.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    state: u64,
}

impl Backoff {
    /// Seeded from the OS (falls back to the clock, which is good enough for jitter).
    pub fn from_os() -> Backoff {
        let seed = getrandom::u64().unwrap_or_else(|_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x9E37_79B9_7F4A_7C15)
        });
        Backoff::seeded(seed)
    }

    /// A fixed seed, for reproducible tests.
    pub fn seeded(seed: u64) -> Backoff {
        Backoff { state: seed }
    }

    /// SplitMix64: tiny, and its quality is plenty for spreading retries.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The delay before retry number `retry` (1 for the first retry).
    pub fn delay(&mut self, policy: &RetryPolicy, retry: u32) -> Duration {
        let shift = retry.saturating_sub(1).min(30);
        let window = policy
            .base_delay
            .saturating_mul(1u32 << shift)
            .min(policy.max_delay);
        let micros = window.as_micros().min(u128::from(u64::MAX)) as u64;
        Duration::from_micros(self.next_u64() % micros.saturating_add(1))
    }
}

/// What a status code means for a retry loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// 2xx/304: look at the answer.
    Answer,
    /// Worth another attempt later.
    Transient,
    /// The request itself is wrong: retrying the same bytes cannot help.
    Permanent,
}

pub(crate) fn classify(status: u16) -> Class {
    match status {
        200..=299 | 304 => Class::Answer,
        408 | 429 | 500..=599 => Class::Transient,
        _ => Class::Permanent,
    }
}

/// The `error` member of a JSON error body, or the start of the body as text.
pub(crate) fn error_text(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => e.error.chars().take(500).collect(),
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_grow_and_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        let mut b = Backoff::seeded(7);
        for retry in 1..=8u32 {
            let cap = Duration::from_millis(100 << (retry - 1)).min(p.max_delay);
            for _ in 0..200 {
                assert!(b.delay(&p, retry) <= cap);
            }
        }
        // Full jitter spreads over the whole window.
        let ds: Vec<_> = (0..1000).map(|_| b.delay(&p, 4)).collect();
        assert!(ds.iter().any(|d| *d < Duration::from_millis(100)));
        assert!(ds.iter().any(|d| *d > Duration::from_millis(700)));
        assert_eq!(classify(503), Class::Transient);
        assert_eq!(classify(429), Class::Transient);
        assert_eq!(classify(400), Class::Permanent);
        assert_eq!(classify(304), Class::Answer);
    }
}
