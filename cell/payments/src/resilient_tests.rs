//! Tests of `ResilientGateway` against the sandbox provider, on tokio's paused clock:
//! retries with jittered backoff, timeouts, no retry of declines, no double charge when an
//! answer is lost, and the circuit breaker opening, failing fast and recovering.

use super::*;
use crate::gateway::idempotency_key;
use crate::sandbox::{PM_DECLINED, PM_FLAKY, PM_TIMEOUT, PM_VISA, SandboxGateway};
use domain::OrderId;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::time::Instant as TokioInstant;

const TIMEOUT: Duration = Duration::from_secs(5);

fn config() -> PaymentsConfig {
    PaymentsConfig::default()
}

/// A resilient gateway over a shared sandbox whose slow card takes a minute.
fn setup(cfg: &PaymentsConfig) -> (ResilientGateway<Arc<SandboxGateway>>, Arc<SandboxGateway>) {
    let sandbox = Arc::new(SandboxGateway::with_timeout_card_delay(
        Duration::from_secs(60),
    ));
    (ResilientGateway::new(sandbox.clone(), cfg), sandbox)
}

fn req(pm: &str, order: u64) -> AuthorizeRequest {
    AuthorizeRequest {
        amount: Cents(2000),
        currency: "usd".into(),
        payment_method_id: pm.into(),
        customer_ref: "cus_1".into(),
        idempotency_key: idempotency_key(OrderId(order), Op::Authorize),
    }
}

#[test]
fn backoff_grows_with_jitter_within_bounds_and_is_capped() {
    let p = RetryPolicy {
        max_retries: 5,
        base: Duration::from_millis(100),
        max: Duration::from_millis(1_000),
    };
    for seed in 0..200u64 {
        for (retry, exp_ms) in [
            (1u32, 100u64),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1_000),
            (40, 1_000),
        ] {
            let d = p.backoff(retry, seed);
            let exp = Duration::from_millis(exp_ms);
            assert!(d >= exp / 2 && d <= exp, "retry {retry} seed {seed}: {d:?}");
        }
    }
    // Deterministic per seed, different across seeds.
    assert_eq!(p.backoff(2, 7), p.backoff(2, 7));
    let spread: HashSet<Duration> = (0..50).map(|s| p.backoff(2, s)).collect();
    assert!(
        spread.len() > 10,
        "jitter should spread callers: {spread:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn flaky_provider_succeeds_on_retry_with_one_effect() {
    let (gw, sandbox) = setup(&config());
    let started = TokioInstant::now();
    let auth = gw.authorize(&req(PM_FLAKY, 1)).await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(50) && waited <= Duration::from_millis(100));
    let k = idempotency_key(OrderId(1), Op::Capture);
    gw.capture(&auth.id, Cents(2000), &k).await.unwrap();

    let e = sandbox.entry(&auth.id).unwrap();
    assert_eq!((e.effects.authorize, e.effects.capture), (1, 1));
    assert_eq!(
        sandbox.stats().attempts,
        4,
        "two operations, one retry each"
    );
    assert_eq!(gw.circuit_state(), CircuitState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_silent_provider_times_out_after_two_retries() {
    let (gw, sandbox) = setup(&config());
    let started = TokioInstant::now();
    let err = gw.authorize(&req(PM_TIMEOUT, 1)).await.unwrap_err();
    assert_eq!(err, PaymentError::Timeout);
    let waited = started.elapsed();
    // Three 5 s attempts plus two backoffs (50..100 ms, then 100..200 ms).
    assert!(
        waited >= 3 * TIMEOUT + Duration::from_millis(150),
        "{waited:?}"
    );
    assert!(
        waited <= 3 * TIMEOUT + Duration::from_millis(300),
        "{waited:?}"
    );
    assert_eq!(sandbox.stats().attempts, 3);
    assert!(sandbox.ledger().is_empty());
}

#[tokio::test(start_paused = true)]
async fn declines_and_invalid_requests_are_not_retried() {
    let (gw, sandbox) = setup(&config());
    let err = gw.authorize(&req(PM_DECLINED, 1)).await.unwrap_err();
    assert!(matches!(err, PaymentError::Declined { .. }));
    let err = gw.authorize(&req("card_4242", 2)).await.unwrap_err();
    assert!(matches!(err, PaymentError::Invalid(_)));
    assert_eq!(sandbox.stats().attempts, 2);
    // A healthy provider saying no does not move the breaker.
    assert_eq!(gw.lock_breaker().consecutive_failures(), 0);
}

/// A provider that performs the effect but whose first answer per key is lost in transit
/// (it arrives after the caller's timeout): the retry must replay, not charge again.
struct LosesFirstAnswer {
    inner: SandboxGateway,
    lost: Mutex<HashSet<String>>,
}

impl LosesFirstAnswer {
    async fn maybe_lose(&self, key: &str) {
        let first = self.lost.lock().unwrap().insert(key.to_string());
        if first {
            tokio::time::sleep(TIMEOUT * 2).await;
        }
    }
}

impl PaymentGateway for LosesFirstAnswer {
    fn authorize<'a>(&'a self, req: &'a AuthorizeRequest) -> BoxFuture<'a, Result<Authorization>> {
        Box::pin(async move {
            let answer = self.inner.authorize(req).await;
            self.maybe_lose(&req.idempotency_key).await;
            answer
        })
    }
    fn capture<'a>(
        &'a self,
        id: &'a str,
        amount: Cents,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Authorization>> {
        Box::pin(async move {
            let answer = self.inner.capture(id, amount, key).await;
            self.maybe_lose(key).await;
            answer
        })
    }
    fn void<'a>(&'a self, id: &'a str, key: &'a str) -> BoxFuture<'a, Result<Authorization>> {
        self.inner.void(id, key)
    }
    fn refund<'a>(
        &'a self,
        id: &'a str,
        amount: Cents,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Authorization>> {
        self.inner.refund(id, amount, key)
    }
    fn retrieve<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<crate::PaymentRecord>>> {
        self.inner.retrieve(id)
    }
}

