//! How entries are laid out on disk. A key is its namespace's prefix (8 bytes of the SHA-256
//! of the namespace's name), its order (`0`, or `1` and the time in big-endian with the sign
//! bit flipped, so keys sort by time), then the entry's own key in postcard. A value is a
//! tag (`1` and the value in postcard, or `0` for a deletion not yet committed).

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Digest;

/// The length of a namespace's prefix.
pub const PREFIX: usize = 8;

/// The tag of a key holding a namespace's own figures (its number of keys), after the
/// prefix; entries have tags 0 and 1.
const META: u8 = 0xFF;

/// The prefix of namespace `name`.
pub fn prefix(name: &str) -> [u8; PREFIX] {
    let digest = sha2::Sha256::digest(name.as_bytes());
    let mut p = [0u8; PREFIX];
    p.copy_from_slice(&digest[..PREFIX]);
    p
}

fn order_bytes(order: i64) -> [u8; 8] {
    ((order as u64) ^ (1 << 63)).to_be_bytes()
}

/// The disk key of entry `key` with `order` in the namespace with `prefix`.
pub fn entry_key<Q: Serialize + ?Sized>(
    prefix: &[u8; PREFIX],
    order: Option<i64>,
    key: &Q,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(PREFIX + 9 + 16);
    entry_key_into(prefix, order, key, &mut out)?;
    Ok(out)
}

/// [`entry_key`] into `out` (emptied first), to reuse its allocation.
pub fn entry_key_into<Q: Serialize + ?Sized>(
    prefix: &[u8; PREFIX],
    order: Option<i64>,
    key: &Q,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    out.clear();
    out.extend_from_slice(prefix);
    match order {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            out.extend_from_slice(&order_bytes(t));
        }
    }
    postcard::to_io(key, &mut *out).map_err(|e| format!("a state key cannot be encoded: {e}"))?;
    Ok(())
}

/// The order and key of disk key `bytes` (without checking its prefix).
pub fn decode_key<K: DeserializeOwned>(bytes: &[u8]) -> Result<(Option<i64>, K), String> {
    let rest = bytes.get(PREFIX..).ok_or("a state key is too short")?;
    let (order, rest) = match rest.split_first() {
        Some((0, rest)) => (None, rest),
        Some((1, rest)) if rest.len() >= 8 => {
            let (t, rest) = rest.split_at(8);
            let mut b = [0u8; 8];
            b.copy_from_slice(t);
            (Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64), rest)
        }
        _ => return Err("a state key has no order".into()),
    };
    let key = postcard::from_bytes(rest).map_err(|e| format!("a state key cannot be read: {e}"))?;
    Ok((order, key))
}

/// The first disk key after every entry ordered at or before `through`.
fn after(prefix: &[u8; PREFIX], through: i64) -> Vec<u8> {
    let mut end = prefix.to_vec();
    match through.checked_add(1) {
        Some(next) => {
            end.push(1);
            end.extend_from_slice(&order_bytes(next));
        }
        None => end.push(2),
    }
    end
}

/// The disk keys of entries ordered after `from` and at or before `through`: a range of
/// [`entry_key`]s (`from = i64::MIN` takes every order up to `through`).
pub fn between(prefix: &[u8; PREFIX], from: i64, through: i64) -> (Vec<u8>, Vec<u8>) {
    let start = if from == i64::MIN {
        let mut start = prefix.to_vec();
        start.push(1);
        start
    } else {
        after(prefix, from)
    };
    (start, after(prefix, through))
}

/// The order of disk key `bytes`, if it has one.
pub fn order_of(bytes: &[u8]) -> Option<i64> {
    let rest = bytes.get(PREFIX..)?;
    match rest.split_first() {
        Some((1, rest)) => {
            let b: [u8; 8] = rest.get(..8)?.try_into().ok()?;
            Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
        }
        _ => None,
    }
}

/// A namespace's figures as stored: its number of entries, and the time at or before which
/// its entries have expired.
pub fn figures(len: u64, expired: i64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&len.to_be_bytes());
    out[8..].copy_from_slice(&expired.to_be_bytes());
    out
}

