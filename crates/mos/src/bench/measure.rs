//! Driving a load and measuring it: concurrent clients for a fixed time, the latency of each
//! operation, and the CPU time the processes involved spent meanwhile. Nothing here judges a
//! time; the report only shows them next to their baselines.

use std::future::Future;
use std::time::{Duration, Instant};

/// Linux reports CPU time in clock ticks of this many per second (`USER_HZ`, fixed by its ABI).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// One measured run, or several merged.
#[derive(Debug, Default, Clone)]
pub struct Run {
    pub ops: u64,
    pub seconds: f64,
    /// Microseconds per operation.
    pub latencies: Vec<u32>,
    pub cpu: Cpu,
}

/// Cores used on average, by process group; `None` where it could not be seen (a database on
/// another machine).
#[derive(Debug, Default, Clone, Copy)]
pub struct Cpu {
    pub postgres: Option<f64>,
    pub server: Option<f64>,
    /// This process: the load generator, or the data layer when it is measured in-process.
    pub bench: f64,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.seconds.max(f64::EPSILON)
    }

    /// The `p`th percentile latency in milliseconds.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
    }

    /// Several runs as one: the rounds of an interleaved measurement.
    pub fn merge(runs: Vec<Run>) -> Run {
        let mut merged = Run::default();
        let mut weights = (0.0, 0.0, 0.0);
        for run in runs {
            merged.ops += run.ops;
            merged.latencies.extend(run.latencies);
            let s = run.seconds;
            merged.seconds += s;
            weights.0 += run.cpu.postgres.map_or(0.0, |c| c * s);
            weights.1 += run.cpu.server.map_or(0.0, |c| c * s);
            weights.2 += run.cpu.bench * s;
            merged.cpu.postgres = merged.cpu.postgres.or(run.cpu.postgres.map(|_| 0.0));
            merged.cpu.server = merged.cpu.server.or(run.cpu.server.map(|_| 0.0));
        }
        let seconds = merged.seconds.max(f64::EPSILON);
        merged.cpu.postgres = merged.cpu.postgres.map(|_| weights.0 / seconds);
        merged.cpu.server = merged.cpu.server.map(|_| weights.1 / seconds);
        merged.cpu.bench = weights.2 / seconds;
        merged
    }
}

/// `clients` tasks call `op(client, n)` back to back until `duration` has passed.
pub async fn drive<F, Fut>(clients: usize, duration: Duration, server: Option<u32>, op: F) -> anyhow::Result<Run>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let meter = Meter::start(server);
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let at = Instant::now();
                    op(client, n).await?;
                    latencies.push(u32::try_from(at.elapsed().as_micros()).unwrap_or(u32::MAX));
                    n += 1;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Run { ops: latencies.len() as u64, seconds, latencies, cpu: meter.stop(seconds) })
}

/// CPU ticks spent so far by the processes a run involves.
pub struct Meter {
    postgres: Option<u64>,
    server: Option<(u32, u64)>,
    bench: u64,
}

impl Meter {
    pub fn start(server: Option<u32>) -> Self {
        Self {
            postgres: postgres_ticks(),
            server: server.and_then(|pid| Some((pid, process_ticks(pid)?))),
            bench: process_ticks(std::process::id()).unwrap_or(0),
        }
    }

    pub fn stop(&self, seconds: f64) -> Cpu {
        let cores = |ticks: u64| ticks as f64 / TICKS_PER_SECOND / seconds.max(f64::EPSILON);
        Cpu {
            postgres: self.postgres.zip(postgres_ticks()).map(|(a, b)| cores(b.saturating_sub(a))),
            server: self.server.and_then(|(pid, a)| process_ticks(pid).map(|b| cores(b.saturating_sub(a)))),
            bench: cores(process_ticks(std::process::id()).unwrap_or(0).saturating_sub(self.bench)),
        }
    }
}

/// User and system time of a process and of its children that have exited.
pub fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may itself hold spaces and parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime, stime, cutime, cstime: fields 14 to 17, so 11 to 14 after the state.
    fields.get(11..15).map(|f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
}

/// Every PostgreSQL process on this machine: the server and its backends, including those that
/// exited (their time is the server's children's time). `None` when there is none to see.
fn postgres_ticks() -> Option<u64> {
    let mut total = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "postgres" {
            *total.get_or_insert(0) += process_ticks(pid).unwrap_or(0);
        }
    }
    total
}

/// Resident memory of a process, in MiB: (now, peak).
pub fn memory_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
