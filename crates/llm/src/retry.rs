//! When a failed attempt is tried again, and after how long. Pure: the clock (for
//! `Retry-After` dates) and the jitter are passed in, so the policy is tested without
//! sleeping.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::failure::Failure;

/// Statuses worth another try: rate limits, gateway trouble, overload (529 is Anthropic's
/// and some proxies' "overloaded").
const RETRYABLE_STATUSES: &[u16] = &[429, 500, 502, 503, 504, 529];
/// A server asking for a longer pause than this is waited for this long only: an
/// interactive user should hear back within a minute, and the retry budget is small.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Cap of the exponential backoff itself, before `Retry-After` is considered.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// `Retry-After` values beyond this are read as this (they are capped far lower anyway;
/// this only keeps the arithmetic finite).
const MAX_HEADER_WAIT: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Tries after the first; the most attempts are `max_retries + 1`.
    pub max_retries: u32,
    /// Base delay of the exponential backoff.
    pub base: Duration,
}

impl RetryPolicy {
    /// After attempt number `attempt` (1-based) failed: the pause before the next one,
    /// or `None` to give up. `emitted` is whether any of the answer already reached the
    /// user (then a retry would show it twice). `jitter` is a random number in [0, 1].
    pub(crate) fn next_delay(
        &self,
        attempt: u32,
        failure: &Failure,
        emitted: bool,
        jitter: f64,
    ) -> Option<Duration> {
        if emitted || attempt > self.max_retries || !retryable(failure) {
            return None;
        }
        Some(self.backoff(attempt, failure.retry_after(), jitter))
    }

    /// The pause before retry number `retry` (1-based): exponential with jitter, never
    /// shorter than what the server asked for, never longer than [`MAX_RETRY_AFTER`].
    pub(crate) fn backoff(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Duration {
        let exp = self
            .base
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(MAX_BACKOFF);
        // "Equal jitter": half fixed, half random, so clients that failed together spread
        // out but none retries immediately.
        let jittered = exp.mul_f64(0.5 + jitter.clamp(0.0, 1.0) * 0.5);
        jittered
            .max(retry_after.unwrap_or_default())
            .min(MAX_RETRY_AFTER)
    }
}

/// Whether another try may help.
pub(crate) fn retryable(failure: &Failure) -> bool {
    match failure {
        // Quota exhaustion comes as a 429 but waiting will not fix it.
        Failure::Status { status, code, .. } => {
            RETRYABLE_STATUSES.contains(status) && code.as_deref() != Some("insufficient_quota")
        }
        Failure::Transport(_) | Failure::Stream(_) | Failure::InStream(_) => true,
        // A hung server is likely to hang again, and each try costs a full timeout.
        Failure::Timeout(_) | Failure::Stalled(_) | Failure::TooLong(_) | Failure::Bad(_) => false,
    }
}

/// `Retry-After` (seconds or HTTP date, against `now`) or OpenAI's `retry-after-ms`.
pub(crate) fn retry_after_from(headers: &HeaderMap, now: jiff::Timestamp) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64(
            (ms / 1000.0).min(MAX_HEADER_WAIT.as_secs_f64()),
        ));
    }
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, now)
}

pub(crate) fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(MAX_HEADER_WAIT.as_secs_f64())));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let wait = at.duration_since(now);
    Some(
        Duration::try_from(wait)
            .unwrap_or(Duration::ZERO)
            .min(MAX_HEADER_WAIT),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 4,
            base: Duration::from_millis(100),
        }
    }

    fn status(status: u16, code: Option<&str>, retry_after: Option<Duration>) -> Failure {
        Failure::Status {
            status,
            message: String::new(),
            code: code.map(str::to_string),
            retry_after,
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now: jiff::Timestamp = "2015-10-21T07:27:58Z".parse().unwrap();
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 2.5 ", now),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("1e12", now), Some(MAX_HEADER_WAIT));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2099 07:00:00 GMT", now),
            Some(MAX_HEADER_WAIT)
        );
    }

    #[test]
    fn retry_after_headers_prefer_milliseconds() {
        let now: jiff::Timestamp = "2015-10-21T07:27:58Z".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(retry_after_from(&h, now), None);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:01 GMT"),
        );
        assert_eq!(retry_after_from(&h, now), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after_from(&h, now), Some(Duration::from_millis(250)));
        h.insert("retry-after-ms", HeaderValue::from_static("NaN"));
        assert_eq!(
            retry_after_from(&h, now),
            Some(Duration::from_secs(3)),
            "an unreadable retry-after-ms falls back to Retry-After"
        );
    }

    #[test]
    fn backoff_grows_with_jitter_honours_retry_after_and_is_capped() {
        let p = policy();
        // Jitter spans half the exponential delay to all of it.
        assert_eq!(p.backoff(1, None, 0.0), Duration::from_millis(50));
        assert_eq!(p.backoff(1, None, 1.0), Duration::from_millis(100));
        assert_eq!(p.backoff(3, None, 0.0), Duration::from_millis(200));
        assert_eq!(p.backoff(3, None, 0.5), Duration::from_millis(300));
        assert_eq!(p.backoff(3, None, 1.0), Duration::from_millis(400));
        assert_eq!(
            p.backoff(1, None, 7.0),
            Duration::from_millis(100),
            "jitter is clamped"
        );
        assert_eq!(
            p.backoff(1, Some(Duration::from_secs(2)), 0.3),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.backoff(1, Some(Duration::from_secs(3600)), 0.3),
            MAX_RETRY_AFTER
        );
        assert_eq!(p.backoff(40, None, 1.0), MAX_BACKOFF);
        assert_eq!(p.backoff(u32::MAX, None, 1.0), MAX_BACKOFF);
    }

    #[test]
    fn which_failures_are_retried() {
        for s in [429, 500, 502, 503, 504, 529] {
            assert!(retryable(&status(s, None, None)), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 422, 501] {
            assert!(!retryable(&status(s, None, None)), "{s}");
        }
        assert!(!retryable(&status(429, Some("insufficient_quota"), None)));
        for f in [
            Failure::Transport(String::new()),
            Failure::Stream(String::new()),
            Failure::InStream(String::new()),
        ] {
            assert!(retryable(&f), "{f:?}");
        }
        for f in [
            Failure::Timeout(1),
            Failure::Stalled(1),
            Failure::TooLong(1),
            Failure::Bad(String::new()),
        ] {
            assert!(!retryable(&f), "{f:?}");
        }
    }

    #[test]
    fn attempts_stop_at_the_budget_or_once_text_was_shown() {
        let p = RetryPolicy {
            max_retries: 2,
            base: Duration::from_millis(10),
        };
        let f = status(503, None, None);
        assert_eq!(
            p.next_delay(1, &f, false, 1.0),
            Some(Duration::from_millis(10))
        );
        assert_eq!(
            p.next_delay(2, &f, false, 1.0),
            Some(Duration::from_millis(20))
        );
        assert_eq!(p.next_delay(3, &f, false, 1.0), None, "3 attempts in all");
        assert_eq!(p.next_delay(1, &f, true, 1.0), None, "the user saw text");
        assert_eq!(p.next_delay(1, &status(400, None, None), false, 1.0), None);
        let f = status(429, None, Some(Duration::from_secs(1)));
        assert_eq!(
            p.next_delay(1, &f, false, 0.0),
            Some(Duration::from_secs(1))
        );
        let none = RetryPolicy {
            max_retries: 0,
            ..p
        };
        assert_eq!(none.next_delay(1, &f, false, 0.0), None);
    }
}
