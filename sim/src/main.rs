//! `sim`: runs the deterministic city simulator.
//!
//! - `sim run --seed S [--until-step N] [--fault KIND]... [--swarm]`: one seed; prints the
//!   summary and the trace hash, or `SIM_SEED=… SIM_STEP=…`, the broken invariant and the
//!   last events (exit 1).
//! - `sim seeds --count N [--from S] [--swarm]`: many seeds, a progress line, a summary.
//! - `sim day --seed S --matching CONFIG.toml --json OUT`: a what-if day's record as JSON.
//! - `sim whatif --day S --a A.toml --b B.toml [--out DIR]`: the same day under two matching
//!   configurations, side by side (a table, and an HTML report with plots over the day).

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use rand::SeedableRng;
use sim::day::{CitySize, run_day};
use sim::{Failure, FaultKind, FaultPlan, SimConfig, Summary};
use std::time::Instant;

#[derive(Parser)]
#[command(name = "sim", about = "Deterministic city simulator")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct City {
    #[arg(long, default_value_t = 2_000)]
    orders_per_day: u32,
    #[arg(long, default_value_t = 60)]
    drivers: u32,
    #[arg(long, default_value_t = 60)]
    restaurants: usize,
    /// Hours customers order for (faults stop then; orders must end within the drain bound).
    #[arg(long, default_value_t = 0.5)]
    hours: f64,
    /// Local hour of day to start at.
    #[arg(long, default_value_t = 11.75)]
    start_hour: f64,
    /// Force a fault kind on (repeatable).
    #[arg(long = "fault")]
    faults: Vec<FaultKind>,
    /// Draw the fault mix from the seed.
    #[arg(long)]
    swarm: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs one seed.
    Run {
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        until_step: Option<u64>,
        /// Print every trace line.
        #[arg(long)]
        verbose: bool,
        #[command(flatten)]
        city: City,
    },
    /// Runs many seeds; stops at the first failure.
    Seeds {
        #[arg(long)]
        count: u64,
        #[arg(long, default_value_t = 1)]
        from: u64,
        #[command(flatten)]
        city: City,
    },
    /// Runs a what-if day and writes its record as JSON.
    Day {
        #[arg(long)]
        seed: u64,
        /// A TOML file with `[dispatch.matching]`-style keys (missing keys: defaults).
        #[arg(long)]
        matching: Option<std::path::PathBuf>,
        #[arg(long)]
        json: std::path::PathBuf,
        #[arg(long, default_value_t = 5_000)]
        orders_per_day: u32,
        #[arg(long, default_value_t = 300)]
        drivers: u32,
        #[arg(long, default_value_t = 24.0)]
        hours: f64,
    },
    /// A day with location history on: stored bytes per ping and the store's write volume.
    History {
        #[arg(long)]
        seed: u64,
        #[arg(long, default_value_t = 5_000)]
        orders_per_day: u32,
        #[arg(long, default_value_t = 300)]
        drivers: u32,
        #[arg(long, default_value_t = 24.0)]
        hours: f64,
        /// Also write the figures as JSON here.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// The same day under two matching configurations, compared.
    Whatif {
        /// The day's seed.
        #[arg(long)]
        day: u64,
        /// Configuration A (TOML, `[dispatch.matching]` keys at the top level).
        #[arg(long)]
        a: std::path::PathBuf,
        /// Configuration B.
        #[arg(long)]
        b: std::path::PathBuf,
        /// Where the report, both days' JSON and the Markdown table go.
        #[arg(long, default_value = "target/whatif")]
        out: std::path::PathBuf,
        #[arg(long, default_value_t = 5_000)]
        orders_per_day: u32,
        #[arg(long, default_value_t = 300)]
        drivers: u32,
        #[arg(long, default_value_t = 24.0)]
        hours: f64,
    },
}

/// A matching configuration from a TOML file (missing keys: the defaults).
fn matching(
    path: &std::path::Path,
) -> anyhow::Result<cell::dispatch::matching::machine::MatchConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn config(seed: u64, city: &City) -> SimConfig {
    let faults = if city.swarm {
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(99);
        let mut p = FaultPlan::swarm(&mut r);
        p.kinds.extend(city.faults.iter().copied());
        p
    } else {
        FaultPlan::of(city.faults.iter().copied())
    };
    SimConfig {
        orders_per_day: city.orders_per_day,
        drivers: city.drivers,
        restaurants: city.restaurants,
        hours: city.hours,
        start_hour: city.start_hour,
        faults,
        ..SimConfig::small(seed)
    }
}

fn print_summary(s: &Summary) {
    println!(
        "seed {} ok: {} steps, {} placed, {} acknowledged, {} delivered, {} cancelled, faults [{}] fired [{}]",
        s.seed, s.steps, s.placed, s.acknowledged, s.delivered, s.cancelled, s.faults, s.fired
    );
    println!("trace hash {:016x}", s.hash);
}

