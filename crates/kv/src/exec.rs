//! What each command does: the Redis semantics, on top of the store's
//! keyspace helpers. Write commands run only inside `apply`, after the keys
//! they name were purged if expired; read commands also serve `Store::read`.

use std::collections::btree_map::Entry;
use std::collections::{BTreeSet, VecDeque};

use bytes::{Bytes, BytesMut};

use crate::command::{Command, End, SetCondition, SetExpiry, TimeUnit, parse_i64};
use crate::error::CommandError;
use crate::glob::Pattern;
use crate::response::Response;
use crate::store::{Key, Slot, Store, Value, is_past};

/// What SET does to the slot of its key.
enum SetAction {
    /// Store this slot (the key is new, or its old slot is replaced).
    Write(Slot),
    /// Remove the key if present: written with a deadline already past, or
    /// expired and not overwritten.
    Remove,
    /// Leave the live slot as it is (NX or XX refused the write).
    Keep,
}

impl Store {
    pub(crate) fn write(&mut self, cmd: &Command, now: u64) -> Result<Response, CommandError> {
        Ok(match cmd {
            Command::Set { key, value, condition, get, expiry } => {
                return self.set(key, value, *condition, *get, *expiry, now);
            }
            Command::SetNx { key, value } => {
                if self.live(key, now).is_some() {
                    Response::Integer(0)
                } else {
                    self.put(key, Value::Str(value.clone()), None);
                    Response::Integer(1)
                }
            }
            Command::GetSet { key, value } => {
                let old = self.string(key, now)?.cloned();
                self.put(key, Value::Str(value.clone()), None);
                Response::Bulk(old)
            }
            Command::GetDel { key } => {
                let old = self.string(key, now)?.cloned();
                if old.is_some() {
                    self.remove(key);
                }
                Response::Bulk(old)
            }
            Command::Del { keys } => Response::Integer(keys.iter().filter(|k| self.remove(k).is_some()).count() as i64),
            Command::IncrBy { key, delta } => {
                let current = match self.string(key, now)? {
                    None => 0,
                    Some(s) => parse_i64(s).ok_or(CommandError::NotInteger)?,
                };
                let new = current.checked_add(*delta).ok_or(CommandError::Overflow)?;
                let ttl = self.live(key, now).and_then(|s| s.expires_at_ms);
                self.put(key, Value::Str(Bytes::from(new.to_string())), ttl);
                Response::Integer(new)
            }
            Command::Append { key, value } => {
                let old = self.string(key, now)?;
                if old.map_or(0, Bytes::len).saturating_add(value.len()) > self.limits.string_len_max {
                    return Err(CommandError::StringTooLong);
                }
                let mut joined = BytesMut::with_capacity(old.map_or(0, Bytes::len) + value.len());
                joined.extend_from_slice(old.map_or(&[][..], |b| &b[..]));
                joined.extend_from_slice(value);
                let len = joined.len() as i64;
                let ttl = self.live(key, now).and_then(|s| s.expires_at_ms);
                self.put(key, Value::Str(joined.freeze()), ttl);
                Response::Integer(len)
            }
            Command::MSet { pairs } => {
                for (k, v) in pairs {
                    self.put(k, Value::Str(v.clone()), None);
                }
                Response::ok()
            }
            Command::MSetNx { pairs } => {
                if pairs.iter().any(|(k, _)| self.live(k, now).is_some()) {
                    return Ok(Response::Integer(0));
                }
                for (k, v) in pairs {
                    self.put(k, Value::Str(v.clone()), None);
                }
                Response::Integer(1)
            }
            Command::Expire { key, spec, condition } => {
                let deadline = spec.deadline_ms(now).ok_or(CommandError::InvalidExpireTime(cmd.name()))?;
                let Some(slot) = self.live(key, now) else { return Ok(Response::Integer(0)) };
                let current = slot.expires_at_ms.map(i128::from);
                let new = i128::from(deadline);
                let refused = (condition.nx && current.is_some())
                    || (condition.xx && current.is_none())
                    || (condition.gt && current.is_none_or(|c| new <= c))
                    || (condition.lt && current.is_some_and(|c| new >= c));
                if refused {
                    return Ok(Response::Integer(0));
                }
                if is_past(deadline, now) {
                    self.remove(key);
                } else {
                    self.set_expiry(key, u64::try_from(deadline).ok());
                }
                Response::Integer(1)
            }
            Command::Persist { key } => {
                if self.live(key, now).is_some_and(|s| s.expires_at_ms.is_some()) {
                    self.set_expiry(key, None);
                    Response::Integer(1)
                } else {
                    Response::Integer(0)
                }
            }
            Command::FlushAll => {
                self.keys.clear();
                self.expiries.clear();
                Response::ok()
            }
            Command::HSet { key, pairs } => {
                let Some(h) = self.hash_mut(key, true)? else { return Ok(Response::Integer(0)) };
                let added = pairs.iter().filter(|(f, v)| h.insert(f.clone(), v.clone()).is_none()).count();
                Response::Integer(added as i64)
            }
            Command::HDel { key, fields } => {
                let Some(h) = self.hash_mut(key, false)? else { return Ok(Response::Integer(0)) };
                let removed = fields.iter().filter(|f| h.remove(*f).is_some()).count();
                self.drop_if_empty(key);
                Response::Integer(removed as i64)
            }
            Command::HIncrBy { key, field, delta } => {
                let result = self.hincrby(key, field, *delta);
                self.drop_if_empty(key);
                return result;
            }
            Command::Push { key, end, values } => {
                let Some(l) = self.list_mut(key, true)? else { return Ok(Response::Integer(0)) };
                for v in values {
                    match end {
                        End::Left => l.push_front(v.clone()),
                        End::Right => l.push_back(v.clone()),
                    }
                }
                Response::Integer(l.len() as i64)
            }
            Command::Pop { key, end, count } => {
                let Some(l) = self.list_mut(key, false)? else {
                    return Ok(if count.is_some() { Response::Array(None) } else { Response::nil() });
                };
                let pop = |l: &mut VecDeque<Bytes>| match end {
                    End::Left => l.pop_front(),
                    End::Right => l.pop_back(),
                };
                let reply = match count {
                    None => Response::Bulk(pop(l)),
                    Some(n) => {
                        Response::bulks(std::iter::from_fn(|| pop(l)).take(usize::try_from(*n).unwrap_or(usize::MAX)))
                    }
                };
                self.drop_if_empty(key);
                reply
            }
            _ => return self.read_at(cmd, now),
        })
    }

