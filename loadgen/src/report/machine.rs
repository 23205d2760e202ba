//! Facts about the machine and the processes, so a number in a report says where it was
//! measured and who else was using the CPU.

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    /// 1, 5 and 15 minute load averages at the start and the end of the run.
    pub loadavg_start: String,
    pub loadavg_end: String,
}

impl Machine {
    pub fn at_start() -> Self {
        Self {
            cpu_model: cpu_model(),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            loadavg_start: loadavg(),
            loadavg_end: String::new(),
        }
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default()
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPU seconds (user + system) of a process so far, from `/proc/<pid>/stat`; `None` for
/// this process. Assumes the usual 100 clock ticks per second.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".into(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may contain spaces) start at ")".
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU used during the run, as a share of one core (1.0 = one core busy all the time).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuUse {
    pub loadgen_cores: f64,
    /// With `--target-pid`.
    pub target_cores: Option<f64>,
}