fn print_failure(f: &Failure, city: &City) {
    eprintln!("SIM_SEED={} SIM_STEP={}", f.seed, f.step);
    eprintln!("invariant broken: {}", f.violation);
    eprintln!("last events:");
    for l in &f.last {
        eprintln!("  {l}");
    }
    let mut flags = String::new();
    for k in &city.faults {
        flags.push_str(&format!(" --fault {k}"));
    }
    if city.swarm {
        flags.push_str(" --swarm");
    }
    eprintln!(
        "reproduce: ./dev sim run --seed {} --until-step {}{flags}",
        f.seed, f.step
    );
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Run {
            seed,
            until_step,
            verbose,
            city,
        } => {
            let mut cfg = config(seed, &city);
            cfg.until_step = until_step;
            cfg.verbose = verbose;
            let started = Instant::now();
            match sim::run(cfg) {
                Ok(s) => {
                    print_summary(&s);
                    eprintln!("wall {:.2} s", started.elapsed().as_secs_f64());
                }
                Err(f) => {
                    print_failure(&f, &city);
                    std::process::exit(1);
                }
            }
        }
        Cmd::Seeds { count, from, city } => {
            let started = Instant::now();
            let mut steps = 0;
            for seed in from..from + count {
                match sim::run(config(seed, &city)) {
                    Ok(s) => {
                        steps += s.steps;
                        eprint!(
                            "\r{}/{count} seeds ok ({:.1} s)",
                            seed - from + 1,
                            started.elapsed().as_secs_f64()
                        );
                    }
                    Err(f) => {
                        eprintln!();
                        println!("FAILED after {} seeds", seed - from + 1);
                        print_failure(&f, &city);
                        std::process::exit(1);
                    }
                }
            }
            eprintln!();
            println!(
                "{count} seeds ok (from {from}), {steps} steps, {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Cmd::Day {
            seed,
            matching,
            json,
            orders_per_day,
            drivers,
            hours,
        } => {
            let cfg = match matching {
                Some(p) => self::matching(&p)?,
                None => Default::default(),
            };
            let size = CitySize {
                orders_per_day,
                drivers,
                hours,
                ..CitySize::default()
            };
            let started = Instant::now();
            let rec = run_day(seed, cfg, size).map_err(anyhow::Error::msg)?;
            std::fs::write(&json, serde_json::to_vec_pretty(&rec)?)?;
            eprintln!(
                "day of seed {seed}: {} orders, {} drivers, {:.1} s wall; wrote {}",
                rec.orders.len(),
                rec.drivers.len(),
                started.elapsed().as_secs_f64(),
                json.display()
            );
        }
        Cmd::History {
            seed,
            orders_per_day,
            drivers,
            hours,
            json,
        } => {
            let size = CitySize {
                orders_per_day,
                drivers,
                hours,
                ..CitySize::default()
            };
            let started = Instant::now();
            let f = sim::history::run(seed, size, 0.0).map_err(anyhow::Error::msg)?;
            if let Some(p) = json {
                std::fs::write(&p, serde_json::to_vec_pretty(&f)?)?;
            }
            println!(
                "history, day of seed {seed}: {} finished deliveries, {} pings recorded\n  \
                 stored per ping (median over deliveries): {:.2} B all-in, {:.2} B for time, \
                 lat and lng (the seed's 50 B is {:.1}x more)\n  handed to the store {} B, \
                 finally stored {} B: {:.2}x\n  disk (redb file of the final records): {:.2} B \
                 per ping\n  {:.1} s wall",
                f.deliveries,
                f.pings,
                f.median_bytes_per_ping,
                f.median_core_bytes_per_ping,
                50.0 / f.median_bytes_per_ping,
                f.bytes_handed,
                f.bytes_stored,
                f.handed_over_stored,
                f.disk_bytes_per_ping,
                started.elapsed().as_secs_f64()
            );
        }
        Cmd::Whatif {
            day,
            a,
            b,
            out,
            orders_per_day,
            drivers,
            hours,
        } => {
            let size = CitySize {
                orders_per_day,
                drivers,
                hours,
                ..CitySize::default()
            };
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let mut days = Vec::new();
            for (tag, path) in [("A", &a), ("B", &b)] {
                let label = path
                    .file_stem()
                    .map_or_else(|| tag.to_owned(), |s| s.to_string_lossy().into_owned());
                eprintln!(
                    "whatif: day {day}, {tag} = {label} ({}) ...",
                    path.display()
                );
                let started = Instant::now();
                let mut rec = run_day(day, matching(path)?, size).map_err(anyhow::Error::msg)?;
                rec.label = label;
                eprintln!(
                    "whatif: {tag} done: {} orders in {:.1} s",
                    rec.orders.len(),
                    started.elapsed().as_secs_f64()
                );
                std::fs::write(
                    out.join(format!("day-{day}-{tag}.json")),
                    serde_json::to_vec_pretty(&rec)?,
                )?;
                days.push(rec);
            }
            let (a, b) = (&days[0], &days[1]);
            let html = out.join(format!("whatif-{day}.html"));
            std::fs::write(&html, sim::report::html(a, b))?;
            std::fs::write(
                out.join(format!("whatif-{day}.md")),
                sim::report::markdown_table(a, b),
            )?;
            println!("{}", sim::report::table(a, b));
            println!(
                "report: {} (sim/report-screenshot.sh renders it to PNG)",
                html.display()
            );
        }
    }
    Ok(())
}