/// The figures stored as `bytes` (none: no entry, nothing expired).
pub fn read_figures(bytes: Option<&[u8]>) -> (u64, i64) {
    let Some(b) = bytes.filter(|b| b.len() == 16) else {
        return (0, i64::MIN);
    };
    let mut len = [0u8; 8];
    let mut expired = [0u8; 8];
    len.copy_from_slice(&b[..8]);
    expired.copy_from_slice(&b[8..]);
    (u64::from_be_bytes(len), i64::from_be_bytes(expired))
}

/// The key of a namespace's own figures.
pub fn meta_key(prefix: &[u8; PREFIX]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.push(META);
    k
}

/// True when disk key `bytes` is an entry (not the namespace's figures).
pub fn is_entry(bytes: &[u8]) -> bool {
    bytes.get(PREFIX).is_some_and(|t| *t != META)
}

/// A stored value: tag 1 and the value.
pub fn value<V: Serialize>(value: &V) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    value_into(value, &mut out)?;
    Ok(out)
}

/// [`value`] into `out` (emptied first), to reuse its allocation.
pub fn value_into<V: Serialize>(value: &V, out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    out.push(1);
    postcard::to_io(value, &mut *out)
        .map_err(|e| format!("a state value cannot be encoded: {e}"))?;
    Ok(())
}

/// A deletion not yet committed (it hides an earlier value).
pub const DELETED: [u8; 1] = [0];

/// The value stored as `bytes`: `None` for a deletion.
pub fn decode_value<V: DeserializeOwned>(bytes: &[u8]) -> Result<Option<V>, String> {
    match bytes.split_first() {
        Some((1, rest)) => postcard::from_bytes(rest)
            .map(Some)
            .map_err(|e| format!("a state value cannot be read (did the transform's options change since it was written?): {e}")),
        Some((0, _)) => Ok(None),
        _ => Err("a state value has no tag".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn keys_read_back_and_sort_by_order(a in any::<i64>(), b in any::<i64>(), k in ".{0,12}") {
            let p = prefix("aggregate#0");
            let ka = entry_key(&p, Some(a), &k).expect("encodes");
            let kb = entry_key(&p, Some(b), &k).expect("encodes");
            prop_assert_eq!(decode_key::<String>(&ka).expect("decodes"), (Some(a), k.clone()));
            prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
            let (start, end) = between(&p, i64::MIN, a.max(b));
            prop_assert!(start <= ka && ka < end);
            prop_assert!(start <= kb && kb < end);
            prop_assert_eq!(order_of(&ka), Some(a));
            if a < b {
                let (_, end) = between(&p, i64::MIN, a);
                prop_assert!(kb >= end, "an entry after the time is outside the range");
                let (start, _) = between(&p, a, b);
                prop_assert!(ka < start && kb >= start, "the range starts after `from`");
            }
        }
    }

    #[test]
    fn unordered_keys_and_figures_are_outside_every_time_range() {
        let p = prefix("x");
        let none = entry_key(&p, None, &7u32).expect("encodes");
        let (start, end) = between(&p, i64::MIN, i64::MAX);
        assert!(none < start);
        assert!(meta_key(&p) >= end);
        assert_eq!(order_of(&none), None);
        assert_eq!(read_figures(Some(&figures(7, -3))), (7, -3));
        assert_eq!(read_figures(None), (0, i64::MIN));
        assert!(is_entry(&none) && !is_entry(&meta_key(&p)));
        assert_ne!(prefix("x"), prefix("y"));
    }

    #[test]
    fn values_and_deletions_read_back() {
        let v = value(&(1u8, "a".to_string())).expect("encodes");
        assert_eq!(
            decode_value::<(u8, String)>(&v).expect("decodes"),
            Some((1, "a".into()))
        );
        assert_eq!(decode_value::<u8>(&DELETED).expect("decodes"), None);
        assert!(decode_value::<u8>(&[]).is_err());
    }
}
