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
