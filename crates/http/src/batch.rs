//! Group commit for what arrives often and small (a click, a delivery report): each item waits
//! for its own record to commit, but items that arrive while a transaction is being written go
//! into the next one together. When little arrives, an item is written at once on its own; under
//! load, a transaction, its commit and the per-organization row locks the counts take are paid
//! once for many items (docs/performance.md, "Ingestion").
//!
//! The writing runs on tasks of its own: a caller that goes away (a client that closed its
//! connection) does not take with it the items of the others, nor its own.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::FutureExt;
use mos_domain::OrgId;
use tokio::sync::oneshot;

/// Writes a batch of items; one answer per item, in their order.
pub trait Write: Send + Sync + 'static {
    type Item: Send + 'static;
    type Answer: Send + 'static;

    fn write(&self, items: Vec<Self::Item>) -> impl Future<Output = Vec<Self::Answer>> + Send;
}

/// Items at most in one batch.
const BATCH: usize = 256;
/// Batches being written at once at most: one can be committing while the next is written.
const WRITERS: usize = 2;

/// The items of one kind waiting to be written, and the tasks writing them.
pub struct Batches<W: Write> {
    writer: Arc<W>,
    queue: Arc<Mutex<Queue<W>>>,
}

struct Queue<W: Write> {
    waiting: Vec<(W::Item, oneshot::Sender<W::Answer>)>,
    writers: usize,
}

/// The item was not written: its writer panicked (the panic is logged where it happened) or
/// gave no answer for it.
#[derive(Debug, thiserror::Error)]
#[error("the batch holding this item was not written")]
pub struct Lost;

impl<W: Write> Batches<W> {
    pub fn new(writer: W) -> Self {
        Self { writer: Arc::new(writer), queue: Arc::new(Mutex::new(Queue { waiting: Vec::new(), writers: 0 })) }
    }

    /// Writes `item` with whatever else is waiting, and answers once its batch was written.
    pub async fn submit(&self, item: W::Item) -> Result<W::Answer, Lost> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut queue = lock(&self.queue);
            queue.waiting.push((item, answer));
            let start = queue.writers < WRITERS;
            if start {
                queue.writers += 1;
            }
            start
        };
        if start {
            tokio::spawn(drain(self.writer.clone(), self.queue.clone()));
        }
        answered.await.map_err(|_| Lost)
    }
}

fn lock<W: Write>(queue: &Mutex<Queue<W>>) -> MutexGuard<'_, Queue<W>> {
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes batches until nothing waits. The count of writers is given back under the same lock
/// that finds the queue empty, so an item is never left without a writer; a batch whose writing
/// panicked answers its items [`Lost`] and the task goes on with the next.
async fn drain<W: Write>(writer: Arc<W>, queue: Arc<Mutex<Queue<W>>>) {
    loop {
        let batch: Vec<_> = {
            let mut waiting = lock(&queue);
            let take = waiting.waiting.len().min(BATCH);
            if take == 0 {
                waiting.writers -= 1;
                return;
            }
            waiting.waiting.drain(..take).collect()
        };
        let (items, answers): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let Ok(written) = AssertUnwindSafe(writer.write(items)).catch_unwind().await else { continue };
        for (answer, written) in answers.into_iter().zip(written) {
            // The caller may be gone; what it submitted was written all the same.
            let _ = answer.send(written);
        }
    }
}

