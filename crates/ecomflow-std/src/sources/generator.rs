//! The `generator` source: reproducible fake ecommerce transactions in the seed's exact format.

use super::catalog::{CURRENCIES, PAYMENT_METHODS, PAYMENT_STATUSES, PRODUCTS};
use ecomflow_core::async_trait::async_trait;
use ecomflow_core::{
    Batch, BuildContext, BuildError, ComponentError, Field, Payload, Plugin, Record, Source,
    SourceContext, SourcePlugin, Value,
};
use ecomflow_json::{JsonDecoder, encode_line};
use fake::Fake;
use fake::faker::internet::en::Username;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::time::Duration;
use tokio::time::Instant;

/// Options of the `generator` source.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct GeneratorConfig {
    /// How many good transactions to generate (bad ones come on top); 0 generates forever.
    pub count: u64,
    /// Good transactions per second; 0 generates as fast as the pipeline takes them.
    #[schemars(range(min = 0))]
    pub rate: f64,
    /// Seed of the random generator: the same seed gives the same transactions, byte for byte.
    /// Without one a random seed is picked and logged when the run starts.
    pub seed: Option<u64>,
    /// The event clock at the first transaction (RFC 3339, such as `2025-01-01T00:00:00Z`);
    /// with `jitter_ms` an event can be up to that much earlier than the clock.
    pub start_time: String,
    /// How far the simulated event clock moves per good transaction, in milliseconds, so a
    /// short run spreads over many days and months.
    pub event_step_ms: u64,
    /// Largest out-of-orderness in milliseconds: each event's time is the clock minus a
    /// uniform random delay between 0 and this.
    pub jitter_ms: u64,
    /// Probability (0 to 1) that a good transaction is followed by a deliberately bad one:
    /// truncated JSON (dead-lettered here), a missing field or a mistyped field (sent on, for a
    /// `validate` transform to catch).
    #[schemars(range(min = 0, max = 1))]
    pub bad_ratio: f64,
    /// Good transactions per batch sent downstream (with `rate`, batches are made smaller so
    /// about ten go out per second).
    #[schemars(range(min = 1))]
    pub batch_size: usize,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            count: 0,
            rate: 0.0,
            seed: None,
            start_time: "2025-01-01T00:00:00Z".into(),
            event_step_ms: 60_000,
            jitter_ms: 0,
            bad_ratio: 0.0,
            batch_size: 1024,
        }
    }
}

/// Registers the `generator` source.
pub struct GeneratorPlugin;

impl SourcePlugin for GeneratorPlugin {
    type Config = GeneratorConfig;

    fn build(cfg: GeneratorConfig, _cx: &BuildContext) -> Result<Box<dyn Source>, BuildError> {
        let start = chrono::DateTime::parse_from_rfc3339(&cfg.start_time).map_err(|e| {
            BuildError::field(
                "start_time",
                format!("`{}` is not an RFC 3339 time: {e}", cfg.start_time),
            )
            .with_hint("write it like 2025-01-01T00:00:00Z")
        })?;
        if !(cfg.rate.is_finite() && (cfg.rate == 0.0 || cfg.rate >= MIN_RATE)) {
            return Err(BuildError::field(
                "rate",
                format!("rate must be 0 or at least {MIN_RATE}, not {}", cfg.rate),
            ));
        }
        let last_us = i128::from(start.timestamp_micros())
            + i128::from(micros(cfg.event_step_ms)) * i128::from(cfg.count);
        if last_us > LAST_WRITABLE_US {
            return Err(BuildError::field(
                "event_step_ms",
                format!(
                    "{} transactions {} ms apart from {} run past the year 9999",
                    cfg.count, cfg.event_step_ms, cfg.start_time
                ),
            ));
        }
        if !(0.0..=1.0).contains(&cfg.bad_ratio) {
            return Err(BuildError::field(
                "bad_ratio",
                format!("bad_ratio must be between 0 and 1, not {}", cfg.bad_ratio),
            ));
        }
        if cfg.batch_size == 0 {
            return Err(BuildError::field(
                "batch_size",
                "batch_size must be at least 1",
            ));
        }
        Ok(Box::new(GeneratorSource {
            count: cfg.count,
            rate: cfg.rate,
            seed: cfg.seed,
            batch_size: cfg.batch_size,
            clock: Clock {
                start_us: start.timestamp_micros(),
                step_us: micros(cfg.event_step_ms),
                jitter_us: cfg.jitter_ms.saturating_mul(1000),
            },
            bad_ratio: cfg.bad_ratio,
            fields: Fields::new(),
        }))
    }
}

