//! The world: virtual clock, one seeded random stream per concern, the event queue, the cell
//! ([`Node`], or none while crashed), the simulated providers and network, the actors, and
//! the checkers. [`World::run`] takes one event at a time, in (time, sequence) order, on one
//! thread; async cell calls are driven to completion with a current-thread runtime's
//! `block_on`, and every future they await is ready at once.

use crate::actors::{Customers, Drivers, Restaurants};
use crate::apps::Requests;
use crate::check::{Checker, Violation};
use crate::clock::{Queue, VirtualClock, store_clock};
use crate::config::{MINUTE_MS, SimConfig};
use crate::faults::{FaultCounters, FaultKind};
use crate::net::Net;
use crate::node::{CELL, Node};
use crate::providers::{SimPayments, SimPush};
use crate::trace::Trace;
use domain::{DriverId, OrderId, UnixMs};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::future::Future;
use std::sync::Arc;
use store::model::{ModelDb, ModelFaults};

/// Everything that happens, at a virtual time.
#[derive(Debug, Clone)]
pub enum Ev {
    /// The next customer opens the app.
    Arrival,
    /// A copy of request `req` reaches the cell.
    ToCell(u64),
    /// An app stops waiting for the answer to `req`.
    Timeout(u64),
    /// A driver's GPS fix reaches the cell.
    PingIn(usize, cell::dispatch::GpsFix),
    /// A driver moves and sends a fix (every 5 s on shift).
    Move(usize),
    ShiftStart(usize),
    /// A driver answers an offer after thinking.
    Answer(usize, u64, bool),
    Reconnect(usize),
    /// A restaurant's next kitchen step for an order.
    Kitchen(OrderId),
    /// A customer decides whether to cancel.
    MaybeCancel(OrderId),
    // The cell's own schedule.
    Tick,
    Consumers,
    Worker,
    PayQueue,
    Renew,
    /// Location history: seal and write the buffered paths (every segment interval).
    HistoryFlush,
    // Faults.
    Crash,
    Restart,
    Outage(bool),
    CutOne,
    CutAll,
    Heal(Option<usize>),
    FaultsOff,
    /// Looks for the end once faults are off.
    Settle,
}

/// Periodic work that only has something to do after a commit (or after it failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Wake {
    Consumers,
    Worker,
    Queue,
    Checker,
}

/// The store's commit count each periodic pass last saw, and which must look again anyway.
#[derive(Debug, Default)]
pub struct Wakes {
    seen: std::collections::BTreeMap<Wake, u64>,
    again: std::collections::BTreeSet<Wake>,
}

impl Wakes {
    /// Whether `w` has work: commits since it last looked, or a retry asked for. Marks it seen.
    pub fn fresh(&mut self, w: Wake, commits: u64) -> bool {
        let again = self.again.remove(&w);
        let before = self.seen.insert(w, commits);
        again || before != Some(commits)
    }

    pub fn retry(&mut self, w: Wake) {
        self.again.insert(w);
    }

    /// After a restart every pass looks once.
    pub fn all(&mut self) {
        self.seen.clear();
    }
}