#[tokio::test(start_paused = true)]
async fn lost_answers_are_retried_without_double_charging() {
    let provider = LosesFirstAnswer {
        inner: SandboxGateway::default(),
        lost: Mutex::new(HashSet::new()),
    };
    let gw = ResilientGateway::new(provider, &config());
    let auth = gw.authorize(&req(PM_VISA, 9)).await.unwrap();
    let k = idempotency_key(OrderId(9), Op::Capture);
    let cap = gw.capture(&auth.id, Cents(2000), &k).await.unwrap();
    assert_eq!(cap.status, crate::AuthorizationStatus::Captured);

    let sandbox = &gw.inner().inner;
    let ledger = sandbox.ledger();
    assert_eq!(ledger.len(), 1, "authorized once");
    assert_eq!(ledger[0].effects.capture, 1, "captured exactly once");
    assert_eq!(
        sandbox.stats().replays,
        2,
        "each retry was answered from the record"
    );
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_fails_fast_and_recovers_through_one_trial() {
    let (gw, sandbox) = setup(&config());
    sandbox.set_outage(true);

    // Call 1: three failed attempts. Call 2: two more reach the threshold of 5, and the
    // circuit refuses its last retry.
    assert_eq!(
        gw.authorize(&req(PM_VISA, 1)).await,
        Err(PaymentError::Unavailable)
    );
    assert_eq!(
        gw.authorize(&req(PM_VISA, 2)).await,
        Err(PaymentError::Unavailable)
    );
    assert_eq!(sandbox.stats().attempts, 5);
    assert_eq!(gw.circuit_state(), CircuitState::Open);

    // Fails fast: no attempt reaches the provider, and no time passes.
    let started = TokioInstant::now();
    assert_eq!(
        gw.authorize(&req(PM_VISA, 3)).await,
        Err(PaymentError::Unavailable)
    );
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(sandbox.stats().attempts, 5);

    // After the cooldown one trial goes through; it fails, so the circuit reopens.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(gw.circuit_state(), CircuitState::HalfOpen);
    assert_eq!(
        gw.authorize(&req(PM_VISA, 4)).await,
        Err(PaymentError::Unavailable)
    );
    assert_eq!(
        sandbox.stats().attempts,
        6,
        "exactly one trial, no retries past the breaker"
    );
    assert_eq!(gw.circuit_state(), CircuitState::Open);

    // Provider back: the next trial succeeds and closes the circuit.
    sandbox.set_outage(false);
    tokio::time::advance(Duration::from_secs(30)).await;
    gw.authorize(&req(PM_VISA, 5)).await.unwrap();
    assert_eq!(gw.circuit_state(), CircuitState::Closed);
    gw.authorize(&req(PM_VISA, 6)).await.unwrap();
    assert_eq!(sandbox.ledger().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_only_one_concurrent_trial() {
    let cfg = PaymentsConfig {
        breaker_failure_threshold: 1,
        max_retries: 0,
        ..config()
    };
    let (gw, sandbox) = setup(&cfg);
    sandbox.set_outage(true);
    assert!(gw.authorize(&req(PM_VISA, 1)).await.is_err());
    assert_eq!(gw.circuit_state(), CircuitState::Open);
    sandbox.set_outage(false);
    tokio::time::advance(Duration::from_secs(30)).await;

    // The trial is slow (the timeout card, 60 s > 5 s timeout), a second caller arrives
    // meanwhile and must fail fast.
    let gw = Arc::new(gw);
    let trial = tokio::spawn({
        let gw = gw.clone();
        async move { gw.authorize(&req(PM_TIMEOUT, 2)).await }
    });
    tokio::task::yield_now().await;
    assert_eq!(
        gw.authorize(&req(PM_VISA, 3)).await,
        Err(PaymentError::Unavailable)
    );
    assert_eq!(trial.await.unwrap(), Err(PaymentError::Timeout));
    assert_eq!(
        gw.circuit_state(),
        CircuitState::Open,
        "the trial timed out"
    );
}

#[tokio::test(start_paused = true)]
async fn works_behind_a_trait_object() {
    let sandbox: Arc<dyn PaymentGateway> = Arc::new(SandboxGateway::default());
    let gw: Arc<dyn PaymentGateway> = Arc::new(ResilientGateway::new(sandbox, &config()));
    let auth = gw.authorize(&req(PM_VISA, 1)).await.unwrap();
    let voided = gw
        .void(&auth.id, &idempotency_key(OrderId(1), Op::Void))
        .await
        .unwrap();
    assert_eq!(voided.status, crate::AuthorizationStatus::Voided);
}

/// A recorder that logs every metric event as `(name{labels}, value)`.
#[derive(Default)]
struct LogRecorder {
    log: Arc<Mutex<Vec<(String, f64)>>>,
}

struct LogHandle {
    key: String,
    log: Arc<Mutex<Vec<(String, f64)>>>,
}

impl LogHandle {
    fn push(&self, value: f64) {
        self.log.lock().unwrap().push((self.key.clone(), value));
    }
}

impl metrics::CounterFn for LogHandle {
    fn increment(&self, value: u64) {
        self.push(value as f64);
    }
    fn absolute(&self, value: u64) {
        self.push(value as f64);
    }
}

impl metrics::GaugeFn for LogHandle {
    fn increment(&self, value: f64) {
        self.push(value);
    }
    fn decrement(&self, value: f64) {
        self.push(-value);
    }
    fn set(&self, value: f64) {
        self.push(value);
    }
}

impl metrics::HistogramFn for LogHandle {
    fn record(&self, value: f64) {
        self.push(value);
    }
}

impl LogRecorder {
    fn handle(&self, key: &metrics::Key) -> Arc<LogHandle> {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        Arc::new(LogHandle {
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
            log: self.log.clone(),
        })
    }

    fn events(&self, key: &str) -> Vec<f64> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .collect()
    }
}

impl metrics::Recorder for LogRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.handle(key))
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(self.handle(key))
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::from_arc(self.handle(key))
    }
}