    /// SET, with one descent of the keyspace for its key: replaying a log of
    /// SETs into millions of keys is bound by the cache misses of each
    /// descent. Behaves exactly as if an expired key had been purged first:
    /// it is absent, and removed unless overwritten.
    fn set(
        &mut self,
        key: &Bytes,
        value: &Bytes,
        condition: SetCondition,
        get: bool,
        expiry: SetExpiry,
        now: u64,
    ) -> Result<Response, CommandError> {
        // Redis's order: the expiry is checked first, then GET's type, then NX / XX.
        let deadline = match expiry {
            SetExpiry::At(spec) => spec.deadline_ms(now),
            _ => None,
        };
        if matches!(expiry, SetExpiry::At(_)) && deadline.is_none() {
            self.purge_key(key, now);
            return Err(CommandError::InvalidExpireTime("set"));
        }
        let entry = self.keys.entry(Key::new(key));
        let old = match &entry {
            Entry::Occupied(e) => Some(e.get()).filter(|s| s.live(now)),
            Entry::Vacant(_) => None,
        };
        let old_value = match (get, old.map(|s| &s.value)) {
            (true, Some(Value::Str(s))) => Some(s.clone()),
            (true, Some(_)) => return Err(CommandError::WrongType),
            _ => None,
        };
        let allowed = match condition {
            SetCondition::Always => true,
            SetCondition::IfAbsent => old.is_none(),
            SetCondition::IfPresent => old.is_some(),
        };
        // An absolute time already past: the value is written and gone at once.
        let gone = deadline.is_some_and(|d| is_past(d, now));
        let expires_at_ms = match expiry {
            SetExpiry::Keep => old.and_then(|s| s.expires_at_ms),
            _ => deadline.and_then(|d| u64::try_from(d).ok()),
        };
        let action = match (allowed, gone, old.is_some()) {
            (true, false, _) => SetAction::Write(Slot { value: Value::Str(value.clone()), expires_at_ms }),
            (true, true, _) | (false, _, false) => SetAction::Remove,
            (false, _, true) => SetAction::Keep,
        };
        set_entry(entry, action, &mut self.expiries);
        Ok(match (allowed, get) {
            (true, false) => Response::ok(),
            (false, false) => Response::nil(),
            (_, true) => Response::Bulk(old_value),
        })
    }

