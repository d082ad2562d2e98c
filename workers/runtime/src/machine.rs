//! What the machine was like while a benchmark ran: how busy its cores were and how much
//! time the hypervisor took away from them (*steal*, from Linux's `/proc/stat`), and how
//! fast one core is (a fixed reference loop).
//!
//! Why: this project's machine is a VM on shared hardware, and the same commit measured on
//! two sessions' machines differed threefold (the reference loop differed as much). Figures
//! printed beside the machine's speed and load can be compared; bare ones cannot.

use std::time::Duration;

/// Cumulative CPU counters of the whole machine (`/proc/stat`, first line), in ticks.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSample {
    busy: u64,
    idle: u64,
    steal: u64,
}

impl CpuSample {
    /// Reads the counters now; zeros where `/proc/stat` is not available.
    pub fn now() -> Self {
        let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
            return Self::default();
        };
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        let at = |i: usize| fields.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        Self {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            idle: at(3) + at(4),
            steal: at(7),
        }
    }

    /// Shares of the time since `earlier`: (busy, stolen), in percent of all cores.
    pub fn since(&self, earlier: &Self) -> MachineLoad {
        let busy = self.busy.saturating_sub(earlier.busy);
        let idle = self.idle.saturating_sub(earlier.idle);
        let steal = self.steal.saturating_sub(earlier.steal);
        let total = (busy + idle + steal).max(1) as f64;
        MachineLoad {
            busy_percent: 100.0 * busy as f64 / total,
            steal_percent: 100.0 * steal as f64 / total,
        }
    }
}

/// How the machine's cores were used over an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineLoad {
    /// Running our processes (and everything else on the guest).
    pub busy_percent: f64,
    /// Taken by the hypervisor for other guests: the machine was this much smaller.
    pub steal_percent: f64,
}

impl std::fmt::Display for MachineLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cores busy {:.0} %, stolen by the hypervisor {:.0} %",
            self.busy_percent, self.steal_percent
        )
    }
}

/// CPU time used so far by every process of the machine, by command name (`/proc/<pid>/stat`),
/// to say what else ran beside a benchmark: on a shared machine another build or test run
/// takes cores from the figures, and the section should say so.
#[derive(Debug, Clone, Default)]
pub struct ProcessSample {
    /// (pid, command, CPU ticks in user and system mode).
    processes: Vec<(u32, String, u64)>,
    taken: Option<std::time::Instant>,
}

impl ProcessSample {
    /// Reads every process's counters now; empty where `/proc` is not available.
    pub fn now() -> Self {
        let processes = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
                let (command, ticks) = parse_stat(&stat)?;
                Some((pid, command, ticks))
            })
            .collect();
        Self {
            processes,
            taken: Some(std::time::Instant::now()),
        }
    }

    /// The commands that used the most CPU since `earlier`, in percent of one core, busiest
    /// first: processes are matched by pid (and command, in case a pid was reused), and
    /// those of one command are added up (PostgreSQL's backends, a test binary's copies).
    pub fn busiest_since(&self, earlier: &Self, most: usize) -> Vec<(String, f64)> {
        let seconds = match (self.taken, earlier.taken) {
            (Some(now), Some(then)) => now.duration_since(then).as_secs_f64(),
            _ => 0.0,
        };
        let before: std::collections::HashMap<(u32, &str), u64> = earlier
            .processes
            .iter()
            .map(|(pid, command, ticks)| ((*pid, command.as_str()), *ticks))
            .collect();
        let mut by_command: std::collections::BTreeMap<&str, u64> = Default::default();
        for (pid, command, ticks) in &self.processes {
            let used = ticks
                - before
                    .get(&(*pid, command.as_str()))
                    .copied()
                    .unwrap_or(0)
                    .min(*ticks);
            *by_command.entry(command).or_default() += used;
        }
        let mut busiest: Vec<(String, f64)> = by_command
            .into_iter()
            .filter(|(_, ticks)| *ticks > 0)
            .map(|(command, ticks)| {
                (
                    command.to_owned(),
                    100.0 * ticks as f64 / TICKS_PER_SECOND / seconds.max(1e-9),
                )
            })
            .collect();
        busiest.sort_by(|a, b| b.1.total_cmp(&a.1));
        busiest.truncate(most);
        busiest
    }
}

