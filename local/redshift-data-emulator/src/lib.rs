//! A local Amazon Redshift Data API backed by PostgreSQL.
//!
//! Module map: [`http`] (awsJson1_1 endpoint + admin routes) → [`operations`] (request
//! validation, responses, [`params`] binding) → [`store`] (statement records) and [`executor`]
//! (runs SQL on PostgreSQL, after [`translate`]) → [`events`] (EventBridge `PutEvents`); [`faults`] holds the
//! test-only fault injection.
//!
//! Without the default feature `server` the crate is only the re-exports of `redshift-sql` (no
//! HTTP server, no PostgreSQL client).

#[cfg(feature = "server")]
pub mod config;
/// The COPY/UNLOAD grammar lives in the `redshift-sql` crate, the one owner of Redshift SQL.
pub use redshift_sql::copy_options;
#[cfg(feature = "server")]
pub mod error;
#[cfg(feature = "server")]
pub mod events;
#[cfg(feature = "server")]
pub mod executor;
#[cfg(feature = "server")]
pub mod faults;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod load;
#[cfg(feature = "server")]
pub mod operations;
#[cfg(feature = "server")]
pub mod params;
#[cfg(feature = "server")]
pub mod s3;
#[cfg(feature = "server")]
pub mod store;
/// The translation lives in the `redshift-sql` crate, the one owner of Redshift SQL.
pub use redshift_sql::translate;
#[cfg(feature = "server")]
pub mod unload;

#[cfg(feature = "server")]
use std::collections::HashMap;
#[cfg(feature = "server")]
use std::net::SocketAddr;
#[cfg(feature = "server")]
use std::sync::{Arc, Mutex, MutexGuard};

#[cfg(feature = "server")]
use tokio::net::TcpListener;
#[cfg(feature = "server")]
use tokio::sync::oneshot;
#[cfg(feature = "server")]
use tokio::task::JoinHandle;

#[cfg(feature = "server")]
pub use config::Config;
#[cfg(feature = "server")]
use events::EventPublisher;
#[cfg(feature = "server")]
use faults::{ActiveFaults, FaultSet, Faults, FaultsError};
#[cfg(feature = "server")]
use store::Store;

/// Shared state of one emulator instance.
#[cfg(feature = "server")]
pub struct AppState {
    pub config: Config,
    pub pg_config: tokio_postgres::Config,
    pub store: Store,
    pub events: EventPublisher,
    /// The local S3 COPY reads and UNLOAD writes (`--s3-endpoint`); `None`: they fail with a
    /// named error.
    pub s3: Option<s3::S3>,
    faults: Mutex<ActiveFaults>,
    /// The submissions whose answer a `hold_response` fault holds, by statement id, each with the
    /// signal `POST /_emulator/release` gives.
    held_answers: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
    /// Set once the Redshift compatibility SQL is installed (`executor::install_compat`).
    compat_installed: tokio::sync::OnceCell<()>,
}

#[cfg(feature = "server")]
impl AppState {
    fn active_faults(&self) -> MutexGuard<'_, ActiveFaults> {
        self.faults
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The installed fault set, as posted (a single object or rules).
    pub fn faults(&self) -> FaultSet {
        self.active_faults().faults().clone()
    }

    /// The faults for one new statement (spends one use of a limited response fault).
    pub fn faults_for_submission(&self, statement_name: Option<&str>) -> Faults {
        self.active_faults().for_submission(statement_name)
    }

    /// Sends PostgreSQL a cancel request for every statement still running (at shutdown, so no
    /// query outlives the emulator).
    pub async fn cancel_running(&self) {
        let tokens: Vec<tokio_postgres::CancelToken> = {
            let mut store = self.store.lock();
            store
                .values_mut()
                .filter(|st| !st.status.is_terminal())
                .filter_map(|st| {
                    st.abort_requested = true;
                    st.cancel_notify.notify_one();
                    st.cancel_token.clone()
                })
                .collect()
        };
        for token in tokens {
            if let Err(error) = token.cancel_query(tokio_postgres::NoTls).await {
                tracing::warn!(%error, "cancel at shutdown failed");
            }
        }
    }

    fn held_answers(&self) -> MutexGuard<'_, HashMap<String, Arc<tokio::sync::Notify>>> {
        self.held_answers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts holding the answer to statement `id`'s submission, before the statement runs, so
    /// that a release from now on is kept ([`AppState::release_answer`]). The answer is held until
    /// [`HeldAnswer::released_within`] returns or the guard is dropped (an error path).
    pub fn hold_answer(self: &Arc<Self>, id: &str) -> HeldAnswer {
        let signal = Arc::new(tokio::sync::Notify::new());
        self.held_answers()
            .insert(id.to_owned(), Arc::clone(&signal));
        HeldAnswer {
            state: Arc::clone(self),
            id: id.to_owned(),
            signal,
        }
    }

