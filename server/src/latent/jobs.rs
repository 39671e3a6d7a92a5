//! Latent-space work on a stored study, cached in the store by its parameters: an unchanged request
//! is answered from the cache, a changed parameter recomputes. [`Jobs`] runs the same work on a
//! background thread and reports its progress (for the HTTP API).

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub use failscope_shared::api::{ClusterParams, JobStatus, LiveLayout, Space};
use failscope_shared::api::{Clustering, FailureKind, JobFailure, ParamError};
use failscope_shared::wire;
use ndarray::Array2;

use super::cluster::{self, Samples};
use super::{EmbedError, EmbedParams, Live};
use crate::error::{lock, InputError};
use crate::store::{Store, StoreError};

/// A failed latent-space job.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A parameter does not suit the study (named by its API field).
    #[error("{0}")]
    Params(#[from] ParamError),
    /// The study's data cannot be used (no features, non-finite features).
    #[error(transparent)]
    Input(#[from] InputError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl From<EmbedError> for JobError {
    fn from(e: EmbedError) -> Self {
        match e {
            EmbedError::Input(e) => JobError::Input(e),
            EmbedError::Cancelled => JobError::Cancelled,
        }
    }
}

impl JobError {
    /// What a client is told: bad parameters or data are its to fix (unprocessable); a failing
    /// store is ours, logged here and reported without its details.
    pub fn failure(&self) -> JobFailure {
        match self {
            JobError::Params(_) | JobError::Input(_) => JobFailure {
                kind: FailureKind::Unprocessable,
                message: self.to_string(),
            },
            JobError::Cancelled => JobFailure {
                kind: FailureKind::Cancelled,
                message: "cancelled".into(),
            },
            JobError::Store(e) => {
                tracing::error!(error = %e, "latent job failed");
                JobFailure {
                    kind: FailureKind::Internal,
                    message: "internal error".into(),
                }
            }
        }
    }
}

fn features(store: &Store, id: i64) -> Result<Array2<f32>, JobError> {
    store.features(id)?.ok_or_else(|| {
        JobError::Input(InputError::item(
            format!("study {id}"),
            "has no features: import an FD-Shifts folder with encoded_output.npz, or run `failscope infer` with a model that returns (logits, features)",
        ))
    })
}

/// Points above which an embedding shows no intermediate layouts: at a million points one is 5 MB
/// of event text every quarter second, more than a browser usefully redraws.
pub const LIVE_MAX_ROWS: usize = 200_000;

/// The study's embedding for `params`, from the cache or computed (and cached), offering `live`
/// its intermediate layouts (up to [`LIVE_MAX_ROWS`] points). The flag says whether it came from
/// the cache.
pub fn embedding(
    store: &Store,
    id: i64,
    params: &EmbedParams,
    progress: super::Progress<'_>,
    live: &dyn Live,
) -> Result<(Array2<f32>, bool), JobError> {
    let key = params.key();
    // The study's size only (one row), not its 100,000 sample records.
    let n = store.facts(id)?.map_or(0, |f| f.n_samples as usize);
    params.check_for(n)?;
    if let Some(blob) = store.cached(id, "embedding", &key)? {
        // A cached blob of another size (a store edited by hand) is recomputed, not trusted.
        if let Some(a) = wire::f32s(&blob).and_then(|v| Array2::from_shape_vec((n, params.dims), v).ok()) {
            return Ok((a, true));
        }
    }
    // The features (2 GB at a million rows of 512) are dropped once reduced.
    let z = super::reduce(features(store, id)?.view(), params, progress)?;
    let live = if n <= LIVE_MAX_ROWS { live } else { &() };
    let y = super::lay_out(z.view(), params, progress, live)?;
    store.cache(id, "embedding", &key, &wire::f32_bytes(y.iter().copied()))?;
    Ok((y, false))
}

/// The study's clustering for `params`, from the cache or computed (and cached).
pub fn clustering(
    store: &Store,
    id: i64,
    params: &ClusterParams,
    progress: super::Progress<'_>,
) -> Result<(Clustering, bool), JobError> {
    let key = params.key();
    if let Some(blob) = store.cached(id, "clustering", &key)? {
        if let Ok(c) = serde_json::from_slice(&blob) {
            return Ok((c, true));
        }
    }
    let samples = store.samples(id)?;
    let scores = store.scores(id)?;
    params.check_for(samples.len(), &scores.keys().cloned().collect::<Vec<_>>())?;
    let confidence = &scores[&params.csf];
    let space = match &params.space {
        Space::Pca { dims } => {
            let x = features(store, id)?;
            super::check_finite(x.view())?;
            super::step(progress, "pca", 0.0)?;
            super::pca(x.view(), *dims)?
        }
        Space::Embedding(p) => embedding(store, id, p, progress, &())?.0,
    };
    let labels: Vec<i64> = samples.iter().map(|s| s.label).collect();
    let predicted: Vec<i64> = samples.iter().map(|s| s.predicted).collect();
    let dataset_idx: Vec<i64> = samples.iter().map(|s| s.dataset_idx).collect();
    let s = Samples {
        labels: &labels,
        predicted: &predicted,
        dataset_idx: &dataset_idx,
        confidence,
    };
    super::step(progress, "clustering", 0.0)?;
    let threshold = cluster::coverage_threshold(&s, params.coverage);
    let assignment = cluster::assign(space.view(), &s, &params.method, params.seed, threshold)?;
    let result = cluster::summarise(space.view(), assignment, &s, &params.csf, threshold);
    super::step(progress, "clustering", 1.0)?;
    store.cache(
        id,
        "clustering",
        &key,
        &serde_json::to_vec(&result).expect("plain fields serialise"),
    )?;
    Ok((result, false))
}

struct Job {
    study: i64,
    work: Work,
    stage: Mutex<String>,
    fraction: AtomicU64,
    /// Set by [`Jobs::cancel`]; the work stops at its next progress step.
    cancel: AtomicBool,
    /// The outcome and when it came.
    outcome: Mutex<Option<(Result<(), JobFailure>, Instant)>>,
    /// The latest intermediate layout and when it came.
    live: Mutex<Option<(Arc<LiveLayout>, Instant)>>,
}

/// Time between two intermediate layouts of a job.
const LIVE_EVERY: Duration = Duration::from_millis(250);

/// A job's intermediate layouts: the latest is kept, one per [`LIVE_EVERY`].
impl Live for Job {
    fn due(&self) -> bool {
        lock(&self.live)
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() >= LIVE_EVERY)
    }

    fn show(&self, coords: Vec<f32>, dims: usize) {
        // Only the optimising thread writes, so the version read here is the latest.
        let version = lock(&self.live).as_ref().map_or(1, |(l, _)| l.version + 1);
        let layout = Arc::new(LiveLayout::encode(version, &coords, dims));
        *lock(&self.live) = Some((layout, Instant::now()));
    }
}

