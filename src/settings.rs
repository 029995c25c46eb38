//! Reading validated TOML sections: every key is checked against the
//! section's list (unknown keys are errors, as serde's `deny_unknown_fields`),
//! every value against its type and range, and every problem is collected,
//! named by its key (`flow.udp_timeout`), instead of stopping at the first.
//! Used by the general configuration and by each detector's own section.

use toml::{Table, Value};

/// Collects the errors of one configuration.
pub struct Check<'a> {
    pub errors: &'a mut Vec<String>,
}

impl Check<'_> {
    pub fn section<'t>(&mut self, root: &'t Table, name: &str, keys: &[&str]) -> Option<&'t Table> {
        let v = root.get(name)?;
        let Some(t) = v.as_table() else {
            self.errors
                .push(format!("{name}: expected a table [{name}]"));
            return None;
        };
        for k in t.keys() {
            if !keys.contains(&k.as_str()) {
                self.errors.push(format!(
                    "{name}.{k}: unknown key (known: {})",
                    keys.join(", ")
                ));
            }
        }
        Some(t)
    }

    pub fn int(
        &mut self,
        t: Option<&Table>,
        sec: &str,
        key: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> u64 {
        let Some(v) = t.and_then(|t| t.get(key)) else {
            return default;
        };
        match v.as_integer().and_then(|i| u64::try_from(i).ok()) {
            Some(i) if (min..=max).contains(&i) => i,
            Some(i) => {
                self.errors
                    .push(format!("{sec}.{key}: {i} is out of range {min}..={max}"));
                default
            }
            None => {
                self.errors.push(format!(
                    "{sec}.{key}: expected a non-negative integer, found {}",
                    type_name(v)
                ));
                default
            }
        }
    }

    /// [`Self::int`] for a u32 setting: the range is u32, so the value is.
    pub fn int_u32(
        &mut self,
        t: Option<&Table>,
        sec: &str,
        key: &str,
        default: u32,
        min: u32,
        max: u32,
    ) -> u32 {
        let v = self.int(t, sec, key, default.into(), min.into(), max.into());
        u32::try_from(v).unwrap_or(default)
    }

    pub fn float(
        &mut self,
        t: Option<&Table>,
        sec: &str,
        key: &str,
        default: f64,
        min: f64,
        max: f64,
    ) -> f64 {
        let Some(v) = t.and_then(|t| t.get(key)) else {
            return default;
        };
        #[allow(clippy::cast_precision_loss)]
        let x = match v {
            Value::Float(f) => Some(*f),
            Value::Integer(i) => Some(*i as f64),
            _ => None,
        };
        match x {
            Some(x) if x >= min && x <= max => x,
            Some(x) => {
                self.errors
                    .push(format!("{sec}.{key}: {x} is out of range {min}..={max}"));
                default
            }
            None => {
                self.errors.push(format!(
                    "{sec}.{key}: expected a number, found {}",
                    type_name(v)
                ));
                default
            }
        }
    }

    pub fn boolean(&mut self, t: Option<&Table>, sec: &str, key: &str, default: bool) -> bool {
        match t.and_then(|t| t.get(key)) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(v) => {
                self.errors.push(format!(
                    "{sec}.{key}: expected true or false, found {}",
                    type_name(v)
                ));
                default
            }
        }
    }

    pub fn string(&mut self, t: Option<&Table>, sec: &str, key: &str) -> Option<String> {
        match t.and_then(|t| t.get(key)) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                self.errors.push(format!(
                    "{sec}.{key}: expected a string, found {}",
                    type_name(v)
                ));
                None
            }
        }
    }

    pub fn strings(&mut self, t: Option<&Table>, sec: &str, key: &str) -> Option<Vec<String>> {
        match t.and_then(|t| t.get(key)) {
            None => None,
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v.as_str() {
                        Some(s) => out.push(s.to_owned()),
                        None => self.errors.push(format!(
                            "{sec}.{key}[{i}]: expected a string, found {}",
                            type_name(v)
                        )),
                    }
                }
                Some(out)
            }
            Some(v) => {
                self.errors.push(format!(
                    "{sec}.{key}: expected an array of strings, found {}",
                    type_name(v)
                ));
                None
            }
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    v.type_str()
}
