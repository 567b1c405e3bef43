use std::cell::RefCell;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("stored password hash is not a valid PHC string")]
    MalformedHash,
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("the password hashing task did not finish")]
    Interrupted,
}

thread_local! {
    /// The working memory of argon2 on this hashing thread, allocated once and reused: no 19 MiB
    /// allocation (and its page faults) per hash, and no allocator holding freed copies.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// argon2 of `password` and `salt` into an output of `length` bytes, in this thread's memory.
fn compute(argon2: &Argon2<'_>, password: &[u8], salt: Salt<'_>, length: usize) -> Result<Output, PasswordError> {
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_bytes).map_err(|_| PasswordError::MalformedHash)?;
    let blocks = argon2.params().block_count();
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        Output::init_with(length, |out| {
            argon2
                .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
                .map_err(|_| argon2::password_hash::Error::Crypto)
        })
        .map_err(|e| PasswordError::Hashing(e.to_string()))
    })
}

/// argon2id at OWASP's minimum (m = 19 MiB, t = 2, p = 1), on a fixed set of threads of its
/// own, one per allowed concurrent hash: each takes 19 MiB and a core, so a login flood queues
/// rather than exhausting memory or stalling the async runtime. Each thread keeps its 19 MiB of
/// working memory for the next hash: allocated per hash, freed blocks stayed with the allocator
/// (glibc raises its mmap threshold after the first free), and an idle server held ~250 MiB
/// after a burst of sign-ins. The threads run at a lower priority, so that under contention
/// requests that need a few milliseconds of CPU go first, while idle cores still hash at full
/// speed.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    jobs: Sender<Job>,
    checked: Arc<Checked>,
}

/// The passwords a hasher and its clones have checked, and what checking them cost: so that a
/// test can show that an unknown address costs the same work as a wrong password, without
/// measuring time.
#[derive(Default)]
struct Checked {
    count: std::sync::atomic::AtomicU64,
    /// The sum of each check's memory (KiB) times its passes.
    cost: std::sync::atomic::AtomicU64,
}

type Job = Box<dyn FnOnce() + Send>;

/// The length of a new hash's output, argon2's default.
const OUTPUT_BYTES: usize = Params::DEFAULT_OUTPUT_LEN;

/// How much lower than everything else the hashing threads run: on the crate's 0-99 scale,
/// which it maps onto nice values for normal threads; 22 is nice 10.
const HASHING_PRIORITY: u8 = 22;

/// Starts `threads` workers that take jobs until every sender is gone.
fn workers(threads: usize) -> Sender<Job> {
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for n in 0..threads {
        let receiver = receiver.clone();
        let spawned = std::thread::Builder::new().name(format!("mos-hash-{n}")).spawn(move || work(&receiver));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start a password hashing thread");
        }
    }
    sender
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        // The lock is held only while waiting for the next job, never while hashing.
        let next = match jobs.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match next {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

fn lower_priority() {
    use thread_priority::unix::{set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy};
    use thread_priority::{ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy};
    let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
    let lowered = ThreadPriorityValue::try_from(HASHING_PRIORITY).map_err(|e| format!("{e:?}")).and_then(|value| {
        set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Crossplatform(value), policy)
            .map_err(|e| format!("{e:?}"))
    });
    if let Err(e) = lowered {
        tracing::warn!(error = %e, "password hashing runs at normal priority");
    }
}

impl PasswordHasher {
    pub const OWASP_MEMORY_KIB: u32 = 19 * 1024;
    pub const OWASP_ITERATIONS: u32 = 2;

    pub fn new(max_concurrent: usize) -> Self {
        Self::with_params(max_concurrent, Self::OWASP_MEMORY_KIB, Self::OWASP_ITERATIONS)
    }

