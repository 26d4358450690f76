//! Pure container support: the private `/etc` files Docker writes, and container names.

pub mod files;
pub mod names;