/// The slowest rate accepted (one transaction in about 17 minutes).
const MIN_RATE: f64 = 0.001;
/// 9999-12-31T23:59:59.999999Z, the last time the seed's date format can write.
const LAST_WRITABLE_US: i128 = 253_402_300_799_999_999;

fn micros(ms: u64) -> i64 {
    i64::try_from(ms.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// The simulated event clock.
#[derive(Clone, Copy)]
struct Clock {
    start_us: i64,
    step_us: i64,
    jitter_us: u64,
}

/// The seed's 13 fields, in the seed's order.
const FIELD_NAMES: [&str; 13] = [
    "transactionId",
    "productId",
    "productName",
    "productCategory",
    "productPrice",
    "productQuantity",
    "productBrand",
    "currency",
    "customerId",
    "transactionDate",
    "paymentMethod",
    "paymentStatus",
    "totalAmount",
];

/// The interned field ids, resolved once at build time.
#[derive(Clone, Copy)]
struct Fields([Field; 13]);

const PRICE: usize = 4;
const QUANTITY: usize = 5;
const TOTAL: usize = 12;

impl Fields {
    fn new() -> Fields {
        Fields(FIELD_NAMES.map(Field::new))
    }
}

struct GeneratorSource {
    count: u64,
    rate: f64,
    seed: Option<u64>,
    batch_size: usize,
    clock: Clock,
    bad_ratio: f64,
    fields: Fields,
}

#[async_trait]
impl Source for GeneratorSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), ComponentError> {
        // After a restart, go on from the last checkpoint: same seed, same transactions.
        let restored: Option<Position> = cx.restored()?;
        let restored = restored.map(|p| (p.seed, p.made));
        let seed = match (restored, self.seed) {
            (Some((seed, _)), _) | (None, Some(seed)) => seed,
            (None, None) => {
                // TOML integers are signed: keep the seed one a user can write back.
                let seed = rand::random::<u64>() >> 1;
                tracing::info!(
                    component = %cx.dead_letter.component(),
                    seed,
                    "no seed set; set `seed = {seed}` to repeat this run"
                );
                seed
            }
        };
        let mut generator = Generator::new(seed, self.fields, self.clock, self.bad_ratio);
        let mut produced: u64 = 0;
        // What this run will send, for the live progress (what a restart skips is not sent).
        let made_before = restored.map_or(0, |(_, made)| made);
        cx.telemetry.expected_records.store(
            self.count.saturating_sub(made_before),
            std::sync::atomic::Ordering::Relaxed,
        );
        if let Some((_, made)) = restored {
            // Replay the random draws of what was already made, without sending it.
            let (mut skipped, mut dead) = (Vec::new(), Vec::new());
            while produced < made {
                let n = (made - produced).min(self.batch_size as u64) as usize;
                generator.fill(n, &mut skipped, &mut dead);
                produced += n as u64;
                skipped.clear();
                dead.clear();
            }
        }
        let position = |made: u64| Position { seed, made };
        let per_batch = if self.rate > 0.0 {
            // About ten batches a second, so a slow rate still flows smoothly.
            ((self.rate / 10.0).ceil() as usize).clamp(1, self.batch_size)
        } else {
            self.batch_size
        };
        let started = Instant::now();
        let resumed_at = produced;
        loop {
            if cx.checkpoint_due() {
                cx.checkpoint(&position(produced)).await;
            }
            let n = if self.count == 0 {
                per_batch
            } else {
                self.count.saturating_sub(produced).min(per_batch as u64) as usize
            };
            if n == 0 || cx.shutdown.is_cancelled() {
                break;
            }
            if self.rate > 0.0 {
                let due = Duration::try_from_secs_f64((produced - resumed_at) as f64 / self.rate)
                    .ok()
                    .and_then(|d| started.checked_add(d));
                let wait = async {
                    match due {
                        Some(due) => tokio::time::sleep_until(due).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    _ = cx.shutdown.cancelled() => break,
                    _ = wait => {}
                }
            } else {
                // Nothing else may await in this loop; let the runtime run other tasks.
                tokio::task::yield_now().await;
            }
            let mut batch = Vec::with_capacity(n + (n as f64 * self.bad_ratio) as usize + 1);
            let mut dead = Vec::new();
            generator.fill(n, &mut batch, &mut dead);
            produced += n as u64;
            cx.reject(dead).await;
            if cx.send(batch).await.is_err() {
                break;
            }
        }
        // Stopped for a restart, or at its end: the last checkpoint records where to go on.
        cx.last_checkpoint(&position(produced)).await;
        Ok(())
    }
}

/// Where a checkpoint leaves the generator: its seed and how many good transactions it made
/// (the bad ones come from their own random stream, so the count says where both are).
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    seed: u64,
    made: u64,
}