    fn hincrby(&mut self, key: &Bytes, field: &Bytes, delta: i64) -> Result<Response, CommandError> {
        let Some(h) = self.hash_mut(key, true)? else { return Ok(Response::Integer(0)) };
        let current = match h.get(field) {
            None => 0,
            Some(v) => parse_i64(v).ok_or(CommandError::HashValueNotInteger)?,
        };
        let new = current.checked_add(delta).ok_or(CommandError::Overflow)?;
        h.insert(field.clone(), Bytes::from(new.to_string()));
        Ok(Response::Integer(new))
    }

    /// Read-only commands at time `now`; expired keys look absent.
    pub(crate) fn read_at(&self, cmd: &Command, now: u64) -> Result<Response, CommandError> {
        Ok(match cmd {
            Command::Get { key } => Response::Bulk(self.string(key, now)?.cloned()),
            Command::Exists { keys } => {
                Response::Integer(keys.iter().filter(|k| self.live(k, now).is_some()).count() as i64)
            }
            Command::StrLen { key } => Response::Integer(self.string(key, now)?.map_or(0, |s| s.len() as i64)),
            Command::MGet { keys } => Response::Array(Some(
                keys.iter()
                    .map(|k| match self.live(k, now) {
                        Some(Slot { value: Value::Str(s), .. }) => Response::bulk(s.clone()),
                        _ => Response::nil(),
                    })
                    .collect(),
            )),
            Command::DbSize => {
                let expired = self.expiries.iter().take_while(|(t, _)| *t <= now).count();
                Response::Integer((self.keys.len() - expired) as i64)
            }
            Command::Ttl { key, unit } => Response::Integer(match self.live(key, now) {
                None => -2,
                Some(Slot { expires_at_ms: None, .. }) => -1,
                Some(Slot { expires_at_ms: Some(t), .. }) => {
                    let left = i64::try_from(t - now).unwrap_or(i64::MAX);
                    match unit {
                        TimeUnit::Millis => left,
                        TimeUnit::Seconds => left.saturating_add(500) / 1000,
                    }
                }
            }),
            Command::Type { key } => {
                Response::Simple(self.live(key, now).map_or("none", |s| s.value.type_name()).to_string())
            }
            Command::Keys { pattern } => {
                let pattern = Pattern::new(pattern);
                Response::bulks(
                    self.keys
                        .iter()
                        .filter(|(k, s)| s.live(now) && pattern.matches(&k.bytes))
                        .map(|(k, _)| k.bytes.clone()),
                )
            }
            Command::Scan { cursor, pattern, count, kind } => self.scan(*cursor, pattern.as_ref(), *count, kind, now),
            Command::HGet { key, field } => Response::Bulk(self.hash(key, now)?.and_then(|h| h.get(field)).cloned()),
            Command::HMGet { key, fields } => {
                let h = self.hash(key, now)?;
                Response::Array(Some(
                    fields.iter().map(|f| Response::Bulk(h.and_then(|h| h.get(f)).cloned())).collect(),
                ))
            }
            Command::HGetAll { key } => Response::Map(
                self.hash(key, now)?
                    .into_iter()
                    .flatten()
                    .map(|(f, v)| (Response::bulk(f.clone()), Response::bulk(v.clone())))
                    .collect(),
            ),
            Command::HLen { key } => Response::Integer(self.hash(key, now)?.map_or(0, |h| h.len() as i64)),
            Command::HExists { key, field } => {
                Response::Integer(i64::from(self.hash(key, now)?.is_some_and(|h| h.contains_key(field))))
            }
            Command::LRange { key, start, stop } => {
                let Some(l) = self.list(key, now)? else { return Ok(Response::Array(Some(Vec::new()))) };
                let len = l.len() as i64;
                let start = if *start < 0 { (len + start).max(0) } else { *start };
                let stop = if *stop < 0 { len + stop } else { (*stop).min(len - 1) };
                if start > stop || start >= len {
                    return Ok(Response::Array(Some(Vec::new())));
                }
                Response::bulks(l.range(start as usize..=stop as usize).cloned())
            }
            Command::LLen { key } => Response::Integer(self.list(key, now)?.map_or(0, |l| l.len() as i64)),
            Command::LIndex { key, index } => {
                let Some(l) = self.list(key, now)? else { return Ok(Response::nil()) };
                let i = if *index < 0 { l.len() as i64 + index } else { *index };
                Response::Bulk(usize::try_from(i).ok().and_then(|i| l.get(i)).cloned())
            }
            write => return Err(CommandError::NotReadOnly(write.name())),
        })
    }

