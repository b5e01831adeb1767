//! State a run holds only while something is in progress.
//!
//! Most runs sit idle waiting on a timer, with no activities, updates, buffered events or
//! request ids; empty maps and vectors still cost their 24–48 bytes inline in every run. A
//! [`Lazy`] costs one pointer while empty, reads as the empty value, and allocates on the first
//! write. [`Lazy::compact`] drops the allocation again once the value is empty, so a run that
//! goes idle returns to pointer size.

use std::ops::{Deref, DerefMut};

/// A value with a shared empty instance to read through while nothing is allocated.
pub(crate) trait Cold: Default + 'static {
    fn empty() -> &'static Self;
    fn is_empty(&self) -> bool;
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Lazy<T>(Option<Box<T>>);

impl<T: Cold> Lazy<T> {
    /// Frees the allocation if the value is empty again.
    pub(crate) fn compact(&mut self) {
        if self.0.as_deref().is_some_and(T::is_empty) {
            self.0 = None;
        }
    }
}

impl<T: Cold> Deref for Lazy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.0 {
            Some(b) => b,
            None => T::empty(),
        }
    }
}

impl<T: Cold> DerefMut for Lazy<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Default::default)
    }
}