/// Makes transactions from a seeded random generator.
struct Generator {
    rng: ChaCha8Rng,
    /// A separate stream for bad records, so `bad_ratio` never changes the good ones.
    bad_rng: ChaCha8Rng,
    fields: Fields,
    clock: Clock,
    /// Event time of the latest good transaction, before jitter.
    now_us: i64,
    /// How many good transactions were made.
    made: i64,
    bad_ratio: f64,
    /// Decodes the truncated JSON, as a real source would.
    decoder: JsonDecoder,
    scratch: Vec<u8>,
    date: String,
}

impl Generator {
    fn new(seed: u64, fields: Fields, clock: Clock, bad_ratio: f64) -> Generator {
        let mut bad_rng = ChaCha8Rng::seed_from_u64(seed);
        bad_rng.set_stream(1);
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            bad_rng,
            fields,
            clock,
            now_us: clock.start_us,
            made: 0,
            bad_ratio,
            decoder: JsonDecoder::new(),
            scratch: Vec::new(),
            date: String::with_capacity(32),
        }
    }

    /// Appends `n` good transactions to `batch`, each maybe followed by a bad one (malformed
    /// ones, which no decoder accepts, go to `dead`).
    fn fill(&mut self, n: usize, batch: &mut Batch, dead: &mut Vec<(String, Payload)>) {
        for _ in 0..n {
            let good = self.good();
            batch.push(good);
            if self.bad_ratio > 0.0 && self.bad_rng.random_bool(self.bad_ratio) {
                // Bad records draw only from their own stream.
                std::mem::swap(&mut self.rng, &mut self.bad_rng);
                self.bad(batch, dead);
                std::mem::swap(&mut self.rng, &mut self.bad_rng);
            }
        }
    }

    /// The next good transaction; moves the event clock.
    fn good(&mut self) -> Record {
        self.now_us = self
            .clock
            .start_us
            .saturating_add(self.clock.step_us.saturating_mul(self.made));
        self.made += 1;
        self.transaction()
    }

    /// A transaction at the current clock (minus jitter).
    fn transaction(&mut self) -> Record {
        let f = &self.fields.0;
        let rng = &mut self.rng;
        let mut r = Record::with_capacity(FIELD_NAMES.len());

        let id = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
        let mut id_buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        r.push(
            f[0],
            Value::from(&*id.hyphenated().encode_lower(&mut id_buf)),
        );

        let product = &PRODUCTS[rng.random_range(0..PRODUCTS.len() as u32) as usize];
        let (low, high) = product.price_cents;
        let price_cents = rng.random_range(low..=high);
        let quantity = rng.random_range(1..=100u32);
        r.push(f[1], Value::from(product.id));
        r.push(f[2], Value::from(product.name));
        r.push(f[3], Value::from(product.category));
        r.push(f[PRICE], Value::Float(f64::from(price_cents) / 100.0));
        r.push(f[QUANTITY], Value::Int(i64::from(quantity)));
        r.push(f[6], Value::from(product.brand));
        r.push(f[7], Value::from(pick(rng, &CURRENCIES)));
        let customer: String = Username().fake_with_rng(rng);
        r.push(f[8], Value::Str(customer.into()));

        let jitter = if self.clock.jitter_us > 0 {
            rng.random_range(0..=self.clock.jitter_us)
        } else {
            0
        };
        let at = self
            .now_us
            .saturating_sub(i64::try_from(jitter).unwrap_or(i64::MAX));
        self.date.clear();
        format_date(at, &mut self.date);
        r.push(f[9], Value::from(self.date.as_str()));

        r.push(f[10], Value::from(pick(rng, &PAYMENT_METHODS)));
        r.push(f[11], Value::from(pick(rng, &PAYMENT_STATUSES)));
        let total_cents = u64::from(price_cents) * u64::from(quantity);
        r.push(f[TOTAL], Value::Float(total_cents as f64 / 100.0));
        r
    }

    /// One deliberately bad transaction: truncated JSON, a missing field or a mistyped one.
    fn bad(&mut self, batch: &mut Batch, dead: &mut Vec<(String, Payload)>) {
        let mut r = self.transaction();
        match self.rng.random_range(0..3u32) {
            0 => {
                self.scratch.clear();
                encode_line(&r, &mut self.scratch);
                self.scratch.pop(); // the newline
                // Any proper prefix of a JSON object is broken JSON.
                let cut = self.rng.random_range(1..self.scratch.len() as u32) as usize;
                let bytes = self.scratch[..cut].to_vec();
                match self.decoder.decode(&bytes) {
                    Err(e) => dead.push((format!("{e}"), Payload::Raw(bytes))),
                    Ok(r) => batch.push(r),
                }
            }
            1 => {
                let at = self.rng.random_range(0..FIELD_NAMES.len() as u32) as usize;
                r.remove(self.fields.0[at]);
                batch.push(r);
            }
            _ => {
                let (at, value) = match self.rng.random_range(0..3u32) {
                    0 => {
                        let price = r.get(self.fields.0[PRICE]).and_then(Value::as_f64);
                        let whole = price.unwrap_or_default().trunc();
                        (PRICE, format!("{whole}.x"))
                    }
                    1 => (QUANTITY, "many".to_string()),
                    _ => {
                        let total = r.get(self.fields.0[TOTAL]).and_then(Value::as_f64);
                        (TOTAL, format!("{:.2}", total.unwrap_or_default()))
                    }
                };
                r.set(self.fields.0[at], Value::Str(value.into()));
                batch.push(r);
            }
        }
    }
}

fn pick(rng: &mut ChaCha8Rng, from: &[&'static str]) -> &'static str {
    from[rng.random_range(0..from.len() as u32) as usize]
}

/// Writes `us` (microseconds since 1970 UTC) as `2025-07-19T12:34:56.123456+0000`.
fn format_date(us: i64, out: &mut String) {
    const US_PER_DAY: i64 = 86_400_000_000;
    let days = us.div_euclid(US_PER_DAY);
    let in_day = us.rem_euclid(US_PER_DAY);
    let (y, m, d) = ecomflow_time::civil_from_days(days);
    let secs = in_day / 1_000_000;
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}+0000",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        in_day % 1_000_000
    );
}

ecomflow_core::inventory::submit!(Plugin::source::<GeneratorPlugin>(
    "generator",
    "fake ecommerce transactions in the seed's format, reproducible with a seed"
));

#[cfg(test)]
#[path = "generator_tests.rs"]
mod tests;
