//! keepalived.conf syntax: lines, comments, quoted strings, `include`, `@host` lines and
//! `{ }` blocks, turned into a tree of statements that the model builder walks.
//!
//! The rules follow keepalived 2.2's reader (`lib/parser.c`), checked against
//! `keepalived -t`:
//! - `!` and `#` start a comment only at the start of a token, so `auth_pass ab#cd` keeps
//!   `ab#cd` while `interval 1 #注释` drops the comment;
//! - `{` and `}` are tokens of their own even without spaces (`vrrp_script chk{`);
//! - a block's `{` may be on the keyword's line or alone on the next line;
//! - one statement per line: `virtual_ipaddress { 192.0.2.1 192.0.2.2 }` is one address with
//!   an (invalid) option, as in keepalived.

use std::path::{Path, PathBuf};

use crate::diag::{Diags, Location, Severity};
use crate::params::{ParamLine, Params};

/// Include nesting deeper than this is refused (keepalived stops at a similar depth); it
/// also bounds the reader's recursion.
const MAX_INCLUDE_DEPTH: usize = 16;
/// Block nesting deeper than this is refused; keepalived's own grammar never goes past 4,
/// and the bound keeps the recursive parser's stack small on hostile input.
const MAX_BLOCK_DEPTH: usize = 16;
/// After this many lexical errors in one file the rest of it is not read: a binary file
/// would otherwise produce one error per line.
const MAX_LEX_ERRORS_PER_FILE: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
enum TokKind {
    Word(String),
    Open,
    Close,
    Eol,
}

#[derive(Debug, Clone)]
struct Tok {
    kind: TokKind,
    file: usize,
    line: u32,
}

/// One statement: `keyword arg arg ... [{ children }]`.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) kw: String,
    pub(crate) args: Vec<String>,
    pub(crate) block: Option<Vec<Node>>,
    pub(crate) loc: Location,
    /// Line of the closing `}` (same file as `loc` unless an include ends inside a block).
    pub(crate) end_line: u32,
}

/// Options that change which lines apply.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// The identity `@ID` line prefixes are matched against (keepalived's `-i`/config_id,
    /// which defaults to the short host name). `None`: every `@ID` line is skipped and
    /// every `@^ID` line applies.
    pub config_id: Option<String>,
}

struct Reader<'a> {
    diags: &'a mut Diags,
    opts: &'a ReadOptions,
    files: Vec<PathBuf>,
    toks: Vec<Tok>,
    /// Canonical paths of the files being read, outermost first: an include of one of them
    /// is a loop.
    stack: Vec<PathBuf>,
    /// Canonical paths of every file read so far: each is read once per load, so that
    /// files that all include their own directory are read once each, not once per
    /// ordering (a factorial number of times).
    read: std::collections::HashSet<PathBuf>,
    /// `$NAME=VALUE` definitions seen so far, across includes, as keepalived keeps them.
    params: Params,
}

/// Reads `path` and everything it includes into a statement tree. `Err` only when the top
/// file itself cannot be read; every other problem is a diagnostic.
pub(crate) fn read_tree(
    path: &Path,
    opts: &ReadOptions,
    diags: &mut Diags,
) -> std::io::Result<Vec<Node>> {
    let bytes = std::fs::read(path)?;
    let mut r = Reader {
        diags,
        opts,
        files: Vec::new(),
        toks: Vec::new(),
        stack: Vec::new(),
        read: std::collections::HashSet::new(),
        params: Params::default(),
    };
    r.read_file(path, &bytes);
    let files = std::mem::take(&mut r.files);
    let toks = std::mem::take(&mut r.toks);
    let mut p = Parser {
        toks,
        pos: 0,
        files,
        diags: r.diags,
    };
    Ok(p.parse_seq(0, None))
}

