//! rehearse: a load-testing and benchmark harness that rehearses moving
//! PostgreSQL finance tables to hash partitions, against a real estate of
//! primary, replica, PgBouncer and Redis.
//!
//! The modules follow the data: [`lab`] starts the components, [`estate`]
//! says where they are, [`schema`] shapes the database, [`generate`] makes
//! the synthetic estate, [`seed`] loads it, and [`repo`] reads and writes it
//! as the services would. [`driver`] replays scenarios against it, [`report`]
//! charts and gates the results, and [`cutover`] runs the rollout's playbook
//! step by step, or whole under load.

pub mod ab;
pub mod alerts;
pub mod attribution;
pub mod capacity;
pub mod compare;
pub mod cutover;
pub mod day;
pub mod db;
pub mod drill;
pub mod driver;
pub mod error;
pub mod estate;
pub mod exit;
pub mod fsutil;
pub mod generate;
pub mod http;
pub mod interrupt;
pub mod jobs;
pub mod journeys;
pub mod lab;
pub mod labfile;
pub mod merge;
pub mod metrics;
pub mod names;
pub mod output;
pub mod pgbench;
pub mod progress;
pub mod query;
pub mod render;
pub mod replay;
pub mod repo;
pub mod report;
pub mod rollout;
pub mod run;
pub mod scenario;
pub mod schema;
pub mod seed;
#[cfg(feature = "journeys")]
pub mod serve;
pub mod shard;
pub mod stats;
pub mod text;
pub mod tls;
pub mod url;

pub use error::{Error, Result};