impl ProcessSample {
    /// CPU seconds (user and system) each process used since `earlier`: (pid, command,
    /// seconds), processes matched by pid and command; those that used none are left out.
    pub fn seconds_since(&self, earlier: &Self) -> Vec<(u32, String, f64)> {
        let before: std::collections::HashMap<(u32, &str), u64> = earlier
            .processes
            .iter()
            .map(|(pid, command, ticks)| ((*pid, command.as_str()), *ticks))
            .collect();
        self.processes
            .iter()
            .filter_map(|(pid, command, ticks)| {
                let then = before.get(&(*pid, command.as_str())).copied().unwrap_or(0);
                let used = ticks.saturating_sub(then);
                (used > 0).then(|| (*pid, command.clone(), used as f64 / TICKS_PER_SECOND))
            })
            .collect()
    }
}

/// Linux counts CPU time in `/proc` in ticks of 1/100 s (`USER_HZ`, 100 on every common
/// configuration).
const TICKS_PER_SECOND: f64 = 100.0;

/// The command and the CPU ticks (user + system) of a `/proc/<pid>/stat` line. The command is
/// in parentheses and may itself contain spaces and parentheses, so the fields are counted
/// from the last `)`.
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let command = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // After the command: state (3rd field of the line), ..., utime (14th), stime (15th).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((command, utime + stime))
}

/// Time one core takes for a fixed integer workload (100 million steps of a xorshift
/// generator): printed beside a benchmark's figures so runs on different machines (or on
/// one machine at different times) can be compared. Lower is a faster core.
pub fn reference_loop() -> Duration {
    let start = std::time::Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut acc: u64 = 0;
    for _ in 0..100_000_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        acc = acc.wrapping_add(x);
    }
    std::hint::black_box(acc);
    start.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_line_gives_its_command_and_cpu_ticks() {
        let line = "4169 (tokio-rt (worker)) S 1 4169 4169 0 -1 4194304 512 0 0 0 1500 230 0 0 20 0 9 0 123 456 789";
        assert_eq!(
            parse_stat(line),
            Some(("tokio-rt (worker)".to_owned(), 1730))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn the_busiest_commands_add_up_their_processes_and_skip_idle_ones() {
        let at = std::time::Instant::now();
        let sample = |processes: Vec<(u32, &str, u64)>, taken| ProcessSample {
            processes: processes
                .into_iter()
                .map(|(pid, command, ticks)| (pid, command.to_owned(), ticks))
                .collect(),
            taken: Some(taken),
        };
        let before = sample(
            vec![
                (1, "postgres", 100),
                (2, "postgres", 50),
                (3, "rustc", 0),
                (4, "idle", 7),
            ],
            at,
        );
        let after = sample(
            vec![
                (1, "postgres", 150),
                (2, "postgres", 100),
                (3, "rustc", 80),
                (4, "idle", 7),
                (5, "cargo", 10),
            ],
            at + Duration::from_secs(2),
        );
        assert_eq!(
            after.busiest_since(&before, 2),
            vec![("postgres".to_owned(), 50.0), ("rustc".to_owned(), 40.0)],
            "percent of one core over two seconds, idle processes left out, the most busy first"
        );
        assert_eq!(after.busiest_since(&before, 10).len(), 3);
    }

    #[test]
    fn shares_add_up() {
        let a = CpuSample {
            busy: 100,
            idle: 100,
            steal: 0,
        };
        let b = CpuSample {
            busy: 160,
            idle: 120,
            steal: 20,
        };
        let load = b.since(&a);
        assert!((load.busy_percent - 60.0).abs() < 1e-9);
        assert!((load.steal_percent - 20.0).abs() < 1e-9);
        assert!(CpuSample::now().since(&CpuSample::now()).busy_percent >= 0.0);
    }
}
