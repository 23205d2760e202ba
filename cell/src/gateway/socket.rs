//! The gateway's UDP sockets: one per gateway thread, all bound to the same address with
//! `SO_REUSEPORT` so the kernel spreads clients over them (by a hash of each client's address
//! and port, so a connection's packets always reach the same socket), each with a raised
//! SO_RCVBUF.

use std::net::SocketAddr;

use super::{GatewayError, QuicConfig};

/// The bound sockets and what the kernel granted.
pub(super) struct Bound {
    pub sockets: Vec<std::net::UdpSocket>,
    pub local_addr: SocketAddr,
    /// SO_RCVBUF as the kernel reports it, for the first socket (all ask for the same).
    pub recv_buffer_bytes: usize,
}

/// Binds `threads` sockets to `cfg.listen_addr`. With port 0 the first socket picks the port
/// and the others join it. More than one socket needs `SO_REUSEPORT`'s load balancing, which
/// only Linux does for UDP; elsewhere one socket is bound and a warning logged.
pub(super) fn bind_all(cfg: &QuicConfig, threads: usize) -> Result<Bound, GatewayError> {
    let threads = if threads > 1 && !cfg!(target_os = "linux") {
        tracing::warn!(
            threads,
            "SO_REUSEPORT load balancing is Linux only: the gateway runs one thread"
        );
        1
    } else {
        threads.max(1)
    };
    let reuse = threads > 1;
    if reuse && cfg.listen_addr.port() != 0 {
        // Any process of our user that also sets SO_REUSEPORT may join a port group and take a
        // share of its packets. A plain bind fails if anything holds the port, so a second cell
        // configured with the same port is refused here instead of splitting our traffic.
        std::net::UdpSocket::bind(cfg.listen_addr).map_err(|e| {
            GatewayError::Io(format!("binding {} (already in use?)", cfg.listen_addr), e)
        })?;
    }
    let (first, recv_buffer_bytes) = udp_socket(cfg, cfg.listen_addr, reuse)?;
    let local_addr = first
        .local_addr()
        .map_err(|e| GatewayError::Io("local address".into(), e))?;
    let mut sockets = vec![first];
    for _ in 1..threads {
        sockets.push(udp_socket(cfg, local_addr, true)?.0);
    }
    Ok(Bound {
        sockets,
        local_addr,
        recv_buffer_bytes,
    })
}

/// The UDP socket with SO_RCVBUF raised: bursts of pings arrive faster than one core drains
/// them, and the default ~208 KiB lost a quarter of a burst in our measurements.
/// Returns the socket and the receive buffer size the kernel reports.
fn udp_socket(
    cfg: &QuicConfig,
    addr: SocketAddr,
    reuse_port: bool,
) -> Result<(std::net::UdpSocket, usize), GatewayError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let io = |what: &str| {
        let what = what.to_owned();
        move |e| GatewayError::Io(what, e)
    };
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(io("creating the UDP socket"))?;
    if addr.is_ipv6() {
        // Dual stack where the OS allows it; failure just means IPv6 only.
        let _ = sock.set_only_v6(false);
    }
    if reuse_port {
        set_reuse_port(&sock).map_err(io("setting SO_REUSEPORT"))?;
    }
    let want = cfg.socket_recv_buffer_bytes;
    if let Err(e) = sock.set_recv_buffer_size(want) {
        tracing::warn!(error = %e, want, "setting SO_RCVBUF failed");
    }
    let mut granted = sock.recv_buffer_size().map_err(io("reading SO_RCVBUF"))?;
    if usable(granted) < want {
        // Above net.core.rmem_max only SO_RCVBUFFORCE (CAP_NET_ADMIN) gets the size.
        force_recv_buffer(&sock, want);
        granted = sock.recv_buffer_size().map_err(io("reading SO_RCVBUF"))?;
    }
    if usable(granted) < want {
        tracing::warn!(
            requested_bytes = want,
            granted_bytes = granted,
            "the kernel clamped SO_RCVBUF: bursts of pings may be dropped; raise net.core.rmem_max"
        );
    }
    sock.bind(&addr.into())
        .map_err(io("binding the UDP socket"))?;
    Ok((sock.into(), granted))
}

/// Linux reports twice the size set (it counts its bookkeeping); other systems the size.
fn usable(reported: usize) -> usize {
    if cfg!(target_os = "linux") {
        reported / 2
    } else {
        reported
    }
}

/// Sets an integer socket option (socket2 has `SO_REUSEPORT` only behind its `all` feature
/// and no `SO_RCVBUFFORCE`).
#[cfg(target_os = "linux")]
fn set_int_option(
    sock: &socket2::Socket,
    name: libc::c_int,
    val: libc::c_int,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid fd owned by `sock`, and a pointer to a c_int with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&raw const val).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(target_os = "linux")]
fn set_reuse_port(sock: &socket2::Socket) -> std::io::Result<()> {
    set_int_option(sock, libc::SO_REUSEPORT, 1)
}

#[cfg(not(target_os = "linux"))]
fn set_reuse_port(_: &socket2::Socket) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "SO_REUSEPORT balancing is Linux only",
    ))
}

#[cfg(target_os = "linux")]
fn force_recv_buffer(sock: &socket2::Socket, want: usize) {
    let Ok(val) = libc::c_int::try_from(want) else {
        return;
    };
    if let Err(e) = set_int_option(sock, libc::SO_RCVBUFFORCE, val) {
        tracing::debug!(error = %e, "SO_RCVBUFFORCE refused");
    }
}

#[cfg(not(target_os = "linux"))]
fn force_recv_buffer(_: &socket2::Socket, _: usize) {}
