//! Sending the mix to the api over HTTP: at a rate (latency from when each request was due)
//! or flat out, and what each phase measured.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orderly_runtime::machine::{CpuSample, MachineLoad, ProcessSample};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::sync::Semaphore;

use super::mix::{Kind, MIX, Material, Planned, Who, pick, total_weight};
use crate::bench::percentile;

/// The api under load: its address, the tokens, what to ask.
pub(super) struct Target {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
    pub(super) admin: String,
    pub(super) manager: String,
    pub(super) material: Material,
}

/// One answered request.
#[derive(Debug, Clone, Copy)]
struct Sample {
    kind: Kind,
    millis: f64,
    ok: bool,
}

impl Target {
    /// Sends `planned` (and for a page-2 request, then the page its cursor names), calling
    /// `record` with each answer; `due` is when the first was meant to be sent.
    async fn send(&self, planned: &Planned, due: Instant, record: &(dyn Fn(Sample) + Sync)) {
        let token = match planned.who {
            Who::Admin => &self.admin,
            Who::Manager => &self.manager,
        };
        let url = format!("{}{}", self.base, planned.path);
        let first_kind = if planned.kind == Kind::ListPage2 {
            Kind::ListStore
        } else {
            planned.kind
        };
        let answer = self
            .http
            .get(&url)
            .bearer_auth(token)
            .query(&planned.query)
            .send()
            .await;
        let body = match answer {
            Ok(response) if response.status().is_success() => response.bytes().await.ok(),
            _ => None,
        };
        record(Sample {
            kind: first_kind,
            millis: due.elapsed().as_secs_f64() * 1000.0,
            ok: body.is_some(),
        });
        if planned.kind != Kind::ListPage2 {
            return;
        }
        let cursor = body
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["next_cursor"].as_str().map(str::to_owned));
        let Some(cursor) = cursor else {
            record(Sample {
                kind: Kind::ListPage2,
                millis: 0.0,
                ok: false,
            });
            return;
        };
        let mut query = planned.query.clone();
        query.push(("cursor", cursor));
        let sent = Instant::now();
        let ok = match self
            .http
            .get(&url)
            .bearer_auth(token)
            .query(&query)
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => response.bytes().await.is_ok(),
            _ => false,
        };
        record(Sample {
            kind: Kind::ListPage2,
            millis: sent.elapsed().as_secs_f64() * 1000.0,
            ok,
        });
    }
}

/// What one phase of reads measured.
#[derive(Debug, Clone)]
pub(super) struct Reads {
    seconds: f64,
    samples: Vec<Sample>,
    pub(super) load: MachineLoad,
    pub(super) busiest: Vec<(String, f64)>,
}

impl Reads {
    pub(super) fn per_second(&self) -> f64 {
        self.samples.len() as f64 / self.seconds.max(f64::EPSILON)
    }

    pub(super) fn errors(&self) -> usize {
        self.samples.iter().filter(|s| !s.ok).count()
    }

    /// p50, p95, p99 (ms) and the count of the answered requests that `keep` selects.
    pub(super) fn latency(&self, keep: impl Fn(Kind) -> bool) -> Latency {
        let mut millis: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| s.ok && keep(s.kind))
            .map(|s| s.millis)
            .collect();
        millis.sort_by(f64::total_cmp);
        Latency {
            p50: percentile(&millis, 50.0),
            p95: percentile(&millis, 95.0),
            p99: percentile(&millis, 99.0),
            count: millis.len(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Latency {
    pub(super) p50: f64,
    pub(super) p95: f64,
    pub(super) p99: f64,
    pub(super) count: usize,
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} / {:.1} / {:.1} ({})",
            self.p50, self.p95, self.p99, self.count
        )
    }
}

/// Sends the mix at `rate` per second for `duration`, at most `in_flight` at a time.
pub(super) async fn paced(
    target: &Arc<Target>,
    rate: f64,
    duration: Duration,
    in_flight: usize,
    seed: u64,
) -> Reads {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let permits = Arc::new(Semaphore::new(in_flight));
    let mut rng = StdRng::seed_from_u64(seed);
    let weights = total_weight(MIX);
    let cpu = CpuSample::now();
    let processes = ProcessSample::now();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0u64.. {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        // The phase lasts `duration` by the clock, whether or not the server kept up.
        if due.duration_since(started) >= duration || started.elapsed() >= duration {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let planned = target
            .material
            .plan(pick(MIX, rng.random_range(0..weights)), &mut rng);
        let (target, samples) = (target.clone(), samples.clone());
        tasks.spawn(async move {
            let record = |s: Sample| {
                if let Ok(mut all) = samples.lock() {
                    all.push(s);
                }
            };
            target.send(&planned, due, &record).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    finish(samples, started, &cpu, &processes)
}

/// Sends the mix as fast as it is answered, `connections` requests at a time, for `duration`.
pub(super) async fn flat_out(
    target: &Arc<Target>,
    duration: Duration,
    connections: usize,
    seed: u64,
) -> Reads {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let weights = total_weight(MIX);
    let cpu = CpuSample::now();
    let processes = ProcessSample::now();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..connections {
        let (target, samples) = (target.clone(), samples.clone());
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed + client as u64);
            let record = |s: Sample| {
                if let Ok(mut all) = samples.lock() {
                    all.push(s);
                }
            };
            while started.elapsed() < duration {
                let planned = target
                    .material
                    .plan(pick(MIX, rng.random_range(0..weights)), &mut rng);
                target.send(&planned, Instant::now(), &record).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    finish(samples, started, &cpu, &processes)
}

fn finish(
    samples: Arc<Mutex<Vec<Sample>>>,
    started: Instant,
    cpu: &CpuSample,
    processes: &ProcessSample,
) -> Reads {
    let seconds = started.elapsed().as_secs_f64();
    let samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    Reads {
        seconds,
        samples,
        load: CpuSample::now().since(cpu),
        busiest: ProcessSample::now().busiest_since(processes, 6),
    }
}