#[test]
fn metrics_count_calls_by_outcome_and_track_the_circuit() {
    let recorder = LogRecorder::default();
    // A current-thread runtime keeps every poll on this thread, where the local recorder is.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let cfg = PaymentsConfig {
                breaker_failure_threshold: 2,
                max_retries: 1,
                ..config()
            };
            let (gw, sandbox) = setup(&cfg);
            gw.authorize(&req(PM_FLAKY, 1)).await.unwrap();
            gw.authorize(&req(PM_DECLINED, 2)).await.unwrap_err();
            sandbox.set_outage(true);
            // Both attempts fail: the second reaches the threshold and opens the circuit.
            gw.authorize(&req(PM_VISA, 3)).await.unwrap_err();
            gw.authorize(&req(PM_VISA, 4)).await.unwrap_err();
        })
    });
    let requests = |outcome: &str| {
        recorder.events(&format!(
            "cell_payment_requests_total{{op=authorize,outcome={outcome}}}"
        ))
    };
    assert_eq!(requests("ok"), [1.0]);
    assert_eq!(requests("declined"), [1.0]);
    // The outage opened the circuit on the first failure; the retry was refused.
    assert_eq!(requests("circuit_open"), [1.0]);
    assert_eq!(
        recorder
            .events("cell_payment_retries_total{op=authorize}")
            .len(),
        2
    );
    let latencies = recorder.events("cell_payment_latency_seconds{op=authorize}");
    assert_eq!(latencies.len(), 4);
    assert!(
        latencies[0] >= 0.05,
        "the flaky call waited one backoff: {latencies:?}"
    );
    let gauge = recorder.events("cell_payment_circuit_open{}");
    assert_eq!(gauge.first(), Some(&0.0));
    assert_eq!(gauge.last(), Some(&1.0));
}
