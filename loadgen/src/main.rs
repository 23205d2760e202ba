//! `loadgen`: see the crate documentation and `loadgen/README.md`.

use clap::{Parser, Subcommand};
use loadgen::city;
use loadgen::quic::{find_max, pings, track, trackers};
use loadgen::run::{Common, Which, run};

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Open-loop load generator for the delivery platform"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Clone)]
enum Cmd {
    /// Restaurant search at random points around the centre.
    Search {
        #[command(flatten)]
        common: Common,
    },
    /// Menus of restaurants found by searches during warm-up.
    Menu {
        #[command(flatten)]
        common: Common,
    },
    /// A mix of searches and menu reads.
    Browse {
        /// Share of requests that are searches (the rest read menus).
        #[arg(long, default_value_t = 0.5)]
        search_share: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Order flows: search → menu → quote → place → accept → preparing → ready.
    Orders {
        /// Skip search and menu: restaurants, menus and addresses from the warm-up pool.
        #[arg(long)]
        checkout_only: bool,
        /// Share of orders (0-1) the restaurant rejects instead of accepting.
        #[arg(long, default_value_t = 0.0)]
        reject_share: f64,
        /// Share of orders (0-1) the customer cancels right after the accept.
        #[arg(long, default_value_t = 0.0)]
        cancel_share: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Simulated drivers pinging over QUIC at a target aggregate rate; loss from /metrics.
    Pings {
        #[command(flatten)]
        args: pings::PingArgs,
    },
    /// Like `pings`, and writes every ping sent to a trace file (CSV, see the README).
    Record {
        /// The trace to write.
        #[arg(long)]
        out: std::path::PathBuf,
        #[command(flatten)]
        args: pings::PingArgs,
    },
    /// Plays a trace file at 1× or `--speed N`×.
    Replay {
        #[command(flatten)]
        args: pings::ReplayArgs,
    },
    /// WebSocket trackers on live orders carried by QUIC drivers: ping → push latency.
    Track {
        #[command(flatten)]
        args: track::TrackArgs,
    },
    /// Many tracking WebSockets held on a few live orders (through a router), spread over
    /// local source addresses: RSS per connection, drops, push latency.
    Trackers {
        #[command(flatten)]
        args: trackers::TrackersArgs,
    },
    /// Everything at once at the seed's shape scaled to one cell: browsing and ordering
    /// 10:1 on a dinner-rush profile, drivers pinging, trackers watching live orders.
    City {
        #[command(flatten)]
        args: city::CityArgs,
    },
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("loadgen: starting the runtime: {e}");
            None
        }
    }
}

/// Runs a QUIC scenario; `None` for the HTTP ones.
fn quic(cmd: &Cmd) -> Option<std::process::ExitCode> {
    if !matches!(
        cmd,
        Cmd::Pings { .. }
            | Cmd::Record { .. }
            | Cmd::Replay { .. }
            | Cmd::Track { .. }
            | Cmd::Trackers { .. }
            | Cmd::City { .. }
    ) {
        return None;
    }
    let Some(rt) = runtime() else {
        return Some(std::process::ExitCode::from(1));
    };
    let r = match cmd.clone() {
        Cmd::Pings { args } if args.find_max => rt.block_on(find_max::run(args)).map(|_| true),
        Cmd::Pings { args } => rt
            .block_on(pings::run(pings::Mode::Synthetic(args, None)))
            .map(|r| r.slo_passed()),
        Cmd::Record { out, args } => rt
            .block_on(pings::run(pings::Mode::Synthetic(args, Some(out))))
            .map(|r| r.slo_passed()),
        Cmd::Replay { args } => rt
            .block_on(pings::run(pings::Mode::Replay(args)))
            .map(|r| r.slo_passed()),
        Cmd::Track { args } => rt.block_on(track::run(args)).map(|r| r.slo_passed()),
        Cmd::Trackers { args } => rt
            .block_on(trackers::run(args))
            .map(|r| r.dropped == 0 && r.open_failures == 0),
        Cmd::City { args } => rt.block_on(city::run(args)).map(|r| r.slo_passed()),
        _ => return None,
    };
    Some(exit(r))
}

fn main() -> std::process::ExitCode {
    let cmd = Cli::parse().cmd;
    if let Some(code) = quic(&cmd) {
        return code;
    }
    let (which, common) = match cmd {
        Cmd::Search { common } => (Which::Search, common),
        Cmd::Menu { common } => (Which::Menu, common),
        Cmd::Browse {
            search_share,
            common,
        } => (Which::Browse { search_share }, common),
        Cmd::Orders {
            checkout_only,
            reject_share,
            cancel_share,
            common,
        } => (
            Which::Orders {
                checkout_only,
                reject_share,
                cancel_share,
            },
            common,
        ),
        _ => unreachable!("QUIC scenarios are run by quic()"),
    };
    let Some(rt) = runtime() else {
        return std::process::ExitCode::from(1);
    };
    exit(rt.block_on(run(which, common)).map(|r| r.slo_passed()))
}

/// 0 when every SLO held, 2 when one was missed, 1 on any other error.
fn exit(r: anyhow::Result<bool>) -> std::process::ExitCode {
    match r {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("loadgen: SLO missed");
            std::process::ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
