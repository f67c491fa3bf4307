//! `media-origin check-storage`: try a storage configuration end to end.
