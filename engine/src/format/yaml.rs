//! The YAML subset of metadata files (SPEC 5.1.1, `[Y6]`–`[Y9]`): a small hand-written parser
//! that accepts exactly the documents of the subset's grammar and refuses everything else, so
//! that every document it accepts means the same to PyYAML (YAML 1.1), to a YAML 1.2 parser and
//! to this engine. It never panics, never expands anything (there are no anchors or aliases in
//! the subset), and bounds its recursion ([Y8]: at most [`MAX_DEPTH`] nested collections).

/// Most nested collections (the root mapping counts as 1) a document may have ([Y8]).
pub const MAX_DEPTH: usize = 16;

/// An integer scalar ([Y7]): its sign and, when it fits, its magnitude.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IntScalar {
    /// `-` in front.
    pub negative: bool,
    /// The magnitude, `None` when it is 2^64 or more.
    pub magnitude: Option<u64>,
}

impl IntScalar {
    /// The value when it is a size: non-negative and at most 2^64 - 1.
    pub fn size(self) -> Option<u64> {
        match (self.negative, self.magnitude) {
            (false, m) => m,
            (true, Some(0)) => Some(0),
            (true, _) => None,
        }
    }
}

/// A node of a document of the subset.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// `null`, or a key with no value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A decimal integer.
    Int(IntScalar),
    /// A decimal fraction (`1.5`); its value is never needed.
    Float,
    /// A plain or quoted string.
    Str(String),
    /// A block or flow sequence.
    Seq(Vec<Node>),
    /// A block mapping (or `{}`), keys in document order, no duplicates.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// What the node is, for error messages.
    pub fn describe(&self) -> String {
        match self {
            Node::Null => "null".into(),
            Node::Bool(b) => format!("the boolean {b}"),
            Node::Int(i) => match (i.negative, i.magnitude) {
                (n, Some(m)) => format!("the integer {}{m}", if n { "-" } else { "" }),
                _ => "an integer that does not fit in 64 bits".into(),
            },
            Node::Float => "a float".into(),
            Node::Str(s) => format!("the string {s:?}"),
            Node::Seq(_) => "a sequence".into(),
            Node::Map(_) => "a mapping".into(),
        }
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Plain scalars that some YAML schema reads as a boolean or null ([Y7]); only the lowercase
/// `true`, `false` and `null` are in the subset.
const RESERVED: [&str; 9] = ["y", "n", "yes", "no", "on", "off", "true", "false", "null"];

/// Parses a document of the subset. `Err` is a one-line description with the line number.
pub(crate) fn parse(text: &str) -> Result<Node, String> {
    check_chars(text)?;
    let lines = content_lines(text)?;
    let mut p = Parser { lines, pos: 0 };
    let Some(first) = p.lines.first() else {
        return Err("the document is empty: the root must be a mapping".into());
    };
    if first.indent != 0 {
        return Err(format!(
            "line {}: the root mapping must start in column 1",
            first.no
        ));
    }
    if is_seq_item(first.text) {
        return Err(format!(
            "line {}: the root is a sequence, it must be a mapping",
            first.no
        ));
    }
    let root = p.map(0, 1)?;
    if let Some(l) = p.lines.get(p.pos) {
        return Err(format!("line {}: unexpected indentation or content", l.no));
    }
    Ok(root)
}

/// Whether `text` is one of daf's 0-d items as PyYAML `dump` writes a single scalar (SPEC [A1],
/// e.g. `2026-12-02 07:11:41.123456` then `...`): the characters and marker lines of [Y6], exactly
/// one content line, in column 1, that is a scalar of [Y7] or a plain text line (no indicator
/// first, neither `: ` nor ` #` inside, no final `:`, so it is neither a key nor a collection).
pub(crate) fn is_daf_item(text: &str) -> bool {
    if check_chars(text).is_err() {
        return false;
    }
    let Ok(lines) = content_lines(text) else {
        return false;
    };
    let [line] = lines.as_slice() else {
        return false;
    };
    let t = line.text;
    if line.indent != 0 {
        return false;
    }
    if inline(t, 1).is_ok_and(|n| !matches!(n, Node::Seq(_) | Node::Map(_))) {
        return true;
    }
    let indicator = t
        .chars()
        .next()
        .is_some_and(|c| "-?:,[]{}#&*!|>'\"%@`".contains(c));
    !indicator && !t.contains(": ") && !t.contains(" #") && !t.ends_with(':')
}

/// [Y6]: the only control character is the line feed; no BOM, no tab, no carriage return, no
/// C1 control (U+0085 is a line break in YAML 1.1), no U+2028/U+2029 (line breaks in 1.1).
fn check_chars(text: &str) -> Result<(), String> {
    for (i, line) in text.split('\n').enumerate() {
        for c in line.chars() {
            let bad = c < ' '
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || c == '\u{2028}'
                || c == '\u{2029}'
                || c == '\u{feff}';
            if bad {
                return Err(format!(
                    "line {}: character U+{:04X} is not allowed in metadata (only the line feed \
                     ends a line; no tab, carriage return, byte order mark or other control)",
                    i + 1,
                    c as u32
                ));
            }
        }
    }
    Ok(())
}

#[derive(Debug)]
struct Line<'a> {
    no: usize,
    indent: usize,
    text: &'a str,
}