    /// Other costs, for deployments that raise them; never below OWASP's minimum.
    pub fn with_params(max_concurrent: usize, memory_kib: u32, iterations: u32) -> Self {
        let params =
            Params::new(memory_kib.max(Self::OWASP_MEMORY_KIB), iterations.max(Self::OWASP_ITERATIONS), 1, None)
                .unwrap_or_default();
        Self { params, jobs: workers(max_concurrent.max(1)), checked: Arc::default() }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// The PHC string of `password` with a fresh random salt.
    pub async fn hash(&self, password: SecretString) -> Result<String, PasswordError> {
        let argon2 = self.argon2();
        let params = self.params.clone();
        self.blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            let hashing = |e: argon2::password_hash::Error| PasswordError::Hashing(e.to_string());
            let output = compute(&argon2, password.expose_secret().as_bytes(), salt.as_salt(), OUTPUT_BYTES)?;
            let phc = PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                params: ParamsString::try_from(&params).map_err(hashing)?,
                salt: Some(salt.as_salt()),
                hash: Some(output),
            };
            Ok(phc.to_string())
        })
        .await
    }

    /// Whether `password` matches `phc`. Also says whether the hash was made with other
    /// parameters than today's, so that a successful login can rehash it.
    pub async fn verify(&self, password: SecretString, phc: String) -> Result<Verified, PasswordError> {
        let current = self.params.clone();
        let checked = self.checked.clone();
        self.blocking(move || {
            let parsed = PasswordHash::new(&phc).map_err(|_| PasswordError::MalformedHash)?;
            let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|_| PasswordError::MalformedHash)?;
            let version = parsed
                .version
                .map(Version::try_from)
                .transpose()
                .map_err(|_| PasswordError::MalformedHash)?
                .unwrap_or_default();
            let params = Params::try_from(&parsed).map_err(|_| PasswordError::MalformedHash)?;
            let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
                return Err(PasswordError::MalformedHash);
            };
            let outdated = algorithm != Algorithm::Argon2id
                || params.m_cost() < current.m_cost()
                || params.t_cost() < current.t_cost();
            let cost = u64::from(params.m_cost()) * u64::from(params.t_cost());
            let argon2 = Argon2::new(algorithm, version, params);
            let output = compute(&argon2, password.expose_secret().as_bytes(), salt, expected.len())?;
            checked.count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            checked.cost.fetch_add(cost, std::sync::atomic::Ordering::Relaxed);
            // `Output`'s equality takes the same time wherever the two differ.
            Ok(Verified { ok: output == expected, outdated })
        })
        .await
    }

    /// How many passwords this hasher and its clones have checked so far, and the summed cost
    /// of those checks (KiB of memory times passes).
    pub fn checked_so_far(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.checked.count.load(Relaxed), self.checked.cost.load(Relaxed))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let (done, result) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move || {
            // A request that went away while queued costs nothing more.
            if !done.is_closed() {
                let _ = done.send(span.in_scope(work));
            }
        });
        self.jobs.send(job).map_err(|_| PasswordError::Interrupted)?;
        result.await.map_err(|_| PasswordError::Interrupted)?
    }
}

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// The stored hash is weaker than the current parameters: rehash it now that we have the password.
    pub outdated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = PasswordHasher::new(2);
        let phc = hasher.hash(secret("correct horse battery staple")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(
            hasher.verify(secret("correct horse battery staple"), phc.clone()).await.unwrap(),
            Verified { ok: true, outdated: false }
        );
        assert!(!hasher.verify(secret("correct horse battery stapler"), phc).await.unwrap().ok);
    }

    #[tokio::test]
    async fn hashes_made_with_weaker_parameters_are_flagged_for_rehashing() {
        let stronger = PasswordHasher::with_params(1, 32 * 1024, 3);
        let old = PasswordHasher::new(1).hash(secret("a long enough password")).await.unwrap();
        assert_eq!(
            stronger.verify(secret("a long enough password"), old).await.unwrap(),
            Verified { ok: true, outdated: true }
        );
    }

    #[tokio::test]
    async fn hashes_are_interchangeable_with_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = PasswordHasher::new(1);
        let theirs = Argon2::default()
            .hash_password(b"a long enough password", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(hasher.verify(secret("a long enough password"), theirs.clone()).await.unwrap().ok);
        assert!(!hasher.verify(secret("a long enough passwore"), theirs).await.unwrap().ok);
        let ours = hasher.hash(secret("a long enough password")).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"a long enough password", &parsed).is_ok());
    }

    #[tokio::test]
    async fn hashing_runs_on_its_own_threads_at_a_lower_priority() {
        let hasher = PasswordHasher::new(1);
        hasher.hash(secret("a long enough password")).await.unwrap();
        let nice_values: Vec<i64> = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter(|t| std::fs::read_to_string(t.path().join("comm")).unwrap_or_default().starts_with("mos-hash-"))
            .map(|t| {
                let stat = std::fs::read_to_string(t.path().join("stat")).unwrap();
                // The nice value is field 19; fields after the command name start at 3.
                stat.rsplit_once(')').unwrap().1.split_whitespace().nth(16).unwrap().parse().unwrap()
            })
            .collect();
        assert!(!nice_values.is_empty());
        assert!(nice_values.iter().all(|&n| n == 10), "{nice_values:?}");
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_an_error_not_a_match() {
        let err = PasswordHasher::new(1).verify(secret("x"), "not-a-hash".into()).await.unwrap_err();
        assert!(matches!(err, PasswordError::MalformedHash));
    }
}