    /// SCAN: keys in (hash, bytes) order from the first whose hash is
    /// `>= cursor`; the next cursor is the hash of the first key not visited,
    /// or 0 at the end. COUNT keys are visited (before MATCH and TYPE filter
    /// them), but keys sharing a hash are never split across calls. So a key
    /// present for a whole iteration is returned exactly once, whatever
    /// changes in between, and the calls are the same on every replica.
    fn scan(&self, cursor: u64, pattern: Option<&Bytes>, count: u64, kind: &Option<Bytes>, now: u64) -> Response {
        let pattern = pattern.map(|p| Pattern::new(p));
        let start = Key { hash: cursor, bytes: Bytes::new() };
        let (mut visited, mut last_hash, mut next) = (0u64, None, 0u64);
        let mut found = Vec::new();
        for (k, slot) in self.keys.range(start..) {
            if visited >= count && last_hash != Some(k.hash) {
                next = k.hash;
                break;
            }
            visited += 1;
            last_hash = Some(k.hash);
            let wanted = slot.live(now)
                && pattern.as_ref().is_none_or(|p| p.matches(&k.bytes))
                && kind.as_ref().is_none_or(|t| t[..] == *slot.value.type_name().as_bytes());
            if wanted {
                found.push(k.bytes.clone());
            }
        }
        Response::Array(Some(vec![Response::bulk(next.to_string()), Response::bulks(found)]))
    }
}

/// Carries out SET's decision on the entry of its key, keeping the
/// expiry index in step.
fn set_entry(entry: Entry<'_, Key, Slot>, action: SetAction, expiries: &mut BTreeSet<(u64, Key)>) {
    let (old, new) = match (entry, action) {
        (Entry::Vacant(e), SetAction::Write(slot)) => {
            let new = slot.expires_at_ms.map(|t| (t, e.key().clone()));
            e.insert(slot);
            (None, new)
        }
        (Entry::Occupied(mut e), SetAction::Write(slot)) => {
            let new = slot.expires_at_ms.map(|t| (t, e.key().clone()));
            let old = std::mem::replace(e.get_mut(), slot).expires_at_ms.map(|t| (t, e.key().clone()));
            (old, new)
        }
        (Entry::Occupied(e), SetAction::Remove) => {
            let (k, old) = e.remove_entry();
            (old.expires_at_ms.map(|t| (t, k)), None)
        }
        (_, SetAction::Remove | SetAction::Keep) => (None, None),
    };
    if let Some(old) = old {
        expiries.remove(&old);
    }
    if let Some(new) = new {
        expiries.insert(new);
    }
}
