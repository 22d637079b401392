//! One backend server at run time: its configuration of this generation, and the state the
//! proxy keeps of it for as long as it stays in the configuration, across reloads.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use super::admin::AdminState;
use crate::config::ServerSpec;
use crate::health::check::CheckState;
use crate::health::outlier::OutlierState;
use crate::health::Health;

/// What the proxy keeps of a server across reloads (a server stays when its entry keeps its
/// name and the server its `host:port`): its identity, requests in flight, health (passive,
/// active checks, outlier ejection, slow start) and administrative state.
#[derive(Debug)]
pub struct ServerState {
    /// A number no other server of this process had: keys the idle connection pools.
    pub id: u64,
    /// Attempts in progress on it, across all workers (between `acquire` and `release`).
    pub in_flight: AtomicU32,
    /// Its passive health record (users' failures).
    pub health: Health,
    /// Its state as active checks see it (unused without `HealthCheck`).
    pub check: CheckState,
    /// Its outlier record (unused without `OutlierConsecutive5xx`).
    pub outlier: OutlierState,
    /// When its slow-start ramp began (0: not ramping).
    pub ramp_since: AtomicU64,
    /// What an operator set it to.
    pub admin: AdminState,
    /// A reload left the server out of the configuration (requests of the older
    /// configuration may still use it; its idle connections close).
    removed: AtomicBool,
}

impl ServerState {
    /// The state of a server new to the process: up, ready, nothing in flight.
    pub fn new() -> ServerState {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        ServerState {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            in_flight: AtomicU32::new(0),
            health: Health::default(),
            check: CheckState::default(),
            outlier: OutlierState::default(),
            ramp_since: AtomicU64::new(0),
            admin: AdminState::default(),
            removed: AtomicBool::new(false),
        }
    }

    /// Whether a reload left the server out of the configuration.
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }

    /// Marks the server as left out of the configuration by a reload.
    pub fn set_removed(&self) {
        self.removed.store(true, Ordering::Relaxed);
    }
}

impl Default for ServerState {
    fn default() -> ServerState {
        ServerState::new()
    }
}

/// How a TLS server is spoken to: its entry's client configuration (shared, with the
/// entry's session cache) and the name it is greeted with and checked against.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The entry's rustls configuration ([`crate::config::tls::client_config`]).
    pub config: Arc<rustls::ClientConfig>,
    /// SNI and the name its certificate must carry.
    pub name: rustls::pki_types::ServerName<'static>,
}

/// One backend server of one entry, in one generation of the configuration.
#[derive(Debug)]
pub struct Server {
    /// What the configuration says about it.
    pub spec: ServerSpec,
    /// What the proxy keeps of it across reloads.
    pub state: Arc<ServerState>,
    /// For a TLS server, how to speak TLS to it (built with this generation).
    pub tls: Option<ServerTls>,
}

impl Server {
    /// A server new to the process.
    pub fn new(spec: ServerSpec) -> Server {
        Server::with_state(spec, Arc::new(ServerState::new()))
    }

    /// A server that keeps `state` (from the previous generation of the configuration).
    pub fn with_state(spec: ServerSpec, state: Arc<ServerState>) -> Server {
        Server {
            spec,
            state,
            tls: None,
        }
    }
}

/// The state's fields read as the server's own (`server.health`, `server.in_flight`).
impl Deref for Server {
    type Target = ServerState;

    fn deref(&self) -> &ServerState {
        &self.state
    }
}
