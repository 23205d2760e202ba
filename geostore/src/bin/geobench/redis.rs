//! The Redis side of the bench: start a private `redis-server` (installing the Debian package if
//! missing), stop exactly that process on drop, panic or ctrl-c, and a minimal RESP client.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// PID of the server we started, for the SIGINT handler (0 = none).
static PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_sigint(_: libc::c_int) {
    let pid = PID.load(Ordering::SeqCst);
    // SAFETY: kill and _exit are async-signal-safe; pid is a child we spawned.
    unsafe {
        if pid > 0 {
            libc::kill(pid, libc::SIGTERM);
        }
        libc::_exit(130);
    }
}

/// A `redis-server` child on a free loopback port; killed (by PID) when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    pub version: String,
}

impl Server {
    pub fn start() -> io::Result<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("redis-server not found: apt-get install -y redis-server");
            let ok = Command::new("apt-get")
                .args(["install", "-y", "redis-server"])
                .status()?
                .success()
                || (Command::new("apt-get").arg("update").status()?.success()
                    && Command::new("apt-get")
                        .args(["install", "-y", "redis-server"])
                        .status()?
                        .success());
            if !ok {
                return Err(io::Error::other("could not install redis-server"));
            }
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("geobench-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        PID.store(child.id() as i32, Ordering::SeqCst);
        // SAFETY: installs a handler that only calls async-signal-safe functions.
        unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
        let mut s = Self {
            child,
            port,
            version: String::new(),
        };
        for _ in 0..200 {
            if let Ok(mut c) = Client::connect(port)
                && let Ok(Reply::Bulk(Some(info))) = c.cmd(&[b"INFO", b"server"])
            {
                let info = String::from_utf8_lossy(&info);
                s.version = info
                    .lines()
                    .find_map(|l| l.strip_prefix("redis_version:"))
                    .unwrap_or("?")
                    .trim()
                    .to_string();
                return Ok(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(io::Error::other("redis-server did not answer"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        PID.store(0, Ordering::SeqCst);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
#[allow(dead_code)] // Fields are kept for debugging output.
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// Minimal RESP2 client over a blocking `TcpStream`.
pub struct Client {
    r: BufReader<TcpStream>,
    w: BufWriter<TcpStream>,
}

/// Appends one command in RESP array form.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

impl Client {
    pub fn connect(port: u16) -> io::Result<Self> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        Ok(Self {
            r: BufReader::with_capacity(1 << 16, s.try_clone()?),
            w: BufWriter::with_capacity(1 << 16, s),
        })
    }

    pub fn cmd(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        let mut b = Vec::new();
        encode(&mut b, args);
        self.raw(&b)?;
        self.read()
    }

    /// Writes pre-encoded commands and flushes.
    pub fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.w.write_all(bytes)?;
        self.w.flush()
    }

    pub fn read(&mut self) -> io::Result<Reply> {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line)?;
        if line.len() < 3 {
            return Err(io::Error::other("connection closed"));
        }
        let body = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
        let num = || body.parse::<i64>().map_err(io::Error::other);
        Ok(match line[0] {
            b'+' => Reply::Simple(body),
            b'-' => Reply::Error(body),
            b':' => Reply::Int(num()?),
            b'$' => match num()? {
                -1 => Reply::Bulk(None),
                n => {
                    let mut v = vec![0; n as usize + 2];
                    self.r.read_exact(&mut v)?;
                    v.truncate(n as usize);
                    Reply::Bulk(Some(v))
                }
            },
            b'*' => match num()? {
                -1 => Reply::Array(None),
                n => Reply::Array(Some(
                    (0..n).map(|_| self.read()).collect::<io::Result<_>>()?,
                )),
            },
            _ => return Err(io::Error::other(format!("bad reply {body}"))),
        })
    }

    /// Reads `n` replies, failing on any error reply.
    pub fn read_n(&mut self, n: usize) -> io::Result<usize> {
        let mut items = 0;
        for _ in 0..n {
            match self.read()? {
                Reply::Error(e) => return Err(io::Error::other(e)),
                Reply::Array(Some(a)) => items += a.len(),
                _ => {}
            }
        }
        Ok(items)
    }
}