/// How long a finished job's status stays available.
const KEEP_FINISHED: Duration = Duration::from_secs(15 * 60);

/// Slots for the jobs computing at once: at most one per core, so that a burst of requests queues
/// instead of dividing the cores among ever more threads.
#[derive(Default)]
struct Slots {
    busy: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    /// Waits for a free slot (at most `max` busy); `false` when `stop()` became true meanwhile.
    fn acquire(&self, max: usize, stop: impl Fn() -> bool) -> bool {
        let mut busy = lock(&self.busy);
        while *busy >= max {
            if stop() {
                return false;
            }
            busy = self
                .freed
                .wait_timeout(busy, Duration::from_millis(200))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        *busy += 1;
        true
    }

    fn release(&self) {
        *lock(&self.busy) -= 1;
        self.freed.notify_one();
    }
}

/// How much lower than the server's the scheduling priority of the threads computing jobs is (in
/// nice steps), so that a t-SNE running on a 2-core server takes the CPU the requests leave, not
/// half of it.
const JOB_NICE_STEPS: i32 = 10;

/// The threads jobs compute on (their rayon pool, one thread per core), [`JOB_NICE_STEPS`] below the
/// server's priority; `None` when no thread could be started (the work then runs on the global
/// pool).
pub fn background_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| pool("failscope-job", lower_priority)).as_ref()
}