    /// Lets a held answer go out (`POST /_emulator/release`); false when none of `id` is held.
    pub fn release_answer(&self, id: &str) -> bool {
        match self.held_answers().get(id) {
            Some(signal) => {
                // a permit is stored if the holder is not waiting yet, so no release is lost
                signal.notify_one();
                true
            }
            None => false,
        }
    }

    /// Replaces the fault set (and restarts the count of `response_fault_times`).
    pub fn set_faults(&self, faults: impl Into<FaultSet>) -> Result<(), FaultsError> {
        let faults = faults.into();
        faults.validate()?;
        *self.active_faults() = ActiveFaults::new(faults);
        Ok(())
    }
}

/// A submission's answer held by a `hold_response` fault ([`AppState::hold_answer`]); no longer
/// held once dropped.
#[cfg(feature = "server")]
pub struct HeldAnswer {
    state: Arc<AppState>,
    id: String,
    signal: Arc<tokio::sync::Notify>,
}

#[cfg(feature = "server")]
impl HeldAnswer {
    /// Waits until the answer is released or `bound` runs out; true when it was released.
    pub async fn released_within(self, bound: std::time::Duration) -> bool {
        tokio::time::timeout(bound, self.signal.notified())
            .await
            .is_ok()
    }
}

#[cfg(feature = "server")]
impl Drop for HeldAnswer {
    fn drop(&mut self) {
        self.state.held_answers().remove(&self.id);
    }
}

#[cfg(feature = "server")]
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid database URL: {0}")]
    DatabaseUrl(#[source] tokio_postgres::Error),
    #[error("cannot reach PostgreSQL at the database URL: {0}")]
    Database(#[source] tokio_postgres::Error),
    #[error("invalid fault set: {0}")]
    Faults(#[from] FaultsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running emulator. Dropping it does not stop the server; call [`Emulator::shutdown`].
#[cfg(feature = "server")]
pub struct Emulator {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
}

#[cfg(feature = "server")]
impl Emulator {
    /// `http://127.0.0.1:<port>`, the value for `AWS_ENDPOINT_URL_REDSHIFT_DATA`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests, cancels running statements and waits for the server task.
    pub async fn shutdown(mut self) {
        self.state.cancel_running().await;
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Err(error) = (&mut self.server).await {
            tracing::warn!(%error, "server task ended abnormally");
        }
    }

    /// Waits until the server task ends.
    pub async fn wait(self) {
        if let Err(error) = self.server.await {
            tracing::warn!(%error, "server task ended abnormally");
        }
    }
}

/// Checks the database, binds the listener and serves in a background task.
#[cfg(feature = "server")]
pub async fn start(config: Config) -> Result<Emulator, StartError> {
    config.faults.validate()?;
    let pg_config: tokio_postgres::Config = config
        .database_url
        .parse()
        .map_err(StartError::DatabaseUrl)?;
    let (client, connection) = pg_config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(StartError::Database)?;
    let conn_task = tokio::spawn(connection);
    let version = client
        .simple_query("show server_version")
        .await
        .map_err(StartError::Database)?
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default();
    // Redshift's load error tables exist before the first load (COPY writes them).
    if let Err(error) = load::ensure_error_tables(&client).await {
        tracing::warn!(error = ?error.as_db_error().map(|e| e.message()), "cannot create stl_load_errors / sys_load_error_detail");
    }
    drop(client);
    let _ = conn_task.await;
    tracing::info!(postgres_version = %version, "PostgreSQL reachable");

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;

    if !config.faults.is_off() {
        tracing::warn!(faults = ?config.faults, "fault injection is ON");
    }
    match &config.eventbridge_endpoint {
        Some(e) => tracing::info!(eventbridge_endpoint = %e, "events go to EventBridge"),
        None => tracing::info!("no EventBridge endpoint: WithEvent=true events are not sent"),
    }
    match &config.s3_endpoint {
        Some(e) => tracing::info!(s3_endpoint = %e, "COPY and UNLOAD use this S3"),
        None => tracing::info!("no S3 endpoint: COPY and UNLOAD fail until --s3-endpoint is given"),
    }
    let state = Arc::new(AppState {
        s3: config
            .s3_endpoint
            .as_deref()
            .map(|e| s3::S3::new(e, &config.region)),
        events: EventPublisher::new(
            config.eventbridge_endpoint.clone(),
            config.region.clone(),
            config.event_bus.clone(),
        ),
        faults: Mutex::new(ActiveFaults::new(config.faults.clone())),
        held_answers: Mutex::new(HashMap::new()),
        compat_installed: tokio::sync::OnceCell::new(),
        store: Store::new(),
        pg_config,
        config,
    });
    let app = http::router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(error) = result {
            tracing::error!(%error, "HTTP server failed");
        }
    });
    Ok(Emulator {
        addr,
        state,
        shutdown: Some(tx),
        server,
    })
}