/// The lines holding content: blank and comment lines dropped, the optional `---` first and
/// `...` last marker lines removed ([Y6]); directives and further documents refused.
fn content_lines(text: &str) -> Result<Vec<Line<'_>>, String> {
    let mut out = Vec::new();
    let mut started = false;
    let mut ended = false;
    for (i, raw) in text.split('\n').enumerate() {
        let no = i + 1;
        let line = raw.trim_end_matches(' ');
        let body = line.trim_start_matches(' ');
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if line.starts_with('%') {
            return Err(format!(
                "line {no}: a directive ({line}); directives are outside the metadata subset"
            ));
        }
        if ended {
            return Err(format!(
                "line {no}: content after the document end marker `...`"
            ));
        }
        if line.starts_with("---") {
            if line != "---" || started {
                return Err(format!(
                    "line {no}: `---` is allowed only alone on the first line of content (one \
                     document)"
                ));
            }
            started = true;
            continue;
        }
        if line.starts_with("...") {
            if line != "..." {
                return Err(format!("line {no}: `...` must be alone on its line"));
            }
            ended = true;
            continue;
        }
        started = true;
        out.push(Line {
            no,
            indent: line.len() - body.len(),
            text: body,
        });
    }
    Ok(out)
}

fn is_seq_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

struct Parser<'a> {
    lines: Vec<Line<'a>>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn depth_check(&self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            let no = self.lines.get(self.pos).map_or(0, |l| l.no);
            return Err(format!(
                "line {no}: more than {MAX_DEPTH} nested collections"
            ));
        }
        Ok(())
    }

    /// A block node starting at the current line, whose indentation is at least `min`.
    fn block(&mut self, depth: usize) -> Result<Node, String> {
        let l = &self.lines[self.pos];
        let indent = l.indent;
        if is_seq_item(l.text) {
            self.seq(indent, depth)
        } else {
            self.map(indent, depth)
        }
    }

    /// A block mapping whose keys are at column `indent`.
    fn map(&mut self, indent: usize, depth: usize) -> Result<Node, String> {
        self.depth_check(depth)?;
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some(l) = self.lines.get(self.pos) {
            if l.indent < indent {
                break;
            }
            if l.indent > indent {
                return Err(format!("line {}: unexpected indentation", l.no));
            }
            if is_seq_item(l.text) {
                return Err(format!(
                    "line {}: a sequence item where a mapping key was expected",
                    l.no
                ));
            }
            let no = l.no;
            let (key, rest) = split_key(l.text)
                .map_err(|e| format!("line {no}: {e}"))?
                .ok_or_else(|| {
                    format!(
                        "line {no}: expected `key: value` (a mapping entry), found {:?}",
                        l.text
                    )
                })?;
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(format!(
                    "line {no}: duplicate key {key:?} (keys must be unique in every mapping)"
                ));
            }
            let rest = strip_comment(rest).map_err(|e| format!("line {no}: {e}"))?;
            self.pos += 1;
            let value = if rest.is_empty() {
                match self.lines.get(self.pos) {
                    Some(next) if next.indent > indent => self.block(depth + 1)?,
                    Some(next) if next.indent == indent && is_seq_item(next.text) => {
                        self.seq(indent, depth + 1)?
                    }
                    _ => Node::Null,
                }
            } else {
                inline(rest, depth + 1).map_err(|e| format!("line {no}: {e}"))?
            };
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }

    /// A block sequence whose `-` are at column `indent`.
    fn seq(&mut self, indent: usize, depth: usize) -> Result<Node, String> {
        self.depth_check(depth)?;
        let mut items = Vec::new();
        while let Some(l) = self.lines.get(self.pos) {
            if l.indent != indent || !is_seq_item(l.text) {
                if l.indent > indent {
                    return Err(format!("line {}: unexpected indentation", l.no));
                }
                break;
            }
            let no = l.no;
            let after = &l.text[1..];
            let rest = after.trim_start_matches(' ');
            if rest.is_empty() || rest.starts_with('#') {
                self.pos += 1;
                let item = match self.lines.get(self.pos) {
                    Some(next) if next.indent > indent => self.block(depth + 1)?,
                    _ => Node::Null,
                };
                items.push(item);
                continue;
            }
            // Compact forms: `- - x` (a nested sequence) and `- key: value` (a mapping whose
            // keys are at the column of `key`): the rest of the line is a line of its own.
            let column = indent + 1 + (after.len() - rest.len());
            if is_seq_item(rest) || split_key(rest).ok().flatten().is_some() {
                self.lines[self.pos].indent = column;
                self.lines[self.pos].text = rest;
                items.push(self.block(depth + 1)?);
                continue;
            }
            let rest = strip_comment(rest).map_err(|e| format!("line {no}: {e}"))?;
            items.push(inline(rest, depth + 1).map_err(|e| format!("line {no}: {e}"))?);
            self.pos += 1;
        }
        Ok(Node::Seq(items))
    }
}

