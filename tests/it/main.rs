//! The integration tests, as one binary: each module drives the real server (started on port 0
//! in-process, or the built binary) over real sockets, against real local disk and a real S3
//! protocol server. One binary links once instead of once per file, which is most of a cold
//! `cargo test` on a two-core machine; `cargo test --test it <module>::` runs one module.

#[macro_use]
mod common;

mod admin_api;
mod admin_page;
mod admin_page_serving;
mod check_storage;
mod check_url;
mod cli;
mod codecs;
mod convert;
mod corpus;
mod corrupt_storage;
mod crash;
mod deploy;
mod early_answers;
mod graph_fake;
mod hardening;
mod hostile;
mod housekeeping;
mod import;
mod limits;
mod log_pipe;
mod logs;
mod meta_fetcher;
mod openapi;
mod reload;
mod s3;
mod serving;
mod signed_links;
mod slow_clients;
mod uploads;
mod visibility;
mod whatsapp;
mod whatsapp_cli;