/// Parses text that is not on disk (tests, fuzzing): `include` is resolved relative to
/// `name`'s directory.
pub(crate) fn read_tree_from_bytes(
    name: &Path,
    bytes: &[u8],
    opts: &ReadOptions,
    diags: &mut Diags,
) -> Vec<Node> {
    let mut r = Reader {
        diags,
        opts,
        files: Vec::new(),
        toks: Vec::new(),
        stack: Vec::new(),
        read: std::collections::HashSet::new(),
        params: Params::default(),
    };
    r.read_file(name, bytes);
    let files = std::mem::take(&mut r.files);
    let toks = std::mem::take(&mut r.toks);
    let mut p = Parser {
        toks,
        pos: 0,
        files,
        diags: r.diags,
    };
    p.parse_seq(0, None)
}

/// Whether a conditional line `@ID ...` (`id` is what follows the `@`) applies: `@ID` where
/// config_id is ID, `@^ID` everywhere else.
pub(crate) fn conditional_applies(id: &str, opts: &ReadOptions) -> bool {
    let (negate, id) = match id.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, id),
    };
    (opts.config_id.as_deref() == Some(id)) != negate
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c')
}

/// Splits one line into tokens; `Err` carries a message for the whole line.
fn tokenize(line: &[u8]) -> Result<Vec<TokKind>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        if is_space(c) {
            i += 1;
            continue;
        }
        if c == b'!' || c == b'#' {
            break;
        }
        let raw: &[u8] = match c {
            b'{' => {
                out.push(TokKind::Open);
                i += 1;
                continue;
            }
            b'}' => {
                out.push(TokKind::Close);
                i += 1;
                continue;
            }
            b'"' => {
                let rest = &line[i + 1..];
                let Some(end) = rest.iter().position(|&b| b == b'"') else {
                    return Err(
                        "unterminated quoted string: add the closing '\"' on the same line".into(),
                    );
                };
                i += end + 2;
                &rest[..end]
            }
            _ => {
                let start = i;
                while i < line.len() && !is_space(line[i]) && line[i] != b'{' && line[i] != b'}' {
                    i += 1;
                }
                &line[start..i]
            }
        };
        if raw.contains(&0) {
            return Err(
                "line contains a NUL byte: is this a binary file rather than a keepalived.conf?"
                    .into(),
            );
        }
        match std::str::from_utf8(raw) {
            Ok(s) => out.push(TokKind::Word(s.to_string())),
            Err(_) => {
                return Err(
                    "line is not valid UTF-8 text outside comments: is this a binary file, or a config saved in another encoding?"
                        .into(),
                )
            }
        }
    }
    Ok(out)
}