/// Splits `key: rest`; `Ok(None)` when the line is not a mapping entry.
fn split_key(text: &str) -> Result<Option<(String, &str)>, String> {
    let (key, after) = if text.starts_with('\'') || text.starts_with('"') {
        let (s, after) = quoted(text)?;
        (s, after)
    } else {
        let end = text.find(|c: char| !is_plain_char(c)).unwrap_or(text.len());
        let key = &text[..end];
        let after = &text[end..];
        if !after.starts_with(':') {
            return Ok(None);
        }
        if key.is_empty() {
            return Ok(None);
        }
        if !plain_string(key) {
            return Err(format!(
                "key {key:?} is not a string of the subset (a key is a plain word starting \
                 with a letter or `_`, or a quoted string)"
            ));
        }
        (key.to_string(), after)
    };
    match after.strip_prefix(':') {
        Some(rest) if rest.is_empty() || rest.starts_with(' ') => {
            Ok(Some((key, rest.trim_start_matches(' '))))
        }
        _ => Ok(None),
    }
}

/// Removes a trailing ` # comment` from the rest of a line that holds a scalar or a flow
/// sequence; the caller has already removed the leading spaces.
fn strip_comment(rest: &str) -> Result<&str, String> {
    if rest.starts_with('#') {
        return Ok("");
    }
    if rest.starts_with('\'') || rest.starts_with('"') {
        let (_, after) = quoted(rest)?;
        let tail = after.trim_start_matches(' ');
        if tail.is_empty() {
            return Ok(rest);
        }
        if tail.starts_with('#') && tail.len() < after.len() {
            return Ok(&rest[..rest.len() - after.len()]);
        }
        return Err(format!("unexpected {tail:?} after a quoted string"));
    }
    let bytes = rest.as_bytes();
    let mut in_quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match in_quote {
            Some(q) => {
                if b == b'\\' && q == b'"' {
                    i += 1;
                } else if b == q {
                    in_quote = None;
                }
            }
            None => {
                if b == b'\'' || b == b'"' {
                    in_quote = Some(b);
                } else if b == b'#' && i > 0 && bytes[i - 1] == b' ' {
                    return Ok(rest[..i].trim_end_matches(' '));
                }
            }
        }
        i += 1;
    }
    Ok(rest)
}