/// Writes items of several organizations with `write`: each organization's in one transaction of
/// their own, in their order. When that fails, each of its items is written again on its own, so
/// that an item the database refuses fails alone and the others are kept.
pub async fn by_organization<I: Clone, A, E: From<Lost>, Fut>(
    items: Vec<(OrgId, I)>,
    write: impl Fn(OrgId, Vec<I>) -> Fut,
) -> Vec<Result<A, E>>
where
    Fut: Future<Output = Result<Vec<A>, E>>,
{
    let mut answers: Vec<Option<Result<A, E>>> = items.iter().map(|_| None).collect();
    let mut groups: Vec<(OrgId, Vec<usize>)> = Vec::new();
    for (n, (org, _)) in items.iter().enumerate() {
        match groups.iter_mut().find(|(o, _)| o == org) {
            Some((_, group)) => group.push(n),
            None => groups.push((*org, vec![n])),
        }
    }
    for (org, group) in groups {
        let batch = group.iter().map(|&n| items[n].1.clone()).collect();
        match write(org, batch).await {
            Ok(written) => group.iter().zip(written).for_each(|(&n, a)| answers[n] = Some(Ok(a))),
            Err(e) if group.len() == 1 => answers[group[0]] = Some(Err(e)),
            Err(_) => {
                for n in group {
                    let alone = write(org, vec![items[n].1.clone()]).await;
                    answers[n] = Some(alone.and_then(|mut a| a.pop().ok_or(Lost.into())));
                }
            }
        }
    }
    // A writer that answered fewer items than it was given loses the rest, said so.
    answers.into_iter().map(|a| a.unwrap_or_else(|| Err(Lost.into()))).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Semaphore;

    use super::*;

    /// Answers each item doubled, each batch only once the test lets it through; keeps the size
    /// of every batch. Panics on 13.
    struct Gated {
        gate: Semaphore,
        sizes: Mutex<Vec<usize>>,
    }

    impl Write for Gated {
        type Item = u32;
        type Answer = u32;

        async fn write(&self, items: Vec<u32>) -> Vec<u32> {
            self.gate.acquire().await.expect("the gate stays open").forget();
            self.sizes.lock().expect("not poisoned").push(items.len());
            assert!(!items.contains(&13), "the unlucky item");
            items.into_iter().map(|n| n * 2).collect()
        }
    }

    fn gated() -> Arc<Batches<Gated>> {
        Arc::new(Batches::new(Gated { gate: Semaphore::new(0), sizes: Mutex::new(Vec::new()) }))
    }

    /// Lets the spawned tasks run until the queue is as `until` wants it (they need a few turns,
    /// never thousands).
    async fn settle(batches: &Batches<Gated>, until: impl Fn(&Queue<Gated>) -> bool) {
        for _ in 0..10_000 {
            if until(&lock(&batches.queue)) {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the queue never settled as expected");
    }

    #[tokio::test]
    async fn items_that_arrive_while_batches_are_written_are_written_together_each_with_its_own_answer() {
        let batches = gated();
        let submit = |n: u32| {
            let batches = batches.clone();
            tokio::spawn(async move { batches.submit(n).await })
        };
        // Alone, an item is written at once, by a writer of its own; a second one meanwhile by
        // the second writer.
        let mut answers = vec![submit(0)];
        settle(&batches, |q| q.writers == 1 && q.waiting.is_empty()).await;
        answers.push(submit(1));
        settle(&batches, |q| q.writers == WRITERS && q.waiting.is_empty()).await;
        // Both writers busy: what arrives now waits, and goes in one batch.
        answers.extend((2..12).map(submit));
        settle(&batches, |q| q.waiting.len() == 10).await;
        batches.writer.gate.add_permits(12);
        for (n, answer) in (0..12).zip(answers) {
            assert_eq!(answer.await.expect("the task ends").expect("written"), n * 2);
        }
        let mut sizes = batches.writer.sizes.lock().expect("not poisoned").clone();
        sizes.sort_unstable();
        assert_eq!(sizes, [1, 1, 10]);
        settle(&batches, |q| q.writers == 0).await;
    }

    #[tokio::test]
    async fn a_batch_whose_writing_panics_loses_its_items_and_the_next_are_written() {
        let batches = gated();
        batches.writer.gate.add_permits(2);
        assert!(matches!(batches.submit(13).await, Err(Lost)));
        assert_eq!(batches.submit(4).await.expect("written"), 8);
        settle(&batches, |q| q.writers == 0).await;
    }

    #[tokio::test]
    async fn each_organizations_items_go_in_one_write_and_after_a_refusal_each_alone() {
        let (acme, globex) = (OrgId::new(), OrgId::new());
        let writes = AtomicUsize::new(0);
        let items = vec![(acme, 1), (globex, 2), (acme, 3), (acme, -1), (globex, 5)];
        let answers: Vec<Result<i32, Lost>> = by_organization(items, |_org, group: Vec<i32>| {
            writes.fetch_add(1, Ordering::Relaxed);
            async move {
                match group.iter().any(|n| *n < 0) {
                    true => Err(Lost),
                    false => Ok(group.into_iter().map(|n| n * 10).collect()),
                }
            }
        })
        .await;
        let answers: Vec<Option<i32>> = answers.into_iter().map(Result::ok).collect();
        assert_eq!(answers, [Some(10), Some(20), Some(30), None, Some(50)]);
        // acme's three together (refused), then each of them alone; globex's two together.
        assert_eq!(writes.load(Ordering::Relaxed), 5);
    }
}
