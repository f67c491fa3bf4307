//! The shared vocabulary of assets, on the ground floor: what config, the CLI, the HTTP layer,
//! the WhatsApp client and the store all speak of.
//!
//! - [`path`]: [`AssetPath`], the one gate between a URL and a storage key.
//! - [`record`]: [`AssetRecord`], the stored record of one asset path, and the [`MediaId`]s it
//!   keeps.

pub mod path;
pub mod record;

pub use path::{AssetPath, PathError};
pub use record::{AssetRecord, ConvertedFrom, FoundStream, Imported, MediaId};
