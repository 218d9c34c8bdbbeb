//! The tables of the `postgres` checkpoint store, created when missing: one row per pipeline
//! for what is not partitioned, one row per source partition for its owner's epoch, its
//! position and the states built from it.

/// Serialises the creation of the tables between processes (the key is arbitrary, fixed).
pub const LOCK: &str = "SELECT pg_advisory_xact_lock(7235439016347101857)";

/// Creates the tables, under [`LOCK`].
pub const CREATE: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS ecomflow_checkpoints (
        name TEXT PRIMARY KEY,
        checkpoint BIGINT NOT NULL,
        sources JSONB NOT NULL,
        transforms JSONB NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )",
    "CREATE TABLE IF NOT EXISTS ecomflow_partitions (
        name TEXT NOT NULL,
        source TEXT NOT NULL,
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        epoch BIGINT NOT NULL,
        owner TEXT,
        checkpoint BIGINT,
        position JSONB,
        states JSONB,
        claimed_at TIMESTAMPTZ,
        updated_at TIMESTAMPTZ,
        PRIMARY KEY (name, source, topic, partition)
    )",
];

/// Reads the part that is not partitioned.
pub const LOAD: &str =
    "SELECT checkpoint, sources::text, transforms::text FROM ecomflow_checkpoints WHERE name = $1";

/// Claims a partition: a new epoch fences every earlier owner; returns what was committed.
/// Waits for an earlier owner's commit under way (its row lock), so what it reads is the
/// newest.
pub const CLAIM: &str = "INSERT INTO ecomflow_partitions
        (name, source, topic, partition, epoch, owner, claimed_at)
    VALUES ($1, $2, $3, $4, 1, $5, now())
    ON CONFLICT (name, source, topic, partition) DO UPDATE
        SET epoch = ecomflow_partitions.epoch + 1, owner = $5, claimed_at = now()
    RETURNING epoch, position::text, states::text";

/// Commits a partition's position and states, only while the claim `$8` still stands.
pub const COMMIT_PARTITION: &str = "UPDATE ecomflow_partitions
    SET checkpoint = $5, position = $6::jsonb, states = $7::jsonb, updated_at = now()
    WHERE name = $1 AND source = $2 AND topic = $3 AND partition = $4 AND epoch = $8";

/// Commits the part that is not partitioned.
pub const COMMIT_WHOLE: &str = "INSERT INTO ecomflow_checkpoints
        (name, checkpoint, sources, transforms, updated_at)
    VALUES ($1, $2, $3::jsonb, $4::jsonb, now())
    ON CONFLICT (name) DO UPDATE
        SET checkpoint = excluded.checkpoint, sources = excluded.sources,
            transforms = excluded.transforms, updated_at = now()";