impl Reader<'_> {
    fn read_file(&mut self, path: &Path, bytes: &[u8]) {
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let file_idx = self.files.len();
        self.files.push(path.to_path_buf());
        self.read.insert(canon.clone());
        self.stack.push(canon);
        let mut lex_errors = 0usize;
        for (n, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line_no = u32::try_from(n + 1).unwrap_or(u32::MAX);
            let substituted;
            let lines: Vec<&[u8]> = match self.params.line(raw, self.opts) {
                ParamLine::Consumed => continue,
                ParamLine::Unchanged => vec![raw],
                ParamLine::Substituted(text) => {
                    substituted = text;
                    substituted.split(|&b| b == b'\n').collect()
                }
                ParamLine::Error(msg) => {
                    self.diags.push(Severity::Error, path, line_no, "", msg);
                    continue;
                }
            };
            for raw in lines {
                if !self.line(path, file_idx, line_no, raw, &mut lex_errors) {
                    self.stack.pop();
                    return;
                }
            }
        }
        if let Some(name) = self.params.open_definition() {
            self.diags.push(
                Severity::Error,
                path,
                u32::try_from(bytes.split(|&b| b == b'\n').count()).unwrap_or(u32::MAX),
                "",
                format!("the multiline definition of ${name} is still open at the end of the file: its last line must not end with '\\'"),
            );
        }
        self.stack.pop();
    }

    /// One line after parameter substitution. False once the file has too many unreadable
    /// lines to go on.
    fn line(
        &mut self,
        path: &Path,
        file_idx: usize,
        line_no: u32,
        raw: &[u8],
        lex_errors: &mut usize,
    ) -> bool {
        let mut toks = match tokenize(raw) {
            Ok(t) => t,
            Err(msg) => {
                self.diags.push(Severity::Error, path, line_no, "", msg);
                *lex_errors += 1;
                if *lex_errors >= MAX_LEX_ERRORS_PER_FILE {
                    self.diags.push(
                        Severity::Error,
                        path,
                        line_no,
                        "",
                        "too many unreadable lines; the rest of this file was not read",
                    );
                    return false;
                }
                return true;
            }
        };
        if toks.is_empty() {
            return true;
        }
        // keepalived's conditional lines: `@ID rest` applies only where config_id is
        // ID, `@^ID rest` everywhere else.
        if let TokKind::Word(w) = &toks[0] {
            if let Some(id) = w.strip_prefix('@') {
                if !conditional_applies(id, self.opts) {
                    return true;
                }
                toks.remove(0);
                if toks.is_empty() {
                    return true;
                }
            }
        }
        if toks[0] == TokKind::Word("include".into()) {
            self.include(path, line_no, &toks);
            return true;
        }
        for kind in toks {
            self.toks.push(Tok {
                kind,
                file: file_idx,
                line: line_no,
            });
        }
        self.toks.push(Tok {
            kind: TokKind::Eol,
            file: file_idx,
            line: line_no,
        });
        true
    }

    fn include(&mut self, path: &Path, line: u32, toks: &[TokKind]) {
        let pattern = match toks {
            [_, TokKind::Word(p)] => p.clone(),
            _ => {
                self.diags.push(
                    Severity::Error,
                    path,
                    line,
                    "include",
                    "include takes exactly one file name or glob pattern",
                );
                return;
            }
        };
        // Relative includes are resolved against the including file's directory.
        let full = if Path::new(&pattern).is_absolute() {
            PathBuf::from(&pattern)
        } else {
            path.parent()
                .unwrap_or_else(|| Path::new("."))
                .join(&pattern)
        };
        let full_str = full.to_string_lossy().into_owned();
        let entries = match glob::glob(&full_str) {
            Ok(e) => e,
            Err(e) => {
                self.diags.push(
                    Severity::Error,
                    path,
                    line,
                    "include",
                    format!("invalid include pattern '{pattern}': {e}"),
                );
                return;
            }
        };
        let mut matches: Vec<PathBuf> = Vec::new();
        for entry in entries {
            match entry {
                Ok(p) => matches.push(p),
                Err(e) => self.diags.push(
                    Severity::Error,
                    path,
                    line,
                    "include",
                    format!("cannot read {}: {}", e.path().display(), e.error()),
                ),
            }
        }
        if matches.is_empty() {
            self.diags.push(
                Severity::Warning,
                path,
                line,
                "include",
                format!("include '{pattern}' matched no file ({full_str}); nothing included"),
            );
            return;
        }
        matches.sort();
        for inc in matches {
            let canon = std::fs::canonicalize(&inc).unwrap_or_else(|_| inc.clone());
            if let Some(pos) = self.stack.iter().position(|p| *p == canon) {
                let chain: Vec<String> = self.stack[pos..]
                    .iter()
                    .map(|p| p.display().to_string())
                    .chain(std::iter::once(canon.display().to_string()))
                    .collect();
                self.diags.push(
                    Severity::Error,
                    path,
                    line,
                    "include",
                    format!("include loop: {}", chain.join(" -> ")),
                );
                continue;
            }
            if self.read.contains(&canon) {
                self.diags.push(
                    Severity::Warning,
                    path,
                    line,
                    "include",
                    format!(
                        "{} is included more than once; it is read once",
                        canon.display()
                    ),
                );
                continue;
            }
            if self.stack.len() >= MAX_INCLUDE_DEPTH {
                self.diags.push(
                    Severity::Error,
                    path,
                    line,
                    "include",
                    format!("includes nested deeper than {MAX_INCLUDE_DEPTH} files"),
                );
                continue;
            }
            if inc.is_dir() {
                // keepalived's glob also skips directories.
                continue;
            }
            match std::fs::read(&inc) {
                Ok(bytes) => self.read_file(&inc, &bytes),
                Err(e) => self.diags.push(
                    Severity::Error,
                    path,
                    line,
                    "include",
                    format!(
                        "cannot read included file {}: {e}; check the path and its permissions",
                        inc.display()
                    ),
                ),
            }
        }
    }
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    files: Vec<PathBuf>,
    diags: &'a mut Diags,
}

