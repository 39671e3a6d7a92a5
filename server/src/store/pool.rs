//! A small pool of connections to one store file, so that requests read side by side (SQLite's
//! WAL lets readers proceed while one connection writes; a writer waits for another through the
//! busy timeout) instead of queueing behind one connection.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

use super::{Store, StoreError};
use crate::error::lock;

/// At most `max` open connections to the store at `path`; idle ones are reused.
pub struct Pool {
    path: PathBuf,
    max: usize,
    /// Idle connections, and how many are open in all.
    state: Mutex<(Vec<Store>, usize)>,
    returned: Condvar,
}

impl Pool {
    /// A pool over the store at `path`, starting with `first` (already open, so a store that
    /// cannot be opened fails before the server starts), holding at most `max` connections.
    pub fn new(first: Store, path: PathBuf, max: usize) -> Self {
        Self {
            path,
            max: max.max(1),
            state: Mutex::new((vec![first], 1)),
            returned: Condvar::new(),
        }
    }

    /// An idle connection, a new one while fewer than `max` are open, or the next one returned.
    pub fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let mut state = lock(&self.state);
        loop {
            if let Some(store) = state.0.pop() {
                return Ok(Pooled {
                    pool: self,
                    store: Some(store),
                });
            }
            if state.1 < self.max {
                state.1 += 1;
                drop(state);
                return match Store::open(&self.path) {
                    Ok(store) => Ok(Pooled {
                        pool: self,
                        store: Some(store),
                    }),
                    Err(e) => {
                        lock(&self.state).1 -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            state = self
                .returned
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Connections open now (idle or in use).
    pub fn open_connections(&self) -> usize {
        lock(&self.state).1
    }
}

/// A connection lent by a [`Pool`]; returned to it when dropped.
pub struct Pooled<'a> {
    pool: &'a Pool,
    store: Option<Store>,
}

impl Deref for Pooled<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.store.as_ref().expect("present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            lock(&self.pool.state).0.push(store);
            self.pool.returned.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_reused_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let pool = std::sync::Arc::new(Pool::new(Store::open(&path).unwrap(), path, 2));
        {
            let a = pool.get().unwrap();
            let b = pool.get().unwrap();
            assert!(a.list().unwrap().is_empty() && b.list().unwrap().is_empty());
            assert_eq!(pool.open_connections(), 2);
            // A third request waits until one is returned.
            let p = pool.clone();
            let waiter = std::thread::spawn(move || p.get().map(|s| s.list().unwrap().len()).unwrap());
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiter.is_finished());
            drop(a);
            assert_eq!(waiter.join().unwrap(), 0);
        }
        let _c = pool.get().unwrap();
        assert_eq!(pool.open_connections(), 2);
    }
}
