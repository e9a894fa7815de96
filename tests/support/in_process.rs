//! The server started in-process on 127.0.0.1:0, as `mps-edge serve` runs it
//! (`mps_edge::serve`), on the caller's Tokio runtime or on one of its own.

use std::net::SocketAddr;
use std::time::Duration;

use mps_edge::service::state::AppState;
use tokio::sync::watch;

/// A running in-process server. Dropping it asks the server to stop (and drops its own
/// runtime, if it has one, without waiting).
pub struct InProcess {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl InProcess {
    /// Serves the state `make_state` builds on the current runtime. `make_state` gets the
    /// server's stop signal (for background tasks such as the sync engine) and runs inside
    /// the runtime.
    pub async fn start(
        make_state: impl FnOnce(watch::Receiver<bool>) -> anyhow::Result<AppState>,
    ) -> anyhow::Result<InProcess> {
        InProcess::start_on(tokio::runtime::Handle::current(), None, make_state)
    }

    /// Like [`InProcess::start`], on a multi-thread runtime of its own (one worker per core,
    /// as `mps-edge serve` builds it), so clients on the caller's runtime do not share the
    /// server's worker threads, like separate processes.
    pub fn start_own_runtime(
        make_state: impl FnOnce(watch::Receiver<bool>) -> anyhow::Result<AppState>,
    ) -> anyhow::Result<InProcess> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        InProcess::start_on(runtime.handle().clone(), Some(runtime), make_state)
    }

    fn start_on(
        handle: tokio::runtime::Handle,
        runtime: Option<tokio::runtime::Runtime>,
        make_state: impl FnOnce(watch::Receiver<bool>) -> anyhow::Result<AppState>,
    ) -> anyhow::Result<InProcess> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (stop, rx) = watch::channel(false);
        let task = {
            let _in_server_runtime = handle.enter();
            let state = make_state(rx.clone())?;
            let listener = tokio::net::TcpListener::from_std(std_listener)?;
            let mut rx = rx;
            handle.spawn(mps_edge::serve(listener, state, async move {
                let _ = rx.wait_for(|v| *v).await;
            }))
        };
        Ok(InProcess {
            addr,
            url: format!("http://{addr}"),
            stop,
            task: Some(task),
            runtime,
        })
    }

    /// Stops the server and waits (at most 10 s) until it has let the writer finish.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