impl Parser<'_> {
    fn loc(&self, t: &Tok) -> Location {
        Location {
            file: self.files[t.file].clone(),
            line: t.line,
        }
    }

    /// Statements until the `}` closing `opener` (or the end of input at top level).
    fn parse_seq(&mut self, depth: usize, opener: Option<(&str, &Location)>) -> Vec<Node> {
        let mut out = Vec::new();
        loop {
            let Some(tok) = self.toks.get(self.pos).cloned() else {
                if let Some((kw, at)) = opener {
                    self.diags.error_at(
                        at,
                        kw,
                        format!(
                            "'{kw}' block opened at line {} is never closed: add the missing '}}'",
                            at.line
                        ),
                    );
                }
                return out;
            };
            match tok.kind {
                TokKind::Eol => self.pos += 1,
                TokKind::Close => {
                    self.pos += 1;
                    if opener.is_some() {
                        return out;
                    }
                    let loc = self.loc(&tok);
                    self.diags.error_at(
                        &loc,
                        "}",
                        "unexpected '}': no block is open here; remove it",
                    );
                }
                TokKind::Open => {
                    self.pos += 1;
                    let loc = self.loc(&tok);
                    self.diags.error_at(
                        &loc,
                        "{",
                        "'{' without a keyword before it: a block must follow a keyword such as vrrp_instance NAME",
                    );
                    self.block(depth, "{", &loc);
                }
                TokKind::Word(_) => out.push(self.statement(depth)),
            }
        }
    }

    fn statement(&mut self, depth: usize) -> Node {
        let first = self.toks[self.pos].clone();
        self.pos += 1;
        let loc = self.loc(&first);
        let kw = match first.kind {
            TokKind::Word(w) => w,
            _ => String::new(),
        };
        let mut args = Vec::new();
        while let Some(Tok {
            kind: TokKind::Word(w),
            ..
        }) = self.toks.get(self.pos)
        {
            args.push(w.clone());
            self.pos += 1;
        }
        let mut end_line = loc.line;
        let opens_here = matches!(
            self.toks.get(self.pos).map(|t| &t.kind),
            Some(TokKind::Open)
        );
        // `keyword NAME` newline `{`: the brace may start the next line.
        let opens_next = !opens_here
            && matches!(self.toks.get(self.pos).map(|t| &t.kind), Some(TokKind::Eol))
            && matches!(
                self.toks.get(self.pos + 1).map(|t| &t.kind),
                Some(TokKind::Open)
            );
        let block = if opens_here || opens_next {
            if opens_next {
                self.pos += 1;
            }
            self.pos += 1;
            let children = self.block(depth, &kw, &loc);
            if let Some(prev) = self.pos.checked_sub(1).and_then(|p| self.toks.get(p)) {
                end_line = prev.line;
            }
            Some(children)
        } else {
            None
        };
        Node {
            kw,
            args,
            block,
            loc,
            end_line,
        }
    }

    /// The inside of a block whose `{` was just consumed.
    fn block(&mut self, depth: usize, kw: &str, at: &Location) -> Vec<Node> {
        if depth + 1 >= MAX_BLOCK_DEPTH {
            self.diags.error_at(
                at,
                kw,
                format!("blocks nested deeper than {MAX_BLOCK_DEPTH} levels"),
            );
            // Skip to the matching brace without recursing.
            let mut level = 1usize;
            while let Some(t) = self.toks.get(self.pos) {
                self.pos += 1;
                match t.kind {
                    TokKind::Open => level += 1,
                    TokKind::Close => {
                        level -= 1;
                        if level == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            return Vec::new();
        }
        self.parse_seq(depth + 1, Some((kw, at)))
    }
}