/// The threads of work nobody waits for — `http::samples` reading a study's features ahead of its
/// first query and building its neighbour index — scheduled only when the CPU would otherwise be
/// idle (Linux `SCHED_IDLE`; elsewhere like [`background_pool`]'s): on a 2-core server it then
/// takes nothing from the requests or from a browser drawing on the same machine.
pub fn idle_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| pool("failscope-idle", idle_priority)).as_ref()
}

/// A rayon pool of one thread per core, each started by `start`.
fn pool(name: &'static str, start: fn()) -> Option<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .thread_name(move |i| format!("{name}-{i}"))
        .start_handler(move |_| start())
        .build()
        .map_err(|e| tracing::warn!("no {name} thread pool ({e}); its work runs at normal priority"))
        .ok()
}

/// Puts the calling thread in Linux's `SCHED_IDLE` class (run only when no other thread wants the
/// CPU); elsewhere [`lower_priority`].
fn idle_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` lives across the call; `pid = 0` is the calling thread.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
            tracing::warn!("could not make a background thread idle-priority; lowering it instead");
            lower_priority();
        }
    }
    #[cfg(not(target_os = "linux"))]
    lower_priority();
}

/// Lowers the calling thread's scheduling priority by [`JOB_NICE_STEPS`] (to 19 at most). On Linux
/// the nice value is a thread's own (setpriority(2), "BUGS"), so this leaves the request threads as
/// they are.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: getpriority and setpriority only read their integer arguments; `who = 0` is the
    // calling thread.
    let failed = unsafe {
        let now = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(libc::PRIO_PROCESS, 0, (now + JOB_NICE_STEPS).min(19))
    } != 0;
    #[cfg(not(target_os = "linux"))]
    let failed = false;
    if failed {
        tracing::warn!("could not lower a job thread's priority");
    }
}

/// Background latent-space jobs over one store file (each job opens its own connection).
#[derive(Clone, Default)]
pub struct Jobs {
    db: PathBuf,
    jobs: Arc<Mutex<HashMap<u64, Arc<Job>>>>,
    slots: Arc<Slots>,
}

/// A job's work: computes and caches a result in the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// [`embedding`].
    Embed(EmbedParams),
    /// [`clustering`].
    Cluster(ClusterParams),
}

impl Work {
    /// The kind and cache key its result is stored under.
    fn cache_key(&self) -> (&'static str, String) {
        match self {
            Work::Embed(p) => ("embedding", p.key()),
            Work::Cluster(p) => ("clustering", p.key()),
        }
    }

    /// The work a job record names; `None` for a record this version cannot read.
    fn from_record(kind: &str, params: &str) -> Option<Self> {
        match kind {
            "embedding" => serde_json::from_str(params).ok().map(Work::Embed),
            "clustering" => serde_json::from_str(params).ok().map(Work::Cluster),
            _ => None,
        }
    }

    /// Whether its result is in the store already (reading it back computes nothing).
    pub fn is_cached(&self, store: &Store, id: i64) -> Result<bool, StoreError> {
        let (kind, key) = self.cache_key();
        store.is_cached(id, kind, &key)
    }
}

/// A job as [`Jobs::find`] answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Its study.
    pub study: i64,
    /// Its work.
    pub work: Work,
    /// Where it stands.
    pub status: JobStatus,
}

/// What an interrupted job's record says.
fn interrupted() -> JobFailure {
    JobFailure {
        kind: FailureKind::Interrupted,
        message: "the server stopped while this job ran: start it again".into(),
    }
}

impl Jobs {
    /// Jobs on the store at `db`, whose every job still recorded as running was interrupted by
    /// the last stop (one server per store file): those are marked failed.
    pub fn new(store: &Store, db: PathBuf) -> Result<Self, StoreError> {
        let failure = serde_json::to_string(&interrupted()).expect("plain fields serialise");
        let n = store.interrupt_jobs(&failure)?;
        if n > 0 {
            tracing::warn!(jobs = n, "jobs interrupted by the last stop are marked failed");
        }
        Ok(Self { db, ..Self::default() })
    }

    /// Starts `work` on study `id` on a new thread and records it in `store`; returns the job id.
    /// The same work on the same study while it still runs is not started twice: its running
    /// job's id is returned.
    pub fn start(&self, store: &Store, id: i64, work: Work) -> Result<u64, StoreError> {
        // One lock for the check and the insert, so two identical requests cannot both start.
        let mut jobs = lock(&self.jobs);
        // Finished jobs are forgotten after a while (their results stay cached in the store).
        jobs.retain(|_, j| {
            lock(&j.outcome)
                .as_ref()
                .is_none_or(|(_, at)| at.elapsed() < KEEP_FINISHED)
        });
        let running = jobs.iter().find(|(_, j)| {
            j.study == id && j.work == work && !j.cancel.load(Ordering::Relaxed) && lock(&j.outcome).is_none()
        });
        if let Some((job_id, _)) = running {
            return Ok(*job_id);
        }
        let (kind, key) = work.cache_key();
        let job_id = store.begin_job(id, kind, &key)? as u64;
        let job = Arc::new(Job {
            study: id,
            work,
            stage: Mutex::new("queued".into()),
            fraction: AtomicU64::new(0f64.to_bits()),
            cancel: AtomicBool::new(false),
            outcome: Mutex::new(None),
            live: Mutex::new(None),
        });
        jobs.insert(job_id, job.clone());
        drop(jobs);
        let db = self.db.clone();
        let slots = self.slots.clone();
        let max = std::thread::available_parallelism().map_or(1, usize::from);
        std::thread::spawn(move || {
            let cancelled = || job.cancel.load(Ordering::Relaxed);
            if !slots.acquire(max, cancelled) {
                let result = Err(JobError::Cancelled.failure());
                record(&db, job_id, &result);
                *lock(&job.outcome) = Some((result, Instant::now()));
                return;
            }
            let report = |stage: &str, f: f64| {
                *lock(&job.stage) = stage.to_string();
                job.fraction.store(f.to_bits(), Ordering::Relaxed);
                if cancelled() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            };
            let run = || {
                Store::open(&db)
                    .map_err(JobError::from)
                    .and_then(|store| match &job.work {
                        Work::Embed(p) => embedding(&store, id, p, &report, job.as_ref()).map(|_| ()),
                        Work::Cluster(p) => clustering(&store, id, p, &report).map(|_| ()),
                    })
                    .map_err(|e| e.failure())
            };
            // A panic in a library (linfa, ndarray) fails the job instead of leaving it running forever.
            let run = std::panic::AssertUnwindSafe(run);
            let caught = || std::panic::catch_unwind(run);
            let caught = match background_pool() {
                Some(pool) => pool.install(caught),
                None => caught(),
            };
            let result = caught.unwrap_or_else(|_| {
                tracing::error!(job = job_id, "latent job panicked");
                Err(JobFailure {
                    kind: FailureKind::Internal,
                    message: "internal error".into(),
                })
            });
            slots.release();
            record(&db, job_id, &result);
            *lock(&job.outcome) = Some((result, Instant::now()));
        });
        Ok(job_id)
    }

    /// Job `job_id` from memory or, once forgotten or from before a restart, from its record in
    /// `store`; `None` for an unknown id.
    pub fn find(&self, store: &Store, job_id: u64) -> Result<Option<Found>, StoreError> {
        if let (Some((study, work)), Some(status)) = (self.work(job_id), self.status(job_id)) {
            return Ok(Some(Found { study, work, status }));
        }
        let Some(rec) = store.job(job_id as i64)? else {
            return Ok(None);
        };
        let Some(work) = Work::from_record(&rec.kind, &rec.params) else {
            return Ok(None);
        };
        let failure = match rec.failure.as_deref().map(serde_json::from_str::<JobFailure>) {
            Some(Ok(f)) => Some(f),
            // A record that names no failure but did not finish well is reported as interrupted.
            Some(Err(_)) | None if rec.state != "done" => Some(interrupted()),
            _ => None,
        };
        Ok(Some(Found {
            study: rec.study,
            work,
            status: finished(failure),
        }))
    }

    /// Asks job `job_id` to stop at its next progress step (a queued job never starts); answers its
    /// status, or `None` for an unknown id. A finished job stays as it finished.
    pub fn cancel(&self, job_id: u64) -> Option<JobStatus> {
        let job = lock(&self.jobs).get(&job_id)?.clone();
        job.cancel.store(true, Ordering::Relaxed);
        self.status(job_id)
    }

    /// A running or finished job's latest intermediate layout; `None` for an unknown id or before
    /// the first.
    pub fn live(&self, job_id: u64) -> Option<Arc<LiveLayout>> {
        let job = lock(&self.jobs).get(&job_id)?.clone();
        let live = lock(&job.live);
        live.as_ref().map(|(l, _)| l.clone())
    }

    /// A job's study and work, or `None` for an unknown id.
    pub fn work(&self, job_id: u64) -> Option<(i64, Work)> {
        let jobs = lock(&self.jobs);
        jobs.get(&job_id).map(|j| (j.study, j.work.clone()))
    }

    /// A job's status, or `None` for an unknown id.
    pub fn status(&self, job_id: u64) -> Option<JobStatus> {
        let job = lock(&self.jobs).get(&job_id)?.clone();
        let outcome = lock(&job.outcome).as_ref().map(|(o, _)| o.clone());
        Some(match outcome {
            None => JobStatus {
                stage: lock(&job.stage).clone(),
                fraction: f64::from_bits(job.fraction.load(Ordering::Relaxed)),
                finished: false,
                error: None,
            },
            Some(Ok(())) => finished(None),
            Some(Err(e)) => finished(Some(e)),
        })
    }
}

/// A finished job's status: done, or failed as `failure` says.
fn finished(failure: Option<JobFailure>) -> JobStatus {
    JobStatus {
        stage: end_stage(failure.as_ref()).into(),
        fraction: 1.0,
        finished: true,
        error: failure,
    }
}

/// How a job ended, as its status's stage and its record's state: done, cancelled or failed.
fn end_stage(failure: Option<&JobFailure>) -> &'static str {
    match failure {
        None => "done",
        Some(e) if e.kind == FailureKind::Cancelled => "cancelled",
        Some(_) => "failed",
    }
}

/// Records how job `job_id` ended in the store at `db` (a failure to is logged: the job's status
/// stays right in memory while the server runs).
fn record(db: &std::path::Path, job_id: u64, result: &Result<(), JobFailure>) {
    let failure = result.as_ref().err();
    let state = end_stage(failure);
    let failure = failure.map(|e| serde_json::to_string(e).expect("plain fields serialise"));
    if let Err(e) = Store::open(db).and_then(|s| s.end_job(job_id as i64, state, failure.as_deref())) {
        tracing::error!(job = job_id, error = %e, "could not record how the job ended");
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn jobs_compute_below_the_request_threads_priority() {
        // SAFETY: getpriority reads its integer arguments only.
        let nice = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let here = nice();
        let pool = super::background_pool().expect("a job pool");
        let (outer, inner) = pool.install(|| {
            let inner = rayon::join(nice, nice);
            (nice(), inner)
        });
        let low = (here + super::JOB_NICE_STEPS).min(19);
        assert_eq!((outer, inner), (low, (low, low)));
        assert_eq!(nice(), here, "the calling thread keeps its priority");
    }
}
