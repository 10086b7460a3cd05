//! How long the current request may still take: the deadline every platform call in it
//! respects.
//!
//! A Lambda function is killed at its invocation's deadline; an HTTP handler must answer before
//! that, and a platform call must not start an attempt, or sleep before a retry, past it. The
//! deadline is a tokio task-local set once around the whole request ([`within`]) rather than a
//! parameter of every platform method: the platform clients read it in their one retry loop
//! (`platform::http`), and code that runs without one (the sweeper, `reflector-admin`, tests)
//! keeps the clients' own per-request timeouts.

use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `f` with `deadline` as the deadline of everything in it; an enclosing deadline that is
/// earlier still wins, so a part of a request can be given less time, never more.
pub async fn within<F: Future>(deadline: Instant, f: F) -> F::Output {
    let deadline = current().map_or(deadline, |outer| outer.min(deadline));
    DEADLINE.scope(deadline, f).await
}

/// How long past the deadline [`enforce`] lets work run that does not watch the deadline
/// itself: enough for a platform call cut at the deadline to come back with its own error.
pub const GRACE: Duration = Duration::from_millis(250);

/// Runs `f`, abandoning it [`GRACE`] after the current deadline (`None` then); without a
/// deadline it runs to the end. For work that does not watch the deadline (store writes, a
/// platform fake) so that it cannot hold the request past it.
pub async fn enforce<F: Future>(f: F) -> Option<F::Output> {
    match current() {
        Some(d) => tokio::time::timeout_at(d + GRACE, f).await.ok(),
        None => Some(f.await),
    }
}

/// The deadline of the current task, if it runs under [`within`].
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// The time left before the current deadline (zero once past it); `None` without one.
pub fn remaining() -> Option<Duration> {
    current().map(|d| d.saturating_duration_since(Instant::now()))
}

/// The instant `margin` before a Lambda invocation's deadline (`Context::deadline()`, wall
/// time), as seen at the wall time `now_wall`, which is the instant `now`: the one conversion of
/// Lambda's wall-clock deadline to the monotonic clock every function's deadline uses. A
/// deadline already past, or nearer than `margin`, is `now`.
pub fn before_lambda_deadline(
    deadline: SystemTime,
    margin: Duration,
    now_wall: SystemTime,
    now: std::time::Instant,
) -> std::time::Instant {
    let left = deadline.duration_since(now_wall).unwrap_or(Duration::ZERO);
    now + left.saturating_sub(margin)
}

/// [`before_lambda_deadline`] as of now.
pub fn before_lambda_deadline_now(deadline: SystemTime, margin: Duration) -> std::time::Instant {
    before_lambda_deadline(
        deadline,
        margin,
        SystemTime::now(),
        std::time::Instant::now(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_inner_deadline_cannot_extend_the_outer_one() {
        assert_eq!(current(), None);
        let outer = Instant::now() + Duration::from_secs(5);
        let (inner_later, inner_earlier) = within(outer, async {
            let later = within(outer + Duration::from_secs(60), async { current() }).await;
            let earlier = within(outer - Duration::from_secs(2), async { current() }).await;
            (later, earlier)
        })
        .await;
        assert_eq!(inner_later, Some(outer));
        assert_eq!(inner_earlier, Some(outer - Duration::from_secs(2)));
        assert_eq!(current(), None, "the deadline ends with its scope");
    }

    #[tokio::test]
    async fn enforce_abandons_work_that_outlives_the_deadline() {
        let soon = Instant::now() + Duration::from_millis(10);
        let slow = within(soon, enforce(tokio::time::sleep(Duration::from_secs(60)))).await;
        assert_eq!(slow, None);
        let quick = within(soon + Duration::from_secs(60), enforce(async { 7 })).await;
        assert_eq!(quick, Some(7));
        assert_eq!(enforce(async { 8 }).await, Some(8), "no deadline, no limit");
    }

    #[test]
    fn a_lambda_deadline_becomes_the_instant_a_margin_before_it() {
        let wall = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let now = std::time::Instant::now();
        let at_ms = |ms: u64| std::time::UNIX_EPOCH + Duration::from_millis(ms);
        let margin = Duration::from_secs(10);
        assert_eq!(
            before_lambda_deadline(at_ms(1_000_000_000 + 120_000), margin, wall, now),
            now + Duration::from_secs(110)
        );
        // Less time left than the margin, or a deadline already past: no time at all.
        assert_eq!(
            before_lambda_deadline(at_ms(1_000_000_000 + 3_000), margin, wall, now),
            now
        );
        assert_eq!(before_lambda_deadline(at_ms(5), margin, wall, now), now);
    }

    #[tokio::test]
    async fn remaining_is_zero_once_the_deadline_has_passed() {
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(
            within(past, async { remaining() }).await,
            Some(Duration::ZERO)
        );
    }
}