/// Why a run stopped early.
#[derive(Debug, Clone)]
pub struct Failure {
    pub seed: u64,
    pub step: u64,
    pub violation: Violation,
    pub last: Vec<String>,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Summary {
    pub seed: u64,
    pub steps: u64,
    pub hash: u64,
    pub end_ms: i64,
    pub placed: u64,
    pub acknowledged: u64,
    pub delivered: u64,
    pub cancelled: u64,
    pub fired: FaultCounters,
    pub faults: String,
}

pub struct World {
    pub cfg: SimConfig,
    pub clock: Arc<VirtualClock>,
    pub now: i64,
    pub step: u64,
    pub queue: Queue<Ev>,
    pub trace: Trace,
    pub rng: ChaCha8Rng,
    rt: tokio::runtime::Runtime,
    pub db: ModelDb,
    pub kv: Arc<dyn store::Kv>,
    /// Customers' data keys: apart from the store, surviving the node's crashes as the key
    /// store file survives a cell's.
    pub vault: Arc<cell::personal::Vault>,
    /// Delivery paths, when `cfg.history` (kept across node restarts like the key store).
    pub history: Option<Arc<cell::history::History>>,
    /// Ciphertext bytes the history flushes handed to the store (compactions included).
    pub history_handed: u64,
    _keys: tempfile::TempDir,
    pub node: Option<Node>,
    pub pay: Arc<SimPayments>,
    pub push: Arc<SimPush>,
    pub net: Net,
    pub faults_on: bool,
    pub fired: FaultCounters,
    pub req: Requests,
    pub customers: Customers,
    pub restaurants: Restaurants,
    pub drivers: Drivers,
    pub checker: Checker,
    /// Set by a handler: the cell may have written, so the checkers look at the log.
    pub wrote: bool,
    /// Which periodic passes have new commits to look at.
    pub wake: Wakes,
    done: bool,
}

fn stream(seed: u64, n: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(n);
    r
}

impl World {
    /// Builds the city: store (with the catalog), providers, restaurants, drivers' shifts.
    pub fn new(cfg: SimConfig) -> Result<World, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| e.to_string())?;
        // The store's transaction ids come from the seed too, so two runs write the same bytes.
        cell::orders::once::seed_ids_on_this_thread(cfg.seed);
        let start = UnixMs(cfg.start_ms());
        let clock = Arc::new(VirtualClock::new(start));
        let db = ModelDb::with_clock(ModelFaults::none(), store_clock(clock.clone(), start));
        let kv = store::SubspaceKv::scoped(db.kv(), store::keys::Subspace::cell(CELL));
        let mut rng = stream(cfg.seed, 0);
        let restaurants = rt.block_on(Restaurants::seed(&kv, &cfg, &mut rng))?;
        let drivers = Drivers::new(&cfg, &mut stream(cfg.seed, 5));
        let keys = tempfile::tempdir().map_err(|e| format!("key store dir: {e}"))?;
        let key_store = cell::envelope::RedbKeyStore::open(&keys.path().join("keys.redb"))
            .map_err(|e| format!("key store: {e}"))?;
        let kek = cell::envelope::Kek::from_bytes(&[7; cell::envelope::KEY_LEN]);
        let ring = Arc::new(cell::envelope::KeyRing::new(CELL, kek, Arc::new(key_store)));
        let vault = Arc::new(cell::personal::Vault::new(ring.clone()));
        let history = cfg.history.then(|| {
            Arc::new(cell::history::History::new(
                cell::history::HistoryConfig::default(),
                CELL,
                kv.clone(),
                ring,
            ))
        });
        let mut w = World {
            clock,
            now: start.0,
            step: 0,
            queue: Queue::default(),
            trace: Trace::default(),
            rng,
            rt,
            db,
            kv,
            vault,
            history,
            history_handed: 0,
            _keys: keys,
            node: None,
            pay: Arc::new(SimPayments::new(stream(cfg.seed, 1))),
            push: Arc::new(SimPush::new(stream(cfg.seed, 2))),
            net: Net::new(stream(cfg.seed, 3)),
            faults_on: false,
            fired: FaultCounters::default(),
            req: Requests::default(),
            customers: Customers::new(&cfg),
            restaurants,
            drivers,
            checker: Checker::new(),
            wrote: false,
            wake: Wakes::default(),
            done: false,
            cfg,
        };
        w.trace.echo = w.cfg.verbose;
        w.start_node()?;
        w.schedule_start();
        Ok(w)
    }

    /// Drives `f` to completion on this thread (every simulated future is ready at once).
    pub fn block<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub fn at(&mut self, delay_ms: i64, e: Ev) {
        self.queue.push(self.now + delay_ms.max(0), e);
    }

    pub fn log(&mut self, line: impl FnOnce() -> String) {
        let l = format!(
            "{} {} {}",
            self.step,
            self.now - self.cfg.start_ms(),
            line()
        );
        self.trace.line(l);
    }

    pub(crate) fn start_node(&mut self) -> Result<(), String> {
        let n = self.block(Node::build(
            self.kv.clone(),
            self.pay.clone(),
            self.push.clone(),
            self.clock.clone(),
            self.cfg.matching.clone(),
            self.vault.clone(),
        ))?;
        if let Some(h) = &self.history {
            n.dispatch.set_history(h.clone());
        }
        self.node = Some(n);
        Ok(())
    }

    fn schedule_start(&mut self) {
        self.at(0, Ev::Arrival);
        if let Some(h) = &self.history {
            let every = h.config().segment_ms as i64;
            self.at(every, Ev::HistoryFlush);
        }
        for (e, d) in [
            (Ev::Tick, 1_000),
            (Ev::Consumers, 500),
            (Ev::Worker, 2_000),
            (Ev::PayQueue, 1_000),
            (Ev::Renew, 5_000),
        ] {
            self.at(d, e);
        }
        for i in 0..self.drivers.len() {
            let start = self.drivers.shift_start(i).max(self.now);
            if start < self.cfg.active_end_ms() {
                self.queue.push(start, Ev::ShiftStart(i));
            }
        }
        self.configure_faults(true);
        let plan = self.cfg.faults.clone();
        let first = |w: &mut World| w.rng.random_range(2 * MINUTE_MS..8 * MINUTE_MS);
        for (k, e) in [
            (FaultKind::PaymentOutage, Ev::Outage(true)),
            (FaultKind::DriverPartition, Ev::CutOne),
            (FaultKind::AllPartition, Ev::CutAll),
            (FaultKind::CellCrash, Ev::Crash),
        ] {
            if plan.has(k) {
                let d = first(self);
                self.at(d, e);
            }
        }
        let end = self.cfg.active_end_ms();
        self.queue.push(end, Ev::FaultsOff);
    }

    /// Runs to the end, or to the first violated invariant.
    pub fn run(&mut self) -> Result<Summary, Box<Failure>> {
        while !self.done {
            let Some((t, ev)) = self.queue.pop() else {
                break;
            };
            self.now = t;
            self.clock.set(t);
            self.step += 1;
            self.wrote = false;
            // The event's canonical line: what happened when, before its effects' lines.
            if !matches!(ev, Ev::Move(_) | Ev::PingIn(..)) || self.trace.echo {
                let line = format!("{ev:?}");
                self.log(|| line);
            } else {
                self.trace.fold(self.step, t, &ev);
            }
            let writes = self.handle(ev);
            if writes {
                self.after_cell_step();
            }
            if let Err(v) = self.check_step() {
                return Err(self.failure(v));
            }
            if self.cfg.until_step.is_some_and(|s| self.step >= s) {
                break;
            }
        }
        if self.done
            && let Err(v) = self.final_check()
        {
            return Err(self.failure(v));
        }
        Ok(self.summary())
    }

    fn failure(&self, violation: Violation) -> Box<Failure> {
        Box::new(Failure {
            seed: self.cfg.seed,
            step: self.step,
            violation,
            last: self.trace.last().cloned().collect(),
        })
    }

    pub fn summary(&self) -> Summary {
        let mut fired = self.fired.clone();
        let s = self.db.stats();
        fired.add(FaultKind::StoreConflict, s.injected_conflicts);
        fired.add(FaultKind::UnknownResult, s.injected_unknown_results);
        fired.add(FaultKind::TooOld, s.injected_too_old);
        for (k, n) in self.pay.fired().0.iter().chain(self.net.fired.0.iter()) {
            fired.add(*k, *n);
        }
        fired.add(FaultKind::PushFailure, self.push.fired());
        let (delivered, cancelled) = self.checker.outcomes();
        Summary {
            seed: self.cfg.seed,
            steps: self.step,
            hash: self.trace.hash(),
            end_ms: self.now,
            placed: self.customers.placed(),
            acknowledged: self.customers.acked.len() as u64,
            delivered,
            cancelled,
            fired,
            faults: self.cfg.faults.names(),
        }
    }

    /// One event. Returns whether the cell may have written or sent (then the drivers'
    /// outboxes, the trackers and the push inbox are read, and the checkers look).
    fn handle(&mut self, ev: Ev) -> bool {
        match ev {
            Ev::Arrival => self.arrival(),
            Ev::ToCell(r) => return self.arrive(r),
            Ev::Timeout(r) => self.timeout(r),
            Ev::PingIn(d, fix) => self.ping_in(d, fix),
            Ev::Move(d) => self.move_driver(d),
            Ev::ShiftStart(d) => self.shift_start(d),
            Ev::Answer(d, delivery, accept) => self.answer(d, delivery, accept),
            Ev::Reconnect(d) => self.reconnect(d),
            Ev::Kitchen(o) => self.kitchen(o),
            Ev::MaybeCancel(o) => self.maybe_cancel(o),
            Ev::Tick => {
                self.at(1_000, Ev::Tick);
                if let Some(n) = &self.node {
                    self.block(n.tick(UnixMs(self.now)));
                    return true;
                }
            }
            Ev::Consumers => {
                self.at(500, Ev::Consumers);
                return self.consumers();
            }
            Ev::Worker => {
                self.at(2_000, Ev::Worker);
                if let Some(mut n) = self.node.take() {
                    // The consumer wakes on commits (as `wait_for_events` makes it); the retry
                    // scan runs on its timer.
                    let fresh = self.wake.fresh(Wake::Worker, self.db.stats().commits);
                    let r = self.block(async {
                        if fresh {
                            n.worker_consume().await?;
                        }
                        n.worker_scan().await
                    });
                    self.node = Some(n);
                    if let Err(e) = r {
                        self.wake.retry(Wake::Worker);
                        self.log(|| format!("worker error {e}"));
                    }
                    return true;
                }
            }
            Ev::PayQueue => {
                self.at(1_000, Ev::PayQueue);
                let fresh = self.wake.fresh(Wake::Queue, self.db.stats().commits);
                if let Some(n) = self.node.as_ref().filter(|_| fresh) {
                    match self.block(n.queue_pass(UnixMs(self.now))) {
                        Ok((settled, waiting)) => {
                            if waiting > 0 {
                                self.wake.retry(Wake::Queue);
                            }
                            if settled > 0 {
                                self.log(|| format!("payqueue settled {settled}"));
                            }
                        }
                        Err(e) => {
                            self.wake.retry(Wake::Queue);
                            self.log(|| format!("payqueue error {e}"));
                        }
                    }
                    return true;
                }
            }
            Ev::HistoryFlush => self.flush_history(),
            Ev::Renew => {
                self.at(5_000, Ev::Renew);
                if let Some(n) = &self.node {
                    let now = UnixMs(self.now);
                    let r = self.block(n.orders.renew_ids(now));
                    if let Err(e) = r {
                        self.log(|| format!("renew error {e}"));
                    }
                }
            }
            Ev::Crash => self.crash(),
            Ev::Restart => return self.restart(),
            Ev::Outage(on) => self.outage(on),
            Ev::CutOne => self.cut_one(),
            Ev::CutAll => self.cut_all(),
            Ev::Heal(d) => self.heal(d),
            Ev::FaultsOff => {
                self.log(|| "faults off".into());
                self.configure_faults(false);
                self.at(30_000, Ev::Settle);
            }
            Ev::Settle => self.settle(),
        }
        false
    }

    /// Runs the event-log consumers once each.
    fn consumers(&mut self) -> bool {
        if !self.wake.fresh(Wake::Consumers, self.db.stats().commits) {
            return false;
        }
        let Some(mut n) = self.node.take() else {
            return false;
        };
        let now = UnixMs(self.now);
        let (m, t, p) = self.block(async {
            (
                n.matching_pass(now).await,
                n.tracking_pass().await,
                n.notify_pass().await,
            )
        });
        self.node = Some(n);
        let busy =
            |r: &Result<crate::node::Passes, String>| r.as_ref().map_or(true, |p| p.events > 0);
        let failed =
            |r: &Result<crate::node::Passes, String>| r.as_ref().map_or(true, |p| p.failed);
        if busy(&m) || busy(&t) || busy(&p) || failed(&p) {
            // More may be waiting (a full batch, a failed send): look again next time.
            self.wake.retry(Wake::Consumers);
            let f = |r: Result<crate::node::Passes, String>| match r {
                Ok(p) => format!("{}{}", p.events, if p.failed { "!" } else { "" }),
                Err(e) => format!("err({e})"),
            };
            let line = format!(
                "consumers matching={} tracking={} notify={}",
                f(m),
                f(t),
                f(p)
            );
            self.log(|| line);
            return true;
        }
        false
    }

    /// After a step the cell took part in: driver messages, trackers, notifications.
    fn after_cell_step(&mut self) {
        self.drain_outboxes();
        self.drain_trackers();
        for shown in self.push.take_inbox() {
            self.on_notification(shown);
        }
        self.wrote = true;
    }

    fn check_step(&mut self) -> Result<(), Violation> {
        if !self.wrote || !self.wake.fresh(Wake::Checker, self.db.stats().commits) {
            return Ok(());
        }
        let kv = self.kv.clone();
        let pay = self.pay.clone();
        let mut checker = std::mem::take(&mut self.checker);
        let r = self.block(checker.step(&*kv, &pay));
        self.checker = checker;
        r
    }

    /// Once faults are off: ends the run when every order has ended and settled, or fails
    /// it when the bound has passed.
    fn settle(&mut self) {
        let kv = self.kv.clone();
        let pending = self.checker.pay_pending().clone();
        let quiet = self.block(crate::check::quiescent(&*kv, &pending));
        let trackers_open = self.customers.open_trackers();
        let bound = self.cfg.active_end_ms() + self.cfg.drain_ms;
        match quiet {
            Ok(true) if trackers_open == 0 => {
                self.log(|| "settled".into());
                self.done = true;
            }
            _ if self.now >= bound => {
                self.log(|| "bound reached".into());
                self.done = true;
            }
            _ => self.at(30_000, Ev::Settle),
        }
    }

    fn final_check(&mut self) -> Result<(), Violation> {
        let kv = self.kv.clone();
        let pay = self.pay.clone();
        let shown = self.push.shown();
        let acked: Vec<OrderId> = self.customers.acked.keys().copied().collect();
        let hub_open: Vec<OrderId> = match &self.node {
            Some(n) => self
                .customers
                .acked
                .keys()
                .copied()
                .filter(|o| {
                    n.tracker
                        .hub
                        .has_subscribers(cell::tracking::hub::Topic::Order(*o))
                })
                .collect(),
            None => Vec::new(),
        };
        let mut checker = std::mem::take(&mut self.checker);
        let r = self.block(checker.finish(&*kv, &pay, &shown, &acked, &hub_open));
        self.checker = checker;
        r
    }

    pub fn driver_id(&self, d: usize) -> DriverId {
        self.drivers.id(d)
    }
}
