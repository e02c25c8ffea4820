//! tekton-spire: non-falsifiable Tekton TaskRun results with SPIRE.
//!
//! This crate holds everything but the verifier core (which is the I/O-free
//! `tekton-spire-verify` crate): the `verify` command's input and output, and, as they
//! land, the signing helper, the SPIRE client and the controller. The binaries in
//! `src/main.rs` and `src/bin/` only parse flags and call in here.
#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod config;
pub mod controller;
pub mod helper;
pub mod spire;
pub mod telemetry;
