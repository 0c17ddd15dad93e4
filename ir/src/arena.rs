//! Append-only arenas with small typed handles (after naga's `Arena<T>` / `Handle<T>`).
//!
//! A handle is an index into one arena; it is stable for the arena's lifetime, prints short
//! (`%12` for values, `@3` for constants) and is what plans refer to. Arenas never remove
//! entries: a pass that drops a node removes it from the graph's body and leaves the slot.

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

/// A typed index into an [`Arena<T>`].
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub struct Handle<T> {
    index: u32,
    #[serde(skip)]
    marker: PhantomData<fn() -> T>,
}

impl<T> Handle<T> {
    /// The handle of the `index`-th entry. Only meaningful for the arena it came from.
    pub const fn from_index(index: usize) -> Self {
        Self { index: index as u32, marker: PhantomData }
    }

    /// Position of the entry in its arena.
    pub const fn index(self) -> usize {
        self.index as usize
    }
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Handle<T> {}
impl<T> PartialEq for Handle<T> {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index
    }
}
impl<T> Eq for Handle<T> {}
impl<T> PartialOrd for Handle<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Handle<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.index.cmp(&other.index)
    }
}
impl<T> std::hash::Hash for Handle<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.index.hash(state)
    }
}
impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.index)
    }
}

/// Storage for `T`s addressed by [`Handle<T>`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct Arena<T> {
    items: Vec<T>,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

impl<T> Arena<T> {
    /// An empty arena.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `value` and returns its handle.
    pub fn append(&mut self, value: T) -> Handle<T> {
        let h = Handle::from_index(self.items.len());
        self.items.push(value);
        h
    }

    /// Number of entries, dead ones included (arenas never shrink).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the arena has no entries at all.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The entry for `h`, or `None` if `h` is out of range (a handle from a corrupt file).
    pub fn try_get(&self, h: Handle<T>) -> Option<&T> {
        self.items.get(h.index())
    }

    /// Whether `h` addresses an entry of this arena.
    pub fn contains(&self, h: Handle<T>) -> bool {
        h.index() < self.items.len()
    }

    /// Every entry with its handle, in handle order (dead entries included).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (Handle<T>, &T)> {
        self.items.iter().enumerate().map(|(i, v)| (Handle::from_index(i), v))
    }
}

impl<T> std::ops::Index<Handle<T>> for Arena<T> {
    type Output = T;
    fn index(&self, h: Handle<T>) -> &T {
        &self.items[h.index()]
    }
}

impl<T> std::ops::IndexMut<Handle<T>> for Arena<T> {
    fn index_mut(&mut self, h: Handle<T>) -> &mut T {
        &mut self.items[h.index()]
    }
}