fn is_plain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '/' | '-')
}

/// A plain string of the subset ([Y7]): `[A-Za-z_][A-Za-z0-9_.+/-]*`, not a reserved word.
fn plain_string(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && chars.all(is_plain_char) && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s))
}

/// `s` as a scalar of the subset that parses back to the string `s`, the way PyYAML writes it:
/// plain when it is a plain word ([Y7]), else single-quoted (`''` for a quote), or double-quoted
/// with `\uXXXX` escapes when it holds a character a metadata file may not hold raw ([Y6]).
pub(crate) fn render_string(s: &str) -> String {
    if plain_string(s) {
        return s.to_string();
    }
    let raw_ok = |c: char| {
        !(c < ' '
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || c == '\u{2028}'
            || c == '\u{2029}'
            || c == '\u{feff}')
    };
    if s.chars().all(raw_ok) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if raw_ok(c) => out.push(c),
            // Every character that needs an escape is in the Basic Multilingual Plane.
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// A value written on the line of its key or `-` ([Y7]): a scalar, a flow sequence of scalars,
/// `[]` or `{}`.
fn inline(text: &str, depth: usize) -> Result<Node, String> {
    if text == "{}" {
        return Ok(Node::Map(Vec::new()));
    }
    if text.starts_with('{') {
        return Err("a flow mapping ({...}) is outside the metadata subset; only {} is".into());
    }
    if let Some(inner) = text.strip_prefix('[') {
        if depth > MAX_DEPTH {
            return Err(format!("more than {MAX_DEPTH} nested collections"));
        }
        let inner = inner
            .strip_suffix(']')
            .ok_or("a flow sequence must close with `]` on its line")?;
        let mut items = Vec::new();
        if inner.trim_matches(' ').is_empty() {
            return Ok(Node::Seq(items));
        }
        let mut rest = inner;
        loop {
            let t = rest.trim_start_matches(' ');
            let (item, after) = if t.starts_with('\'') || t.starts_with('"') {
                let (s, after) = quoted(t)?;
                (Node::Str(s), after)
            } else {
                let end = t.find([',', ']', ' ']).unwrap_or(t.len());
                let tok = &t[..end];
                if tok.starts_with('[') || tok.starts_with('{') {
                    return Err(
                        "a collection inside a flow sequence is outside the metadata subset".into(),
                    );
                }
                (scalar(tok)?, &t[end..])
            };
            items.push(item);
            let after = after.trim_start_matches(' ');
            if after.is_empty() {
                break;
            }
            match after.strip_prefix(',') {
                Some(r) if !r.trim_start_matches(' ').is_empty() => rest = r,
                _ => {
                    return Err(format!(
                        "unexpected {after:?} in a flow sequence (items are separated by `,`; \
                         no trailing comma)"
                    ))
                }
            }
        }
        return Ok(Node::Seq(items));
    }
    if text.starts_with('\'') || text.starts_with('"') {
        let (s, after) = quoted(text)?;
        if !after.trim_start_matches(' ').is_empty() {
            return Err(format!("unexpected {after:?} after a quoted string"));
        }
        return Ok(Node::Str(s));
    }
    scalar(text)
}

/// A plain scalar ([Y7]): a decimal integer, a decimal fraction, `true`, `false`, `null`, or a
/// plain string. Anything else (octal `010`, `+3`, `1_0`, `1e3`, `.inf`, `yes`, `~`, an anchor,
/// an alias, a tag, a block scalar indicator ...) is refused: quote strings that are not words.
fn scalar(tok: &str) -> Result<Node, String> {
    match tok {
        "true" => return Ok(Node::Bool(true)),
        "false" => return Ok(Node::Bool(false)),
        "null" => return Ok(Node::Null),
        _ => {}
    }
    let (negative, digits) = match tok.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, tok),
    };
    let decimal = |d: &str| {
        !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && (d == "0" || !d.starts_with('0'))
    };
    if decimal(digits) {
        return Ok(Node::Int(IntScalar {
            negative,
            magnitude: digits.parse::<u64>().ok(),
        }));
    }
    if let Some((whole, frac)) = digits.split_once('.') {
        if decimal(whole) && !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Node::Float);
        }
    }
    if plain_string(tok) {
        return Ok(Node::Str(tok.to_string()));
    }
    let why = match tok.chars().next() {
        Some('&') => "an anchor",
        Some('*') => "an alias",
        Some('!') => "a tag",
        Some('|') | Some('>') => "a block scalar",
        Some('<') if tok.starts_with("<<") => "a merge key",
        _ => "not an integer, a decimal fraction, true, false, null or a plain word",
    };
    Err(format!(
        "{tok:?} is {why}: outside the metadata subset (quote strings that are not plain words)"
    ))
}

