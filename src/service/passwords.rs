//! The password pool: every argon2 hash and check of the server runs on a few dedicated
//! threads (one per core by default), behind a short queue. Each check holds its argon2
//! memory (`auth::PASSWORD_M_COST_KIB`) while it runs, so this bounds the memory sign-in
//! can take — `workers` × that — however many requests arrive; past the queue a request
//! is refused at once (503 with `Retry-After`) before any database or hashing work.
//!
//! Dedicated threads rather than `spawn_blocking`: the blocking pool grows to hundreds
//! of threads under a flood, and the allocator keeps a freed argon2 block per thread it
//! ran on, which is how 64 parallel sign-ins once left 1.5 GB resident.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::auth;
use crate::error::{AppError, AppResult, ErrorCode};

/// A job gets the worker's argon2 memory (allocated once per worker, see
/// `auth::PasswordMemory`).
type Job = Box<dyn FnOnce(&mut auth::PasswordMemory) + Send>;

/// Seconds a refused request is told to wait: a check takes tens of milliseconds, so
/// the queue is empty again well within one.
const BUSY_RETRY_AFTER_SECS: i64 = 1;

pub struct PasswordPool {
    /// Queued plus running checks; a request holds one permit from admission until its
    /// check is done.
    admission: Arc<Semaphore>,
    jobs: Mutex<mpsc::Sender<Job>>,
    pub workers: usize,
    pub queue: usize,
}

/// A place in the pool, taken before any work on a sign-in.
pub struct Ticket {
    permit: OwnedSemaphorePermit,
    jobs: mpsc::Sender<Job>,
}

/// The result of checking a password.
#[derive(Debug, Clone)]
pub struct Checked {
    pub ok: bool,
    /// A new hash of the password with today's parameters, when it was right and its
    /// stored hash used older ones.
    pub rehashed: Option<String>,
}

/// `workers` = 0 means one per core (at most 4: more would only add memory, the
/// machines this runs on have 2–4 cores).
pub fn worker_count(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1)
        .clamp(1, 4)
}

impl PasswordPool {
    pub fn new(workers: usize, queue: usize) -> PasswordPool {
        let workers = worker_count(workers);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || {
                    let mut memory = auth::password_memory();
                    loop {
                        // The lock is held only to take the next job, not while it runs.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            // The pool is gone (server stopped): the thread ends.
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password worker");
            }
        }
        PasswordPool {
            admission: Arc::new(Semaphore::new(workers + queue)),
            jobs: Mutex::new(tx),
            workers,
            queue,
        }
    }

    /// A place in the pool, or 503 with `Retry-After` when the workers and the queue are
    /// all taken.
    pub fn try_admit(&self) -> AppResult<Ticket> {
        let permit = self.admission.clone().try_acquire_owned().map_err(|_| {
            crate::metrics::signin_outcome("busy");
            busy()
        })?;
        let jobs = self
            .jobs
            .lock()
            .map_err(|_| AppError::internal("password pool lock"))?
            .clone();
        Ok(Ticket { permit, jobs })
    }

    /// Waits for a place (for hashing new passwords from the console: rare, and an
    /// owner's action should not fail because sign-ins are busy).
    pub async fn admit(&self) -> AppResult<Ticket> {
        let permit = self
            .admission
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::internal("password pool closed"))?;
        let jobs = self
            .jobs
            .lock()
            .map_err(|_| AppError::internal("password pool lock"))?
            .clone();
        Ok(Ticket { permit, jobs })
    }

    /// Hashes a new password on the pool.
    pub async fn hash(&self, password: String) -> AppResult<String> {
        self.admit()
            .await?
            .run(move |memory| auth::hash_password_in(memory, &password))
            .await?
            .map_err(AppError::Internal)
    }
}

fn busy() -> AppError {
    AppError::msg(
        ErrorCode::Unavailable,
        "Too many sign-ins at once; try again in a second.",
    )
    .with_details(json!({ "retry_after_secs": BUSY_RETRY_AFTER_SECS }))
}

impl Ticket {
    /// Checks `password` against `hash`, or against the dummy hash when there is none
    /// (an unknown username costs the same as a real one).
    pub async fn verify(self, password: String, hash: Option<String>) -> AppResult<Checked> {
        self.run(move |memory| {
            crate::metrics::password_check();
            let phc: &str = match &hash {
                Some(h) => h,
                None => auth::dummy_hash(),
            };
            let ok = auth::verify_password_in(memory, &password, phc);
            let rehashed = (ok && hash.is_some() && auth::needs_rehash(phc))
                .then(|| auth::hash_password_in(memory, &password).ok())
                .flatten();
            Checked { ok, rehashed }
        })
        .await
    }

    /// Runs `f` on a worker. The place is given back when `f` is done, even if the
    /// caller has gone (a dropped request does not free memory that is still in use).
    async fn run<T: Send + 'static>(
        self,
        f: impl FnOnce(&mut auth::PasswordMemory) -> T + Send + 'static,
    ) -> AppResult<T> {
        let (tx, rx) = oneshot::channel();
        let permit = self.permit;
        self.jobs
            .send(Box::new(move |memory: &mut auth::PasswordMemory| {
                let out = f(memory);
                drop(permit);
                let _ = tx.send(out);
            }))
            .map_err(|_| AppError::internal("password pool stopped"))?;
        rx.await
            .map_err(|_| AppError::internal("a password worker failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_workers_and_the_queue_the_pool_refuses_at_once() {
        let pool = PasswordPool::new(1, 2);
        let held: Vec<Ticket> = (0..3).map(|_| pool.try_admit().unwrap()).collect();
        let err = pool.try_admit().err().unwrap();
        assert_eq!(err.code(), ErrorCode::Unavailable);
        assert_eq!(err.body()["error"]["details"]["retry_after_secs"], 1);
        drop(held);
        let ticket = pool.try_admit().unwrap();
        let hash = auth::hash_password("pool password").unwrap();
        let checked = ticket
            .verify("pool password".into(), Some(hash))
            .await
            .unwrap();
        assert!(checked.ok);
        assert!(checked.rehashed.is_none());
        let checked = pool
            .try_admit()
            .unwrap()
            .verify("pool password".into(), None)
            .await
            .unwrap();
        assert!(!checked.ok);
    }

    #[test]
    fn zero_workers_means_one_per_core_at_most_four() {
        assert!((1..=4).contains(&worker_count(0)));
        assert_eq!(worker_count(7), 7);
    }
}
