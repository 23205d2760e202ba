//! A small filesystem of its own for a test: a tmpfs mounted in a temp dir (root only), and a
//! ballast file that fills it up. The mount is undone when the [`SmallFs`] is dropped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs; unmounted (lazily, so a dying child's open files cannot keep it) on drop.
pub struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// Mounts a tmpfs of `size_mib` MiB, or says why it could not (not root, no `mount`,
    /// a container without `CAP_SYS_ADMIN`).
    pub fn mount(size_mib: u32) -> Result<SmallFs, String> {
        let dir = tempfile::Builder::new()
            .prefix("itest-smallfs-")
            .tempdir()
            .map_err(|e| format!("creating the mount point: {e}"))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallFs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `name` until the filesystem is full (ENOSPC), then gives `leave` bytes back;
    /// returns its path and size.
    pub fn fill(&self, name: &str, leave: u64) -> std::io::Result<(PathBuf, u64)> {
        let path = self.path().join(name);
        let mut f = std::fs::File::create(&path)?;
        let chunk = vec![0xA5u8; 64 << 10];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => return Err(e),
            }
        }
        // Whatever is left is smaller than a chunk: take it byte-wise in smaller writes.
        let small = vec![0xA5u8; 512];
        while let Ok(n) = f.write(&small) {
            if n == 0 {
                break;
            }
            written += n as u64;
        }
        written = written.saturating_sub(leave);
        f.set_len(written)?;
        Ok((path, written))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
