//! Admission control: a fixed number of model requests at once, and an
//! immediate 429 for the next one instead of an unbounded queue.
//!
//! The HTTP library queues every parsed request without a limit, so this
//! counter is the one place where back-pressure happens. A request that
//! needs the model takes a [`Permit`] before it is queued for a compute
//! worker and gives it back when its response is sent.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// `max_inflight` requests are already running.
    MaxInflight(usize),
    /// Every compute worker is busy and the queue in front of them is full.
    QueueFull {
        /// Compute workers.
        workers: usize,
        /// Requests that may wait for a worker.
        queue: usize,
    },
}

/// The count of admitted model requests and its limit.
#[derive(Debug)]
pub struct Admission {
    in_flight: AtomicUsize,
    limit: usize,
    max_inflight: Option<usize>,
    workers: usize,
    queue: usize,
}

impl Admission {
    /// Admits up to `workers + queue` requests at once, or `max_inflight`
    /// when that is smaller.
    pub fn new(workers: usize, queue: usize, max_inflight: Option<usize>) -> Self {
        let capacity = workers.saturating_add(queue);
        let limit = max_inflight.map_or(capacity, |max| max.min(capacity));
        Self {
            in_flight: AtomicUsize::new(0),
            limit,
            max_inflight,
            workers,
            queue,
        }
    }

    /// Takes a permit, or says which limit is reached.
    ///
    /// # Errors
    /// The [`Rejection`] naming the limit.
    pub fn try_admit(self: &Arc<Self>) -> Result<Permit, Rejection> {
        let admitted = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
                (count < self.limit).then_some(count + 1)
            });
        match admitted {
            Ok(_) => Ok(Permit {
                admission: Arc::clone(self),
            }),
            Err(_) => Err(self.rejection()),
        }
    }

    fn rejection(&self) -> Rejection {
        match self.max_inflight {
            Some(max) if max <= self.limit => Rejection::MaxInflight(max),
            _ => Rejection::QueueFull {
                workers: self.workers,
                queue: self.queue,
            },
        }
    }

    /// Requests admitted and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// The most requests admitted at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// True while `max_inflight` is set and reached, when `/_/ready` returns 429.
    pub fn at_max_inflight(&self) -> bool {
        self.max_inflight.is_some_and(|max| self.in_flight() >= max)
    }
}

/// One admitted request; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.admission.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_bounds_admission() {
        let admission = Arc::new(Admission::new(2, 1, None));
        let permits: Vec<Permit> = (0..3).map(|_| admission.try_admit().unwrap()).collect();
        assert_eq!(admission.in_flight(), 3);
        assert_eq!(
            admission.try_admit().unwrap_err(),
            Rejection::QueueFull {
                workers: 2,
                queue: 1
            }
        );
        drop(permits);
        assert_eq!(admission.in_flight(), 0);
        assert!(admission.try_admit().is_ok());
    }

    #[test]
    fn max_inflight_is_the_smaller_limit() {
        let admission = Arc::new(Admission::new(2, 10, Some(1)));
        assert_eq!(admission.limit(), 1);
        assert!(!admission.at_max_inflight());
        let permit = admission.try_admit().unwrap();
        assert!(admission.at_max_inflight());
        assert_eq!(
            admission.try_admit().unwrap_err(),
            Rejection::MaxInflight(1)
        );
        drop(permit);
        assert!(!admission.at_max_inflight());
    }

    #[test]
    fn large_max_inflight_leaves_the_queue_limit() {
        let admission = Arc::new(Admission::new(1, 1, Some(50)));
        assert_eq!(admission.limit(), 2);
        let _first = admission.try_admit().unwrap();
        let _second = admission.try_admit().unwrap();
        assert!(matches!(
            admission.try_admit().unwrap_err(),
            Rejection::QueueFull { .. }
        ));
        assert!(!admission.at_max_inflight());
    }
}
