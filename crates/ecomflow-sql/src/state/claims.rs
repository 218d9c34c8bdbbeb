//! Claiming partitions, for a consumer's rebalance callback, which must answer before the
//! consumer goes on: a thread of its own with its own connection (and runtime) serves the
//! claims, so a blocking call never waits on the pipeline's runtime.

use super::schema;
use ecomflow_core::checkpoint::PartitionCheckpoint;
use ecomflow_core::{PartitionId, RetryPolicy};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

/// A claim's answer: the epoch and what was committed for the partition.
pub type Claimed = Result<(i64, Option<PartitionCheckpoint>), String>;

/// One claim to make, and where to answer.
struct Request {
    partition: PartitionId,
    reply: mpsc::Sender<Claimed>,
}

/// The claiming thread's handle.
pub struct Claims {
    requests: mpsc::Sender<Request>,
    /// How long a claim waits before it fails (the database may be restarting).
    patience: Duration,
}

impl Claims {
    /// Starts the thread, claiming in `name` as `owner` on the database `options` points
    /// to, retrying a lost connection for `retry_for`.
    pub fn start(
        options: PgConnectOptions,
        name: String,
        owner: String,
        retry_for: Duration,
    ) -> Result<Claims, String> {
        let (requests, incoming) = mpsc::channel::<Request>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the thread that claims partitions: {e}"))?;
        std::thread::Builder::new()
            .name("ecomflow-claims".into())
            .spawn(move || {
                let retry = RetryPolicy::new(retry_for);
                let mut connection: Option<PgConnection> = None;
                while let Ok(request) = incoming.recv() {
                    let answer = runtime.block_on(async {
                        let mut retrying = retry.start();
                        loop {
                            let attempt = claim_once(
                                &mut connection,
                                &options,
                                &name,
                                &owner,
                                &request.partition,
                            )
                            .await;
                            match attempt {
                                Ok(claimed) => break Ok(claimed),
                                Err(e) => {
                                    if let Err(e) = retrying.failed(e).await {
                                        break Err(e);
                                    }
                                }
                            }
                        }
                    });
                    let _ = request.reply.send(answer.map_err(|e| e.to_string()));
                }
            })
            .map_err(|e| format!("cannot start the thread that claims partitions: {e}"))?;
        Ok(Claims {
            requests,
            patience: retry_for + Duration::from_secs(10),
        })
    }

    /// Claims `partition`, waiting for the answer.
    pub fn claim(&self, partition: &PartitionId) -> Claimed {
        let (reply, answer) = mpsc::channel();
        let request = Request {
            partition: partition.clone(),
            reply,
        };
        self.requests
            .send(request)
            .map_err(|_| "the thread that claims partitions has stopped".to_string())?;
        answer
            .recv_timeout(self.patience)
            .map_err(|_| "the checkpoint database did not answer a claim in time".to_string())?
    }
}

/// One attempt at a claim, connecting first when needed (a failed attempt drops the
/// connection, so the next one connects again).
async fn claim_once(
    connection: &mut Option<PgConnection>,
    options: &PgConnectOptions,
    name: &str,
    owner: &str,
    partition: &PartitionId,
) -> Result<(i64, Option<PartitionCheckpoint>), ecomflow_core::ComponentError> {
    let what = || {
        format!(
            "cannot claim {} in the checkpoint database",
            partition.key()
        )
    };
    if connection.is_none() {
        let c = options
            .connect()
            .await
            .map_err(|e| crate::db::db_error(what(), e))?;
        *connection = Some(c);
    }
    let Some(c) = connection.as_mut() else {
        return Err(ecomflow_core::ComponentError::Other(what()));
    };
    let row: Result<(i64, Option<String>, Option<String>), _> = sqlx::query_as(schema::CLAIM)
        .bind(name)
        .bind(&*partition.source)
        .bind(&*partition.topic)
        .bind(partition.number)
        .bind(owner)
        .fetch_one(&mut *c)
        .await;
    let (epoch, position, states) = match row {
        Ok(row) => row,
        Err(e) => {
            *connection = None;
            return Err(crate::db::db_error(what(), e));
        }
    };
    let unreadable = |e: serde_json::Error| {
        ecomflow_core::ComponentError::Other(format!(
            "the checkpoint database holds an unreadable state for {}: {e}",
            partition.key()
        ))
    };
    let Some(position) = position else {
        return Ok((epoch, None));
    };
    let position = serde_json::from_str(&position).map_err(unreadable)?;
    let transforms: BTreeMap<String, serde_json::Value> = match states {
        Some(s) => serde_json::from_str(&s).map_err(unreadable)?,
        None => BTreeMap::new(),
    };
    Ok((
        epoch,
        Some(PartitionCheckpoint {
            position,
            transforms,
        }),
    ))
}
