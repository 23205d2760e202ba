//! The process the durability test kills. Two modes:
//!
//! - `store-crash-writer write DIR FIRST_ID WORKERS`: opens the store in `DIR` and creates
//!   synthetic orders `FIRST_ID, FIRST_ID + 1, …` from `WORKERS` concurrent tasks, forever,
//!   printing each id on its own line to stdout only once its transaction is acknowledged.
//! - `store-crash-writer open DIR`: tries to open the store; exits 0 if it could, 3 if another
//!   process holds it (printing the error), 1 on any other error.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use store::{Kv, LogId, RedbOptions, RedbStore, StoreError, synthetic};

/// The log the synthetic orders append to.
const LOG: LogId = LogId(1);

fn usage() -> ExitCode {
    eprintln!("usage: store-crash-writer write DIR FIRST_ID WORKERS | open DIR");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["open", dir] => match RedbStore::open(dir.as_ref(), RedbOptions::default()) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e @ StoreError::AlreadyOpen { .. }) => {
                eprintln!("{e}");
                ExitCode::from(3)
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        ["write", dir, first, workers] => {
            let (Ok(first), Ok(workers)) = (first.parse::<u64>(), workers.parse::<u64>()) else {
                return usage();
            };
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            rt.block_on(write(dir, first, workers.max(1)))
        }
        _ => usage(),
    }
}

async fn write(dir: &str, first: u64, workers: u64) -> ExitCode {
    let kv: Arc<dyn Kv> = match RedbStore::open(dir.as_ref(), RedbOptions::default()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let next = Arc::new(AtomicU64::new(first));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (kv, next) = (kv.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let id = next.fetch_add(1, Ordering::Relaxed);
                match synthetic::create_order(&*kv, id, LOG).await {
                    // stdout is line-buffered: each acknowledged id is written out whole.
                    Ok(_) => println!("{id}"),
                    Err(e) => {
                        eprintln!("order {id}: {e}");
                        return;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    ExitCode::from(1)
}
