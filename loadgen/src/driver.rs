//! The open-loop driver: a dispatcher thread sends each request at its intended time
//! (never waiting for earlier answers), tokio tasks carry them, a ticker keeps the
//! progress line and the per-second timeline.
//!
//! The dispatcher is a plain thread sleeping with `std::thread::sleep` (tens of µs of
//! slack on Linux) rather than a tokio timer (1 ms granularity), so at thousands of
//! requests per second the requests leave close to their intended times. When the
//! in-flight cap is reached the dispatcher waits for a slot; requests keep their
//! intended times, so that wait shows up as latency, not as a lower rate.

use crate::pacing::Schedule;
use crate::report::TimelinePoint;
use crate::report::stats::{OpStats, Recorder};
use crate::scenarios::Scenario;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A live bar on a terminal, a line every 5 s otherwise.
    Auto,
    Bar,
    Lines,
    Off,
}

#[derive(Debug, Clone)]
pub struct DriveOpts {
    pub schedule: Schedule,
    pub max_in_flight: usize,
    /// How long to wait for answers after the last request was sent.
    pub drain: Duration,
    pub progress: ProgressMode,
}

#[derive(Debug)]
pub struct DriveResult {
    pub started: Instant,
    pub steady_from: Instant,
    pub stopped: Instant,
    pub unfinished: u64,
    pub cap_waits: u64,
    pub max_lag: Duration,
    pub timeline: Vec<TimelinePoint>,
    pub interrupted: bool,
}

struct Dispatched {
    cap_waits: u64,
    max_lag: Duration,
}

/// Runs `scenario` on `opts.schedule`, recording into `rec`.
pub async fn drive<S: Scenario>(
    scenario: Arc<S>,
    rec: Arc<Recorder>,
    opts: DriveOpts,
) -> DriveResult {
    let sched = opts.schedule;
    let headline = scenario.headline_op();
    let max = opts.max_in_flight.max(1);
    let sem = Arc::new(Semaphore::new(max));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now() + Duration::from_millis(20);
    let steady_from = started + sched.ramp_up;
    rec.set_steady_from(steady_from);
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::Relaxed);
            }
        });
    }
    let handle = tokio::runtime::Handle::current();
    let dispatcher = {
        let (sem, stop, done) = (sem.clone(), stop.clone(), done.clone());
        std::thread::Builder::new()
            .name("loadgen-dispatch".into())
            .spawn(move || {
                let mut d = Dispatched {
                    cap_waits: 0,
                    max_lag: Duration::ZERO,
                };
                let mut i = 0u64;
                while let Some(off) = sched.offset(i) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let at = started + off;
                    let now = Instant::now();
                    if at > now {
                        std::thread::sleep(at - now);
                    }
                    d.max_lag = d.max_lag.max(Instant::now().saturating_duration_since(at));
                    let permit = match sem.clone().try_acquire_owned() {
                        Ok(p) => p,
                        Err(_) => {
                            d.cap_waits += 1;
                            match handle.block_on(sem.clone().acquire_owned()) {
                                Ok(p) => p,
                                Err(_) => break,
                            }
                        }
                    };
                    let s = scenario.clone();
                    handle.spawn(async move {
                        s.run_one(at, i).await;
                        drop(permit);
                    });
                    i += 1;
                }
                done.store(true, Ordering::Release);
                d
            })
            .expect("spawning the dispatcher thread")
    };

    let mut ticker = Ticker::new(&rec, &opts, headline, started);
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::from_std(started + Duration::from_secs(1)),
        Duration::from_secs(1),
    );
    while !done.load(Ordering::Acquire) {
        tokio::select! {
            _ = tick.tick() => ticker.tick(max - sem.available_permits()),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    let dispatched = tokio::task::spawn_blocking(move || dispatcher.join())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(Dispatched {
            cap_waits: 0,
            max_lag: Duration::ZERO,
        });
    let stopped = Instant::now();
    // Wait for the requests still in flight, ticking on.
    let drain_until = stopped + opts.drain;
    while sem.available_permits() < max && Instant::now() < drain_until && !stop_now(&stop, stopped)
    {
        tokio::select! {
            _ = tick.tick() => ticker.tick(max - sem.available_permits()),
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    let unfinished = (max - sem.available_permits()) as u64;
    ticker.tick(unfinished as usize);
    ticker.finish();
    DriveResult {
        started,
        steady_from,
        stopped,
        unfinished,
        cap_waits: dispatched.cap_waits,
        max_lag: dispatched.max_lag,
        timeline: ticker.timeline,
        interrupted: stop.load(Ordering::Relaxed),
    }
}

/// After Ctrl-C, drain for at most a second.
fn stop_now(stop: &AtomicBool, stopped: Instant) -> bool {
    stop.load(Ordering::Relaxed) && stopped.elapsed() > Duration::from_secs(1)
}

/// Progress line and timeline, once a second.
struct Ticker<'a> {
    rec: &'a Recorder,
    headline: usize,
    started: Instant,
    last: Instant,
    so_far: Vec<OpStats>,
    timeline: Vec<TimelinePoint>,
    bar: Option<ProgressBar>,
    lines: bool,
    schedule: Schedule,
}

impl<'a> Ticker<'a> {
    fn new(rec: &'a Recorder, opts: &DriveOpts, headline: usize, started: Instant) -> Self {
        let tty = std::io::stderr().is_terminal();
        let (bar, lines) = match opts.progress {
            ProgressMode::Off => (false, false),
            ProgressMode::Bar => (true, false),
            ProgressMode::Lines => (false, true),
            ProgressMode::Auto => (tty, !tty),
        };
        let bar = bar.then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(250));
            b
        });
        Self {
            rec,
            headline,
            started,
            last: started,
            so_far: (0..rec.ops().len()).map(|_| OpStats::new()).collect(),
            timeline: Vec::new(),
            bar,
            lines,
            schedule: opts.schedule,
        }
    }

    fn tick(&mut self, in_flight: usize) {
        let now = Instant::now();
        let dt = now.saturating_duration_since(self.last);
        self.last = now;
        let iv = self.rec.take_interval();
        for (acc, s) in self.so_far.iter_mut().zip(&iv) {
            acc.merge(s);
        }
        let t = now.saturating_duration_since(self.started);
        self.timeline
            .push(TimelinePoint::build(t, dt, self.rec.ops(), &iv));
        let h = self.headline;
        let rate = crate::report::stats::rate(iv[h].completed(), dt);
        let errors: u64 = self.so_far.iter().map(OpStats::errors).sum();
        let target = target_rate(&self.schedule, t);
        let msg = format!(
            "{} {:.0}/s (target {:.0})  ok {}  errors {}  p99 {:.2} ms  in flight {}",
            self.rec.ops()[h],
            rate,
            target,
            self.so_far[h].ok,
            errors,
            self.so_far[h].latency_ms(0.99),
            in_flight
        );
        if let Some(b) = &self.bar {
            b.set_message(msg);
        } else if self.lines && self.timeline.len().is_multiple_of(5) {
            eprintln!("[{:>5.1}s] {msg}", t.as_secs_f64());
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}

/// The schedule's rate at `t` (linear ramp, then flat).
pub fn target_rate(s: &Schedule, t: Duration) -> f64 {
    if t >= s.total() {
        0.0
    } else if t < s.ramp_up {
        s.rate * t.as_secs_f64() / s.ramp_up.as_secs_f64()
    } else {
        s.rate
    }
}
