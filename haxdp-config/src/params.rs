//! keepalived's parameter substitution (keepalived.conf(5), "Parameter substitution"):
//! `$NAME=VALUE` defines a parameter, `$NAME` followed by whitespace (or the end of the
//! line) and `${NAME}` anywhere are replaced by its value, recursively and at the time of
//! use; an undefined parameter is left as written. `$NAME= \` starts a multiline
//! definition whose lines each end with `\` but the last.

use std::collections::HashMap;

use crate::syntax::{conditional_applies, ReadOptions};

/// Substitutions of one line beyond this mean a parameter refers to itself.
const MAX_SUBSTITUTIONS_PER_LINE: usize = 1000;

/// What a line became.
pub(crate) enum ParamLine {
    /// A definition (or part of one): nothing for the parser.
    Consumed,
    /// No parameter in it.
    Unchanged,
    /// The line with its parameters replaced; a multiline parameter gives several lines.
    Substituted(Vec<u8>),
    Error(String),
}

#[derive(Default)]
pub(crate) struct Params {
    defs: HashMap<String, String>,
    /// A multiline definition being read: its name and the lines so far.
    open: Option<(String, Vec<String>)>,
}

impl Params {
    /// The name of a multiline definition that has not ended.
    pub(crate) fn open_definition(&self) -> Option<&str> {
        self.open.as_ref().map(|(n, _)| n.as_str())
    }

    pub(crate) fn line(&mut self, raw: &[u8], opts: &ReadOptions) -> ParamLine {
        if self.open.is_none() && !raw.contains(&b'$') {
            return ParamLine::Unchanged;
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            // The tokenizer reports the encoding with its line.
            return ParamLine::Unchanged;
        };
        let text = text.strip_suffix('\r').unwrap_or(text);
        if let Some((name, mut lines)) = self.open.take() {
            let trimmed = text.trim_end();
            match trimmed.strip_suffix('\\') {
                Some(part) => {
                    lines.push(part.to_string());
                    self.open = Some((name, lines));
                }
                None => {
                    lines.push(text.to_string());
                    self.defs.insert(name, lines.join("\n"));
                }
            }
            return ParamLine::Consumed;
        }
        if let Some((name, value)) = definition(text, opts) {
            if value.trim() == "\\" {
                self.open = Some((name.to_string(), Vec::new()));
            } else {
                self.defs.insert(name.to_string(), value.to_string());
            }
            return ParamLine::Consumed;
        }
        if self.defs.is_empty() {
            return ParamLine::Unchanged;
        }
        let mut out = text.to_string();
        let mut from = 0;
        let mut count = 0;
        while let Some((start, end, name)) = next_reference(&out, from, &self.defs) {
            count += 1;
            if count > MAX_SUBSTITUTIONS_PER_LINE {
                return ParamLine::Error(format!(
                    "parameter ${name} keeps expanding (does it refer to itself?): define it without a reference to itself"
                ));
            }
            let value = self.defs[&name].clone();
            out.replace_range(start..end, &value);
            // Recursive: the value itself is scanned again, from where it was put.
            from = start;
        }
        if count == 0 {
            ParamLine::Unchanged
        } else {
            ParamLine::Substituted(out.into_bytes())
        }
    }
}

/// `[@ID] $NAME=VALUE`: only whitespace before `$` (or before the `@ID` word), no space
/// before `=`.
fn definition<'a>(text: &'a str, opts: &ReadOptions) -> Option<(&'a str, &'a str)> {
    let mut rest = text.trim_start();
    if let Some(cond) = rest.strip_prefix('@') {
        let (id, after) = cond.split_once(char::is_whitespace)?;
        if !conditional_applies(id, opts) {
            return None;
        }
        rest = after.trim_start();
    }
    let body = rest.strip_prefix('$')?;
    let (name, value) = body.split_once('=')?;
    valid_name(name).then_some((name, value))
}

/// Names are `[A-Za-z_][A-Za-z0-9_]*`.
fn valid_name(name: &str) -> bool {
    let mut b = name.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The first `${NAME}`, or `$NAME` followed by whitespace or the end of the line, at or
/// after `from` whose NAME is defined: (start, end, NAME).
fn next_reference(
    s: &str,
    from: usize,
    defs: &HashMap<String, String>,
) -> Option<(usize, usize, String)> {
    let bytes = s.as_bytes();
    let mut i = from;
    while let Some(off) = s.get(i..)?.find('$') {
        let at = i + off;
        if bytes.get(at + 1) == Some(&b'{') {
            if let Some(close) = s[at + 2..].find('}') {
                let name = &s[at + 2..at + 2 + close];
                if valid_name(name) && defs.contains_key(name) {
                    return Some((at, at + 3 + close, name.to_string()));
                }
            }
        } else {
            let len = s[at + 1..]
                .bytes()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                .count();
            let name = &s[at + 1..at + 1 + len];
            let end = at + 1 + len;
            let boundary = bytes.get(end).is_none_or(|c| c.is_ascii_whitespace());
            if boundary && valid_name(name) && defs.contains_key(name) {
                return Some((at, end, name.to_string()));
            }
        }
        i = at + 1;
    }
    None
}
