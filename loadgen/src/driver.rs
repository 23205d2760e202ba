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

#[derive(Clone)]
pub struct DriveOpts {
    pub schedule: Schedule,
    pub max_in_flight: usize,
    /// How long to wait for answers after the last request was sent.
    pub drain: Duration,
    pub progress: ProgressMode,
    /// More to show on the progress line (the city's pings and trackers).
    pub extra_status: Option<StatusFn>,
}

/// Text appended to the progress line, asked for once a second.
pub type StatusFn = Arc<dyn Fn() -> String + Send + Sync>;

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

/// The live progress display: an indicatif spinner line on a terminal (or with `bar`),
/// otherwise a plain line every 5 updates; one update a second.
pub struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    updates: usize,
}

impl Progress {
    pub fn new(mode: ProgressMode) -> Self {
        let tty = std::io::stderr().is_terminal();
        let (bar, lines) = match mode {
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
            bar,
            lines,
            updates: 0,
        }
    }

    /// Shows `msg` at `t` into the run.
    pub fn update(&mut self, t: Duration, msg: &str) {
        self.updates += 1;
        if let Some(b) = &self.bar {
            b.set_message(msg.to_string());
        } else if self.lines && self.updates.is_multiple_of(5) {
            eprintln!("[{:>5.1}s] {msg}", t.as_secs_f64());
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}

/// Progress line and timeline, once a second.
struct Ticker<'a> {
    rec: &'a Recorder,
    headline: usize,
    started: Instant,
    last: Instant,
    so_far: Vec<OpStats>,
    timeline: Vec<TimelinePoint>,
    progress: Progress,
    schedule: Schedule,
    extra: Option<StatusFn>,
}

impl<'a> Ticker<'a> {
    fn new(rec: &'a Recorder, opts: &DriveOpts, headline: usize, started: Instant) -> Self {
        Self {
            rec,
            headline,
            started,
            last: started,
            so_far: (0..rec.ops().len()).map(|_| OpStats::new()).collect(),
            timeline: Vec::new(),
            progress: Progress::new(opts.progress),
            schedule: opts.schedule,
            extra: opts.extra_status.clone(),
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
        let target = self.schedule.rate_at(t);
        let mut msg = format!(
            "{} {:.0}/s (schedule {:.0}/s)  ok {}  errors {}  p99 {:.2} ms  in flight {}",
            self.rec.ops()[h],
            rate,
            target,
            self.so_far[h].ok,
            errors,
            self.so_far[h].latency_ms(0.99),
            in_flight
        );
        if let Some(f) = &self.extra {
            msg += "  ";
            msg += &f();
        }
        self.progress.update(t, &msg);
    }

    fn finish(&self) {
        self.progress.finish();
    }
}
