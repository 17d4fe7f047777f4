//! A client for bulk reads (the register's extracts): tokio-postgres on a current-thread
//! runtime of its own, the connection driven inside each call as the sync `postgres` client
//! drives it (so its I/O error, not only "connection closed", is what a call returns). The
//! difference is [`CopyOut::fill`]: it gathers a whole chunk of COPY data (thousands of
//! CopyData messages, one per row) in one `block_on`, where the sync client's reader
//! crosses its runtime once per message.
//!
//! It lives on a [`super::Worker`]'s thread (`Worker::connect_bulk`) like the sync client,
//! and offers the calls the register makes with the same names.

use super::{Session, Target, WorkerError};
use futures::StreamExt;
use postgres::types::ToSql;
use postgres::{NoTls, Row};
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio_postgres::{CopyOutStream, Error};

/// The connection's future: reads and writes the socket, hands messages to the client.
type Driver = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// How long closing waits for the server to be told (Terminate) before dropping the socket.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// A tokio-postgres client with its connection and runtime.
pub struct BulkClient {
    rt: Runtime,
    /// `None` once closed (dropped first, which asks the connection to end).
    client: Option<tokio_postgres::Client>,
    /// `None` once it has ended.
    connection: Option<Driver>,
    /// A COPY was begun and not read to its end: closing drops the connection instead of
    /// waiting for the server (which would first send the rest of the data).
    unfinished: bool,
}

impl Session for BulkClient {
    fn open(target: &Target) -> Result<Self, WorkerError> {
        // Only I/O and time (connect_timeout): the socket is polled by this thread alone.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(WorkerError::Io)?;
        let (client, connection): (_, Driver) = match &target.tls {
            Some(tls) => {
                let (c, conn) = rt.block_on(target.config.connect(tls.clone()))?;
                (c, Box::pin(conn))
            }
            None => {
                let (c, conn) = rt.block_on(target.config.connect(NoTls))?;
                (c, Box::pin(conn))
            }
        };
        Ok(BulkClient {
            rt,
            client: Some(client),
            connection: Some(connection),
            unfinished: false,
        })
    }
}

/// Runs `f` to its end on `rt`, driving `connection` beside it; an error of the connection
/// (the socket failed, the server hung up) is the answer as soon as it happens.
fn drive<T>(
    rt: &Runtime,
    connection: &mut Option<Driver>,
    f: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let mut f = pin!(f);
    rt.block_on(std::future::poll_fn(|cx| {
        if let Some(c) = connection.as_mut() {
            if let Poll::Ready(done) = c.as_mut().poll(cx) {
                *connection = None;
                done?;
            }
        }
        f.as_mut().poll(cx)
    }))
}

impl BulkClient {
    fn parts(&mut self) -> (&Runtime, &mut Option<Driver>, &tokio_postgres::Client) {
        let client = self.client.as_ref().expect("open until dropped");
        (&self.rt, &mut self.connection, client)
    }

    /// Runs `sql` (one or more statements, no parameters).
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        let (rt, connection, client) = self.parts();
        drive(rt, connection, client.batch_execute(sql))
    }

    /// The one row `sql` returns.
    pub fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error> {
        let (rt, connection, client) = self.parts();
        drive(rt, connection, client.query_one(sql, params))
    }

    /// Starts `sql` (a `COPY ... TO STDOUT`); its data comes from [`CopyOut::fill`].
    pub fn copy_out(&mut self, sql: &str) -> Result<CopyOut<'_>, Error> {
        self.unfinished = true;
        let (rt, connection, client) = self.parts();
        let stream = drive(rt, connection, client.copy_out(sql))?;
        Ok(CopyOut {
            client: self,
            stream: Box::pin(stream),
        })
    }
}

impl Drop for BulkClient {
    fn drop(&mut self) {
        // Without its client the connection sends Terminate and ends; it is driven until
        // then (briefly), unless a COPY is unfinished.
        drop(self.client.take());
        if let Some(c) = self.connection.take().filter(|_| !self.unfinished) {
            // (The timer is made inside the runtime: it needs its clock.)
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(CLOSE_WAIT, c).await });
        }
    }
}

/// The data of a running `COPY ... TO STDOUT`.
pub struct CopyOut<'a> {
    client: &'a mut BulkClient,
    stream: Pin<Box<CopyOutStream>>,
}

impl CopyOut<'_> {
    /// Appends whole CopyData messages to `buf` until it holds at least `want` bytes, in one
    /// runtime crossing; `false` once the data has ended (then `buf` holds the last of it).
    pub fn fill(&mut self, buf: &mut Vec<u8>, want: usize) -> Result<bool, Error> {
        let mut stream = self.stream.as_mut();
        let client = &mut *self.client;
        let more = drive(&client.rt, &mut client.connection, async {
            while buf.len() < want {
                match stream.next().await {
                    Some(data) => buf.extend_from_slice(&data?),
                    None => return Ok(false),
                }
            }
            Ok(true)
        })?;
        if !more {
            client.unfinished = false;
        }
        Ok(more)
    }
}
