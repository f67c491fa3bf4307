//! `media-origin check-storage`: try a storage configuration end to end.
//!
//! A wrong bucket, key or endpoint otherwise shows only at the first upload, as a 503 with the
//! cause in the log. The check does what the server does (list, write, read back, write
//! conditionally, multipart, list, delete) on a probe key outside the asset layout, and says in
//! plain words what failed. It stops at the first failure, removing its probe.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, PutMode, PutPayload};

use super::{Store, StoreError};
use crate::config::{Backend, StorageSettings};
use crate::policy::CachePolicy;

/// One step of the check and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What was tried.
    pub name: &'static str,
    /// `Err` holds the reason, in plain words.
    pub outcome: Result<(), String>,
}

/// Where the settings point, for the report's first line.
pub fn describe(settings: &StorageSettings) -> String {
    match settings.backend {
        Backend::Local => format!("local directory {}", settings.path.display()),
        Backend::S3 => {
            let mut s = format!(
                "S3 bucket {:?} at {}",
                settings.bucket.as_deref().unwrap_or(""),
                settings.endpoint.as_deref().unwrap_or("AWS")
            );
            if let Some(prefix) = &settings.prefix {
                s.push_str(&format!(", under {prefix}/"));
            }
            s
        }
    }
}

/// Run the check. Every step that ran is in the answer; the last is the failure, if any.
pub async fn check(settings: &StorageSettings) -> Vec<Step> {
    let mut steps = Vec::new();
    let explain = |e: &StoreError| match (settings.backend, e) {
        (Backend::S3, StoreError::Backend(source)) => super::s3::explain(source, settings),
        (_, StoreError::Corrupt { reason, .. }) => reason.clone(),
        _ => e.to_string(),
    };
    let store = match Store::open(settings, CachePolicy::NoCache, BTreeMap::new()) {
        Ok(store) => store,
        Err(e) => {
            steps.push(Step {
                name: "configure the client",
                outcome: Err(explain(&e)),
            });
            return steps;
        }
    };
    let objects = &store.inner.objects;
    let key = Key::from(format!("probe/{}", uuid::Uuid::new_v4()));
    let content = Bytes::from(format!("media-origin storage probe {key}"));
    let mut written = false;

    macro_rules! step {
        ($name:expr, $body:expr) => {{
            let outcome: Result<(), StoreError> = async { $body }.await;
            let failed = outcome.is_err();
            steps.push(Step {
                name: $name,
                outcome: outcome.map_err(|e| explain(&e)),
            });
            if failed {
                if written {
                    let _ = objects.delete(&key).await;
                }
                return steps;
            }
        }};
    }

    let list_name = match settings.backend {
        Backend::Local => "list the storage directory",
        Backend::S3 => "list the bucket",
    };
    step!(list_name, store.check_ready().await);
    step!("write a probe object", {
        objects.put(&key, PutPayload::from(content.clone())).await?;
        written = true;
        Ok(())
    });
    step!("read it back", {
        let got = objects.get(&key).await?.bytes().await?;
        if got == content {
            Ok(())
        } else {
            Err(mismatch(format!(
                "read back {} bytes that differ from the {} written",
                got.len(),
                content.len()
            )))
        }
    });
    if settings.backend == Backend::S3 {
        step!("refuse a conditional write over it", {
            match objects
                .put_opts(
                    &key,
                    PutPayload::from(content.clone()),
                    PutMode::Create.into(),
                )
                .await
            {
                Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(e.into()),
                Ok(_) => Err(mismatch(
                    "the store ignored If-None-Match: instances sharing this bucket could \
                     overwrite each other's writes; use a store with conditional writes"
                        .into(),
                )),
            }
        });
        step!("start and abort a multipart upload", {
            let multipart = store.inner.backend.multipart().expect("S3 has multipart");
            let full = multipart.full_key(&key.child("multipart"));
            let id = multipart.store.create_multipart(&full).await?;
            multipart.store.abort_multipart(&full, &id).await?;
            Ok(())
        });
    }
    step!("list it", {
        let listed: Vec<_> = objects
            .list(Some(&Key::from("probe")))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        if listed.contains(&key) {
            Ok(())
        } else {
            Err(mismatch(
                "the probe object is missing from the listing".into(),
            ))
        }
    });
    step!("delete it", {
        objects.delete(&key).await?;
        written = false;
        Ok(())
    });
    step!("confirm it is gone", {
        match objects.head(&key).await {
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
            Ok(_) => Err(mismatch(
                "the probe object is still there after its delete".into(),
            )),
        }
    });
    steps
}

fn mismatch(reason: String) -> StoreError {
    StoreError::Corrupt {
        key: "probe".into(),
        reason,
    }
}