/// A quoted string at the start of `text`: its value and the text after the closing quote.
/// Single-quoted: `''` is a quote. Double-quoted: the escapes `\\`, `\"`, `\n`, `\t` and
/// `\uXXXX` (not a surrogate) only. Both end on the line they start on.
fn quoted(text: &str) -> Result<(String, &str), String> {
    let q = text.chars().next().unwrap_or('\'');
    let body = &text[1..];
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == q {
            if q == '\'' && body[i + 1..].starts_with('\'') {
                chars.next();
                out.push('\'');
                continue;
            }
            return Ok((out, &body[i + 1..]));
        }
        if q == '"' && c == '\\' {
            match chars.next().map(|(_, e)| e) {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('u') => {
                    let hex: String = (0..4)
                        .filter_map(|_| chars.next().map(|(_, h)| h))
                        .collect();
                    let ch = (hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                        .then(|| u32::from_str_radix(&hex, 16).ok())
                        .flatten()
                        .and_then(char::from_u32)
                        .ok_or_else(|| {
                            format!("\\u{hex} is not a \\uXXXX escape of a character")
                        })?;
                    out.push(ch);
                }
                other => {
                    return Err(format!(
                        "escape \\{} is outside the metadata subset (only \\\\, \\\", \\n, \\t, \
                         \\uXXXX)",
                        other.map(String::from).unwrap_or_default()
                    ))
                }
            }
            continue;
        }
        out.push(c);
    }
    Err("a quoted string must end on the line it starts on".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Node {
        parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn refused(s: &str) -> String {
        match parse(s) {
            Ok(n) => panic!("{s:?} parsed as {n:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn pyyaml_block_style_and_indented_sequences_parse_the_same() {
        let a = ok("dtype: float32\nshape:\n- 10\n- 20\nversion:\n- 1\n- 0\n");
        let b = ok("dtype: float32\nshape:\n  - 10\n  - 20\nversion: [1, 0]\n");
        assert_eq!(a, b);
        assert_eq!(a.get("dtype"), Some(&Node::Str("float32".into())));
    }

    #[test]
    fn compact_nested_forms_parse() {
        let n = ok("a:\n- b: 1\n  c: [x, 'y z']\n- - 1\n  - 2\n-\n  d: {}\ne:\n  f: null\n");
        let Some(Node::Seq(items)) = n.get("a") else {
            panic!("{n:?}")
        };
        assert_eq!(items.len(), 3);
        assert_eq!(
            items[0].get("c"),
            Some(&Node::Seq(vec![
                Node::Str("x".into()),
                Node::Str("y z".into())
            ]))
        );
    }

    #[test]
    fn every_ambiguous_scalar_is_refused() {
        for s in [
            "010", "+3", "1_0", "1e3", "0x10", ".inf", "yes", "No", "ON", "~", "True", "NULL",
            "1.", "-.5", "12:30", "*a", "&a 1", "!!int 3", "|", "<<", "a b", "-",
        ] {
            refused(&format!("k: {s}\n"));
            refused(&format!("k: [{s}]\n"));
        }
    }

    #[test]
    fn structure_outside_the_subset_is_refused() {
        for s in [
            "\u{feff}a: 1\n",
            "a: 1\r\n",
            "a:\t1\n",
            "a: 'x\u{85}y'\n",
            "a: 'x\u{2028}y'\n",
            "%YAML 1.1\n---\na: 1\n",
            "a: 1\n---\nb: 2\n",
            "--- a: 1\n",
            "a: 1\n...\nb: 2\n",
            "{a: 1}\n",
            "a: {b: 1}\n",
            "a: [[1]]\n",
            "a: [1, 2,]\n",
            "a: [1,\n 2]\n",
            "1: a\n",
            "true: a\n",
            "? a\n: b\n",
            "a : 1\n",
            "a: 1\na: 2\n",
            "a: 1\n'a': 2\n",
            " a: 1\n",
            "- a\n",
            "a\n",
            "",
            "# only a comment\n",
            "a:\n  b\n",
            "a: 'unterminated\n",
            "a: \"\\x41\"\n",
            "a: >\n  folded\n",
            "<<: {a: 1}\n",
        ] {
            refused(s);
        }
    }

    #[test]
    fn markers_comments_and_quoted_keys_are_accepted() {
        let n =
            ok("---\n# c\n'dtype': \"int8\"  # one byte\nshape: # the shape\n- 3\n...\n# end\n");
        assert_eq!(n.get("dtype"), Some(&Node::Str("int8".into())));
        assert_eq!(
            n.get("shape"),
            Some(&Node::Seq(vec![Node::Int(IntScalar {
                negative: false,
                magnitude: Some(3)
            })]))
        );
    }

    #[test]
    fn daf_items_are_single_scalars_and_nothing_else() {
        for item in [
            "2026-12-02 07:11:41.123456\n...\n",
            "human\n...\n",
            "5\n...\n",
            "-0.5\n",
            "''\n",
            "'123'\n",
            "---\nhello world\n...\n",
            "null\n...\n",
        ] {
            assert!(is_daf_item(item), "{item:?}");
        }
        for not_item in [
            "",
            "...\n",
            "a: 1\n",
            "dtype: float32\nshape: [2\n",
            "- 1\n- 2\n",
            "[1, 2]\n",
            "{a: 1}\n",
            "key:\n",
            "a long\nstring\n",
            "  indented\n",
            "5 # comment\n",
            "!!python/object:x y\n",
            "&a 5\n",
            "%YAML 1.1\n---\n5\n",
            "tab\there\n",
            "two\n...\nthree\n",
        ] {
            assert!(!is_daf_item(not_item), "{not_item:?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let mut s = String::new();
        for i in 0..MAX_DEPTH {
            s.push_str(&" ".repeat(i));
            s.push_str("a:\n");
        }
        s.push_str(&" ".repeat(MAX_DEPTH));
        s.push_str("b: 1\n");
        assert!(refused(&s).contains("nested"));
        let deep = format!("a: {}1{}\n", "[".repeat(20), "]".repeat(20));
        refused(&deep);
    }
}
