//! Durable order-creation throughput and commit latency of the embedded store, group commit
//! against a plain one-transaction-per-fsync baseline, with 1, 8 and 64 concurrent writers; and,
//! with `--backend redb,model`, the same workload on the FoundationDB-semantics model
//! (`store::model`, in memory, not durable) through the layer FoundationDB runs, reporting its
//! conflicts per commit (the event log must cause none).
//!
//! `cargo run --release -p store --features model --bin storebench [-- --secs 5 --writers 1,8,64
//! --dir PATH --backend redb,model]`
//!
//! Every transaction is the synthetic order creation (`store::synthetic`): a read of the
//! idempotency key, a 2 KB record, three index keys, a history row, the idempotency key and one
//! event. Latency is from the caller's submit to its durable acknowledgement.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redb::{ReadableTable, TableDefinition};
use store::model::{ModelDb, ModelFaults, ModelStore};
use store::{Kv, LogId, RedbOptions, RedbStore, keys, synthetic};

const LOG: LogId = LogId(1);
/// The same table the store uses, for the baseline.
const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

struct Args {
    secs: u64,
    /// Group-commit linger (max, gap) in µs; the store's defaults unless given.
    linger: Option<(u64, u64)>,
    writers: Vec<usize>,
    dir: PathBuf,
    /// "redb" (group commit and its baseline) and/or "model".
    backends: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        secs: 5,
        linger: None,
        writers: vec![1, 8, 64],
        dir: std::env::temp_dir(),
        backends: vec!["redb".into()],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--secs" => a.secs = val()?.parse().map_err(|e| format!("--secs: {e}"))?,
            "--writers" => {
                a.writers = val()?
                    .split(',')
                    .map(|w| w.parse().map_err(|e| format!("--writers: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--dir" => a.dir = val()?.into(),
            "--backend" => {
                a.backends = val()?.split(',').map(str::to_string).collect();
                if let Some(b) = a
                    .backends
                    .iter()
                    .find(|b| !["redb", "model"].contains(&b.as_str()))
                {
                    return Err(format!("--backend: unknown backend {b} (redb, model)"));
                }
            }
            "--linger-us" => {
                let v = val()?;
                let (max, gap) = v.split_once(',').ok_or("--linger-us MAX,GAP")?;
                a.linger = Some((
                    max.parse().map_err(|e| format!("--linger-us: {e}"))?,
                    gap.parse().map_err(|e| format!("--linger-us: {e}"))?,
                ));
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(a)
}

#[derive(Clone, Copy)]
enum Mode {
    Group,
    Baseline,
    /// The model through the FoundationDB layer.
    Model,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Group => "group commit",
            Mode::Baseline => "1 txn/fsync",
            Mode::Model => "model (fdb layer)",
        }
    }
}

struct Outcome {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    txns_per_fsync: f64,
    /// Writer time per batch: running closures + applying, and the durable commit, ms.
    run_ms: f64,
    commit_ms: f64,
    /// The model only: conflicts (`not_committed`) per successful commit.
    conflicts_per_commit: Option<f64>,
}

/// Shared by the workers of one run.
struct Run {
    next_id: AtomicU64,
    done: AtomicU64,
    measuring: AtomicBool,
    stop: AtomicBool,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// One baseline transaction: the same writes, its own redb write transaction, fsync'd.
fn baseline_txn(db: &redb::Database, id: u64) -> Result<(), redb::Error> {
    let w = synthetic::order_writes(id);
    let wtx = db.begin_write()?;
    {
        let mut t = wtx.open_table(DATA)?;
        if t.get(w.idempotency_key.as_slice())?.is_some() {
            return Ok(());
        }
        for (k, v) in &w.pairs {
            t.insert(k.as_slice(), v.as_slice())?;
        }
        let head_key = keys::event_head_key(LOG.0);
        let head = match t.get(head_key.as_slice())? {
            Some(v) => keys::decode_head(v.value()).expect("head"),
            None => 0,
        } + 1;
        let stamp = keys::Versionstamp::complete([0; 10], 0);
        let value = keys::event_value(&stamp, &w.event);
        t.insert(keys::event_key(LOG.0, head).as_slice(), value.as_slice())?;
        t.insert(head_key.as_slice(), keys::encode_head(head).as_slice())?;
    }
    wtx.commit()?; // Durability::Immediate is redb's default: one fsync per transaction.
    Ok(())
}

/// `writers` tasks creating orders through `kv` until the run stops; each returns the
/// latencies (µs) of the commits made while measuring.
fn spawn_writers(
    rt: &tokio::runtime::Runtime,
    kv: Arc<dyn Kv>,
    run: &Arc<Run>,
    writers: usize,
) -> Vec<tokio::task::JoinHandle<Vec<u32>>> {
    (0..writers)
        .map(|_| {
            let (kv, run) = (kv.clone(), run.clone());
            rt.spawn(async move {
                let mut lat = Vec::new();
                while !run.stop.load(Ordering::Relaxed) {
                    let id = run.next_id.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    synthetic::create_order(&*kv, id, LOG)
                        .await
                        .expect("commit");
                    if run.measuring.load(Ordering::Relaxed) {
                        lat.push(t.elapsed().as_micros() as u32);
                        run.done.fetch_add(1, Ordering::Relaxed);
                    }
                }
                lat
            })
        })
        .collect()
}

fn run_one(
    rt: &tokio::runtime::Runtime,
    mode: Mode,
    writers: usize,
    secs: u64,
    root: &std::path::Path,
    opts: &RedbOptions,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let dir = root.join(format!(
        "storebench-{}-{}-{writers}",
        std::process::id(),
        mode.name().replace([' ', '/'], "_")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let run = Arc::new(Run {
        next_id: AtomicU64::new(1),
        done: AtomicU64::new(0),
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
    });
    let mut store = None;
    let mut model: Option<(Arc<ModelStore>, ModelDb)> = None;
    let mut handles: Vec<std::thread::JoinHandle<Vec<u32>>> = Vec::new();
    let mut tasks = Vec::new();
    match mode {
        Mode::Group => {
            let kv = Arc::new(RedbStore::open(dir.as_path(), opts.clone())?);
            store = Some(kv.clone());
            tasks = spawn_writers(rt, kv.clone(), &run, writers);
        }
        Mode::Model => {
            let db = ModelDb::new(ModelFaults::none());
            let kv = Arc::new(db.store());
            model = Some((kv.clone(), db));
            tasks = spawn_writers(rt, kv.clone(), &run, writers);
        }
        Mode::Baseline => {
            let db = Arc::new(redb::Database::create(dir.as_path().join("store.redb"))?);
            let w = db.begin_write()?;
            w.open_table(DATA)?;
            w.commit()?;
            for _ in 0..writers {
                let (db, run) = (db.clone(), run.clone());
                handles.push(std::thread::spawn(move || {
                    let mut lat = Vec::new();
                    while !run.stop.load(Ordering::Relaxed) {
                        let id = run.next_id.fetch_add(1, Ordering::Relaxed);
                        let t = Instant::now();
                        baseline_txn(&db, id).expect("commit");
                        if run.measuring.load(Ordering::Relaxed) {
                            lat.push(t.elapsed().as_micros() as u32);
                            run.done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    lat
                }));
            }
        }
    }
    // Warm up, then measure, printing progress each second.
    std::thread::sleep(Duration::from_secs(1));
    let stats0 = store.as_ref().map(|s| s.commit_stats());
    let sem0 = model.as_ref().map(|(s, _)| s.stats());
    run.measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let mut last = 0;
    for s in 1..=secs {
        std::thread::sleep(Duration::from_secs(1));
        let done = run.done.load(Ordering::Relaxed);
        eprintln!(
            "    {:>12} {writers:>2} writers  {s}/{secs} s  {:>8} commits/s",
            mode.name(),
            done - last
        );
        last = done;
    }
    run.measuring.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let stats1 = store.as_ref().map(|s| s.commit_stats());
    let sem1 = model.as_ref().map(|(s, _)| s.stats());
    run.stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<u32> = Vec::new();
    for h in handles {
        lat.extend(h.join().map_err(|_| "writer thread panicked")?);
    }
    for t in tasks {
        lat.extend(rt.block_on(t)?);
    }
    drop(store);
    if let Some((_, db)) = &model {
        let s = db.stats();
        eprintln!(
            "    model: {} commits, {} real conflicts, {} injected faults",
            s.commits,
            s.conflicts,
            s.injected_conflicts + s.injected_unknown_results + s.injected_too_old
        );
    }
    let conflicts_per_commit = match (sem0, sem1) {
        (Some(a), Some(b)) if b.commits > a.commits => {
            Some((b.conflicts - a.conflicts) as f64 / (b.commits - a.commits) as f64)
        }
        _ => None,
    };
    std::fs::remove_dir_all(&dir)?;
    lat.sort_unstable();
    let (txns_per_fsync, run_ms, commit_ms) = match (stats0, stats1) {
        (Some(a), Some(b)) if b.batches > a.batches => {
            let batches = (b.batches - a.batches) as f64;
            (
                (b.transactions - a.transactions) as f64 / batches,
                (b.run_micros - a.run_micros) as f64 / batches / 1000.0,
                (b.commit_micros - a.commit_micros) as f64 / batches / 1000.0,
            )
        }
        _ => (1.0, f64::NAN, f64::NAN),
    };
    Ok(Outcome {
        per_sec: lat.len() as f64 / elapsed,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
        txns_per_fsync,
        run_ms,
        commit_ms,
        conflicts_per_commit,
    })
}

fn command_output(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let cpu = command_output("lscpu", &[])
        .lines()
        .find(|l| l.starts_with("Model name:"))
        .map(|l| l["Model name:".len()..].trim().to_string())
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    println!("storebench: durable synthetic order creations (2 KB record, 3 index keys, history,");
    println!(
        "idempotency key, 1 event), {} s per run after 1 s warm-up",
        args.secs
    );
    println!(
        "machine: {cpu}, {cores} cores; data dir {}; {date}",
        args.dir.display()
    );
    let mut opts = RedbOptions::default();
    if let Some((max, gap)) = args.linger {
        opts.linger_max = Duration::from_micros(max);
        opts.linger_gap = Duration::from_micros(gap);
    }
    println!(
        "group commit linger: up to {:?} while transactions arrive within {:?}",
        opts.linger_max, opts.linger_gap
    );
    let rt = tokio::runtime::Runtime::new()?;
    let mut rows = Vec::new();
    let mut modes = Vec::new();
    if args.backends.iter().any(|b| b == "redb") {
        modes.extend([Mode::Baseline, Mode::Group]);
    }
    if args.backends.iter().any(|b| b == "model") {
        modes.push(Mode::Model);
    }
    for &w in &args.writers {
        for &mode in &modes {
            eprintln!("  running {} with {w} writers", mode.name());
            rows.push((w, mode, run_one(&rt, mode, w, args.secs, &args.dir, &opts)?));
        }
    }
    println!();
    println!(
        "| writers | mode | commits/s | p50 ms | p99 ms | txns/fsync | run ms/batch | fsync ms/batch | conflicts/commit |"
    );
    println!(
        "|--------:|------|----------:|-------:|-------:|-----------:|-------------:|---------------:|-----------------:|"
    );
    let ms = |v: f64| {
        if v.is_nan() {
            "-".to_string()
        } else {
            format!("{v:.2}")
        }
    };
    for (w, mode, o) in &rows {
        let (per_fsync, conflicts) = match o.conflicts_per_commit {
            // The model has no fsync; redb's serial writer has no conflicts.
            Some(c) => ("-".to_string(), format!("{c:.3}")),
            None => (format!("{:.1}", o.txns_per_fsync), "-".to_string()),
        };
        println!(
            "| {w} | {} | {:.0} | {:.2} | {:.2} | {per_fsync} | {} | {} | {conflicts} |",
            mode.name(),
            o.per_sec,
            o.p50_ms,
            o.p99_ms,
            ms(o.run_ms),
            ms(o.commit_ms)
        );
    }
    println!();
    let group = rows.iter().filter(|(_, m, _)| matches!(m, Mode::Group));
    let base = rows.iter().filter(|(_, m, _)| matches!(m, Mode::Baseline));
    for ((w, _, group), (_, _, base)) in group.zip(base) {
        println!(
            "group-commit gain with {w} writers: {:.2}x ({:.0} vs {:.0} commits/s)",
            group.per_sec / base.per_sec,
            group.per_sec,
            base.per_sec
        );
    }
    if let Some((_, _, o)) = rows
        .iter()
        .find(|(w, m, _)| *w == 64 && matches!(m, Mode::Model))
    {
        println!(
            "model at 64 writers: {:.0} commits/s, {:.3} conflicts per commit (the event log adds no read of a shared key, so it causes none)",
            o.per_sec,
            o.conflicts_per_commit.unwrap_or(f64::NAN)
        );
    }
    if let Some((_, _, o)) = rows
        .iter()
        .find(|(w, m, _)| *w == 64 && matches!(m, Mode::Group))
    {
        let ok = o.per_sec >= 5000.0 && o.p99_ms <= 10.0;
        println!(
            "target (64 writers: >= 5,000 commits/s, p99 <= 10 ms): {}",
            if ok { "met" } else { "NOT met" }
        );
    }
    Ok(())
}
