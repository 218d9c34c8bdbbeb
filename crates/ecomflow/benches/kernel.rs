//! The yardstick: the flagship's sums written by hand for this one input. It reads the same
//! JSON lines, decodes the five fields the sums need with sonic-rs (borrowing the strings),
//! keeps successful payments, converts them to USD and sums them per day and category, per
//! day and per month (days and months read off the `+0000` timestamps). No validation, no
//! watermark, no alert window: what the analytics could cost at best on one core.

use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;

/// The flagship's USD rates, as its pipeline declares them.
pub const RATES: &str = r#"
[transforms.usd.lookups.usd_per_unit]
USD = 1.0
EUR = 1.08
GBP = 1.27
JPY = 0.0067
KRW = 0.00072
CNY = 0.14
INR = 0.012
BRL = 0.18
MXN = 0.055
ARS = 0.0011
"#;

/// [`RATES`] as a table.
pub fn rates() -> HashMap<&'static str, f64> {
    RATES
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .filter_map(|(k, v)| Some((k.trim(), v.trim().parse().ok()?)))
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sale<'a> {
    #[serde(borrow)]
    transaction_date: Cow<'a, str>,
    #[serde(borrow)]
    product_category: Cow<'a, str>,
    #[serde(borrow)]
    payment_status: Cow<'a, str>,
    #[serde(borrow)]
    currency: Cow<'a, str>,
    total_amount: f64,
}

/// The three sums of the file's JSON lines `bytes` with USD `rates`; returns how many
/// groups they have, so that nothing is optimised away.
pub fn sums(bytes: &[u8], rates: &HashMap<&str, f64>) -> usize {
    let mut per_category: HashMap<(&str, &str), f64> = HashMap::new();
    let mut per_day: HashMap<&str, f64> = HashMap::new();
    let mut per_month: HashMap<&str, f64> = HashMap::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(sale) = sonic_rs::from_slice::<Sale>(line) else {
            continue;
        };
        if sale.payment_status != "success" {
            continue;
        }
        let Some(rate) = rates.get(sale.currency.as_ref()) else {
            continue;
        };
        let usd = sale.total_amount * rate;
        // Strings without escapes are borrowed from the file's bytes: keys without a copy.
        let (Cow::Borrowed(date), Cow::Borrowed(category)) =
            (sale.transaction_date, sale.product_category)
        else {
            continue;
        };
        let (Some(day), Some(month)) = (date.get(..10), date.get(..7)) else {
            continue;
        };
        *per_category.entry((day, category)).or_default() += usd;
        *per_day.entry(day).or_default() += usd;
        *per_month.entry(month).or_default() += usd;
    }
    per_category.len() + per_day.len() + per_month.len()
}
