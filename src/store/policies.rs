//! Folder policies set through the admin API: the policy file in the store, and the cached
//! policy set every request resolves against (config rules and API rules together).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use object_store::PutPayload;
use object_store::path::Path as Key;
use serde::{Deserialize, Serialize};

use super::backend::{Versioned, conflict_or, put_options, retry_conflicts};
use super::keys::POLICIES_KEY;
use super::{Store, StoreError};
use crate::policy::{CachePolicy, PolicySet};

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct PolicyFile {
    #[serde(default)]
    folders: BTreeMap<String, CachePolicy>,
    /// Folders served only through signed links.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    signed: std::collections::BTreeSet<String>,
}

pub(super) struct CachedPolicies {
    pub(super) set: Arc<PolicySet>,
    pub(super) loaded: Instant,
}

impl Store {
    async fn load_policy_file(&self) -> Result<Versioned<PolicyFile>, StoreError> {
        let got = self.load_json(&Key::from(POLICIES_KEY)).await?;
        Ok(Versioned {
            value: got.value.unwrap_or_default(),
            expect: got.expect,
        })
    }

    fn install_policies(&self, file: PolicyFile) -> Arc<PolicySet> {
        let mut cached = self.inner.policies.lock().expect("policy cache");
        let set = Arc::new(PolicySet {
            api: file.folders,
            signed_api: file.signed,
            ..(*cached.set).clone()
        });
        cached.set = Arc::clone(&set);
        cached.loaded = Instant::now();
        set
    }

    /// The current policy set. Rules set through another instance show within the cache TTL;
    /// if the store cannot be read, the last known rules keep applying.
    ///
    /// The refresh is single-flight: of the requests that find the rules expired, one reads
    /// the policy file and the others wait for it and take what it read.
    pub async fn policies(&self) -> Arc<PolicySet> {
        if let Some(fresh) = self.fresh_policies() {
            return fresh;
        }
        // With the cache off there is nothing to share: every request reads.
        let refreshing = match self.inner.cache_ttl.is_zero() {
            true => None,
            false => Some(self.inner.policy_refresh.lock().await),
        };
        if refreshing.is_some()
            && let Some(fresh) = self.fresh_policies()
        {
            return fresh;
        }
        let timer = self.timer(crate::metrics::StorageOp::PoliciesRead);
        let loaded = self.load_policy_file().await;
        drop(timer);
        match loaded {
            Ok(file) => self.install_policies(file.value),
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh folder policies; keeping the last known");
                Arc::clone(&self.inner.policies.lock().expect("policy cache").set)
            }
        }
    }

    /// The cached rules while they are within the cache TTL.
    fn fresh_policies(&self) -> Option<Arc<PolicySet>> {
        let cached = self.inner.policies.lock().expect("policy cache");
        (cached.loaded.elapsed() <= self.inner.cache_ttl).then(|| Arc::clone(&cached.set))
    }

    /// Set (`Some`) or remove (`None`) the API rule for `folder`. Returns whether a rule existed
    /// before.
    pub async fn set_folder_policy(
        &self,
        folder: &str,
        policy: Option<CachePolicy>,
    ) -> Result<bool, StoreError> {
        self.edit_policy_file(|file| match policy {
            Some(p) => (file.folders.insert(folder.to_owned(), p).is_some(), true),
            None => {
                let existed = file.folders.remove(folder).is_some();
                (existed, existed)
            }
        })
        .await
    }

    /// The folder names that `[signing] folders` marks signed-only.
    pub fn set_signed_config_folders(&self, folders: impl IntoIterator<Item = String>) {
        let mut cached = self.inner.policies.lock().expect("policy cache");
        let set = PolicySet {
            signed_config: folders.into_iter().collect(),
            ..(*cached.set).clone()
        };
        cached.set = Arc::new(set);
    }

    /// Replace what the config file declares (a reload): the default policy, the
    /// `[cache.folders]` rules and the `[signing] folders`, all at once. Rules and signed-only
    /// folders set through the API are stored apart and stay as they are.
    pub fn set_config_policies(
        &self,
        default: CachePolicy,
        rules: BTreeMap<String, CachePolicy>,
        signed_folders: impl IntoIterator<Item = String>,
    ) {
        let mut cached = self.inner.policies.lock().expect("policy cache");
        let set = PolicySet {
            default,
            config: rules,
            signed_config: signed_folders.into_iter().collect(),
            ..(*cached.set).clone()
        };
        cached.set = Arc::new(set);
    }

    /// Mark `folder` as served only through signed links (`true`) or not. Returns whether it
    /// was marked before.
    pub async fn set_folder_signed(&self, folder: &str, signed: bool) -> Result<bool, StoreError> {
        self.edit_policy_file(|file| {
            let was = if signed {
                !file.signed.insert(folder.to_owned())
            } else {
                file.signed.remove(folder)
            };
            (was, was != signed)
        })
        .await
    }

    /// Read-modify-write of the policy file, conditional on its version. `edit` answers what
    /// the caller returns and whether anything changed (nothing is written otherwise).
    async fn edit_policy_file<T: Copy>(
        &self,
        edit: impl Fn(&mut PolicyFile) -> (T, bool),
    ) -> Result<T, StoreError> {
        let _held = self.inner.policy_write.lock().await;
        let edit = &edit;
        retry_conflicts(|| async move {
            let Versioned {
                value: mut file,
                expect,
            } = self.load_policy_file().await?;
            let (answer, changed) = edit(&mut file);
            if changed {
                let json = serde_json::to_vec_pretty(&file).expect("policies always serialise");
                self.inner
                    .objects
                    .put_opts(
                        &Key::from(POLICIES_KEY),
                        PutPayload::from(json),
                        put_options(self.inner.backend.is_shared(), &expect),
                    )
                    .await
                    .map_err(conflict_or)?;
            }
            self.install_policies(file);
            Ok(answer)
        })
        .await
    }
}
