//! Standing by: while another instance of this cell holds the lease, the process waits to
//! take over, serving only `/live` and a `/ready` that says `standby` (503), so probes and
//! operators see what it is doing and load balancers send it nothing.

use super::{Listeners, StartError};
use crate::app::Clock;
use crate::config::Config;
use crate::lease::{CellLease, Holder};
use std::future::Future;
use std::pin::Pin;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Waits until this process holds `lease`; `false` if `shutdown` came first. Serves the
/// standby endpoints on `listeners.http` (a second descriptor of the same socket, so the
/// listener is whole again for serving afterwards) only when the lease is found held.
pub(super) async fn until_held(
    lease: &CellLease,
    config: &Config,
    clock: &dyn Clock,
    listeners: &Listeners,
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
) -> Result<bool, StartError> {
    let (holder_tx, mut holder_rx) = watch::channel(None::<Holder>);
    let acquiring = lease.acquire(clock, |h| {
        holder_tx.send_replace(Some(h.clone()));
    });
    tokio::pin!(acquiring);
    // The usual case: the lease is free and nothing is served before the app is built.
    tokio::select! {
        _ = acquiring.as_mut() => return Ok(true),
        _ = holder_rx.changed() => {}
        () = shutdown.as_mut() => return Ok(false),
    }
    let router = crate::http::standby_router(config.cell.id, holder_rx);
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let serving = service::http::serve(
        duplicate(&listeners.http)?,
        router,
        listeners.tls.clone(),
        config.http.edge.limits(),
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        },
    );
    tokio::pin!(serving);
    let held = tokio::select! {
        _ = acquiring => true,
        () = shutdown => false,
        r = serving.as_mut() => {
            // It only ends when asked to; an error here is the listener's.
            r?;
            false
        }
    };
    let _ = stop_tx.send(true);
    serving.await?;
    Ok(held)
}

/// A second descriptor of the listening socket: the standby server owns (and closes) this
/// one, connections it did not accept stay queued for the serving one.
fn duplicate(listener: &TcpListener) -> std::io::Result<TcpListener> {
    let dup: std::net::TcpListener = socket2::SockRef::from(listener).try_clone()?.into();
    dup.set_nonblocking(true)?;
    TcpListener::from_std(dup)
}
