//! `[cache]`: the `Cache-Control` policy assets get by default and by folder.
//!
//! Its own file because folder names are checked and normalised here with the asset path rules,
//! the same ones the admin API applies to folders it is given.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::asset::path::parse_folder;
use crate::policy::CachePolicy;

/// `[cache]`: the default policy and folder rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Policy for assets no folder rule or override covers.
    pub default: CachePolicy,
    /// Folder rules, e.g. `"promo" = "max-age=3600"`.
    pub folders: BTreeMap<String, CachePolicy>,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            default: CachePolicy::MaxAge(86_400),
            folders: BTreeMap::new(),
        }
    }
}

impl CacheSettings {
    /// Folder names as asset paths have them (`"/promo/"` becomes `promo`).
    pub(super) fn validate(&mut self) -> Result<(), ConfigError> {
        let mut folders = BTreeMap::new();
        for (folder, policy) in &self.folders {
            let clean = parse_folder(folder)
                .map_err(|e| ConfigError::Invalid(format!("[cache.folders] {folder:?}: {e}")))?;
            folders.insert(clean, *policy);
        }
        self.folders = folders;
        Ok(())
    }
}
