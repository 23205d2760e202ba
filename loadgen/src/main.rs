//! `loadgen`: see the crate documentation and `loadgen/README.md`.

use clap::{Parser, Subcommand};
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

#[derive(Subcommand)]
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
        #[command(flatten)]
        common: Common,
    },
}

fn main() -> std::process::ExitCode {
    let (which, common) = match Cli::parse().cmd {
        Cmd::Search { common } => (Which::Search, common),
        Cmd::Menu { common } => (Which::Menu, common),
        Cmd::Browse {
            search_share,
            common,
        } => (Which::Browse { search_share }, common),
        Cmd::Orders {
            checkout_only,
            common,
        } => (Which::Orders { checkout_only }, common),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: starting the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match rt.block_on(run(which, common)) {
        Ok(r) if r.slo_passed() => std::process::ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!("loadgen: SLO missed");
            std::process::ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
