//! URI Templates (RFC 6570, levels 1 to 4) used as topic selectors, as the
//! Mercure revisions before draft 08 define them.
//!
//! Mercure needs the inverse of expansion: does *some* assignment of values
//! to the template's variables expand to this topic? A template is compiled
//! once into a `regex` that accepts exactly (up to the leniencies listed on
//! [`UriTemplate`]) the set of all its expansions, so matching a topic is a
//! single linear-time regex run, never a search over assignments.

use regex::{Regex, RegexBuilder};

use crate::HubError;

/// Longest template accepted, in bytes. The matcher limit normally refuses
/// longer selectors first; this bound holds even if that limit is raised.
const MAX_LENGTH: usize = 4096;

/// Most expressions accepted in one template.
const MAX_EXPRESSIONS: usize = 32;

/// Most variables accepted in one template, all expressions together. An
/// expression whose first and separator strings differ (`{x,y}`, `{?x,y}`)
/// compiles to a regex quadratic in its number of variables.
const MAX_VARIABLES: usize = 64;

/// Bound on the compiled program of one template, and on its lazy DFA cache:
/// past it the template is refused rather than allowed to eat memory.
const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// Longest prefix compiled as written. A prefix compiles to one copy of its
/// character pattern per character (about 1.4 KiB each), so `{var:9999}`
/// would need 14 MiB; longer prefixes are clamped to this length instead.
const MAX_COMPILED_PREFIX: u16 = 1000;

/// A URI Template (RFC 6570, levels 1 to 4) compiled for matching.
///
/// A topic matches when some assignment of values to the variables, each
/// undefined, a string, a list of strings or an associative array, expands to
/// exactly the topic. Consequences worth knowing:
///
/// - An empty string is a defined value: `/books/{id}` matches `/books/`,
///   `{/x}` matches `/`, `{?x}` matches `?x=` and `{;x}` matches `;x`.
/// - An undefined value expands to nothing, its `name=` included, and the
///   separators only join defined values: `{?x,y}` matches the empty string,
///   `?y=1` and `?x=1&y=2`, but not `?y=1&x=2` (variables keep their order).
/// - Without explode, a list or associative array joins its members with `,`,
///   so `{id}` matches `1,2` and `{?x}` matches `?x=a,b`; with a `+` or `#`
///   operator `,` is allowed in values anyway.
/// - With explode, members are joined with the operator's separator (`{/s*}`
///   matches `/a/b/c`), pairs as `key=value` (`{/s*}` also matches `/k=v/l=w`),
///   and for `;`, `?` and `&` the keys replace the name: `{?q*}` matches
///   `?a=1&b=2`.
/// - A prefix (`{var:3}`) only applies to strings and counts characters
///   before encoding: an unreserved or reserved character is one, and so is a
///   pct-encoded character.
///
/// Leniencies: the matcher accepts a few strings no strict expander emits.
///
/// - Any `%XX` triplet is accepted where an expansion may pct-encode, with
///   either case and whatever octet it encodes (an encoder would not emit
///   `%41` for `A`, nor invalid UTF-8).
/// - For a prefix, a triplet followed by up to three continuation triplets
///   (`%80` to `%BF`) counts as one character, so `{+var:1}` accepts `%41`
///   although the RFC counts a triplet passed through by `+` as three.
/// - The keys of an exploded associative array are not checked for
///   uniqueness: `{?q*}` accepts `?a=1&a=2`.
///
/// One under-approximation, for the sake of memory: a prefix longer than
/// 1000 characters is matched as if it were 1000, so `{var:9999}` matches no
/// value longer than 1000 characters.
///
/// Literal characters outside expressions match themselves; a non-ASCII
/// literal (allowed by the RFC) also matches its pct-encoded UTF-8 octets,
/// since expansion encodes it while IRI topics keep it as is. Raw non-ASCII
/// characters never match a variable: every operator pct-encodes them.
#[derive(Clone)]
pub struct UriTemplate {
    source: Box<str>,
    /// `None` for an ASCII template without expressions: it matches only
    /// itself, so a string comparison will do.
    regex: Option<Regex>,
}

impl std::fmt::Debug for UriTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("UriTemplate").field(&self.source).finish()
    }
}

impl UriTemplate {
    /// Parses and compiles `source`.
    ///
    /// The error ([`HubError::InvalidTemplate`]) says what is wrong and at
    /// which byte, or which limit the template exceeds (length, expressions,
    /// variables, or compiled size).
    pub fn parse(source: &str) -> Result<Self, HubError> {
        let invalid = |reason: String| HubError::InvalidTemplate {
            value: source.to_owned(),
            reason,
        };
        if source.len() > MAX_LENGTH {
            return Err(invalid(format!(
                "the template is {} bytes long; the limit is {MAX_LENGTH} bytes",
                source.len()
            )));
        }
        let parts = parse(source).map_err(invalid)?;
        let literal = parts.iter().all(|p| matches!(p, Part::Literal(_)));
        let regex = if literal && source.is_ascii() {
            None
        } else {
            Some(compile(&parts).map_err(invalid)?)
        };
        Ok(Self {
            source: source.into(),
            regex,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether some assignment of the variables expands to exactly `topic`.
    pub fn is_match(&self, topic: &str) -> bool {
        match &self.regex {
            Some(regex) => regex.is_match(topic),
            None => *self.source == *topic,
        }
    }

    /// Whether the template matches only itself, compared as a string.
    pub(crate) fn is_plain(&self) -> bool {
        self.regex.is_none()
    }
}

/// An expression operator (RFC 6570 section 3.2, Appendix A).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Simple,
    Reserved,
    Fragment,
    Label,
    Path,
    Params,
    Query,
    Continuation,
}

impl Operator {
    /// What precedes the first defined variable.
    fn first(self) -> &'static str {
        match self {
            Operator::Simple | Operator::Reserved => "",
            Operator::Fragment => "#",
            Operator::Label => ".",
            Operator::Path => "/",
            Operator::Params => ";",
            Operator::Query => "?",
            Operator::Continuation => "&",
        }
    }

    /// What joins defined variables, and exploded members.
    fn separator(self) -> &'static str {
        match self {
            Operator::Simple | Operator::Reserved | Operator::Fragment => ",",
            Operator::Label => ".",
            Operator::Path => "/",
            Operator::Params => ";",
            Operator::Query | Operator::Continuation => "&",
        }
    }

    /// Whether values are written as `name=value`.
    fn named(self) -> bool {
        matches!(
            self,
            Operator::Params | Operator::Query | Operator::Continuation
        )
    }

    /// Whether reserved characters pass through unencoded.
    fn allows_reserved(self) -> bool {
        matches!(self, Operator::Reserved | Operator::Fragment)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Modifier {
    None,
    Prefix(u16),
    Explode,
}

#[derive(Debug)]
struct VarSpec<'a> {
    name: &'a str,
    modifier: Modifier,
}

#[derive(Debug)]
enum Part<'a> {
    Literal(&'a str),
    Expression(Operator, Vec<VarSpec<'a>>),
}

/// Splits `source` into literals and expressions, checking the RFC grammar.
fn parse(source: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let (mut expressions, mut variables) = (0, 0);
    let mut literal_start = 0;
    let mut at = 0;
    while let Some(c) = source[at..].chars().next() {
        match c {
            '{' => {
                if literal_start < at {
                    parts.push(Part::Literal(&source[literal_start..at]));
                }
                let Some(length) = source[at + 1..].find('}') else {
                    return Err(format!("unclosed expression starting at byte {at}"));
                };
                let end = at + 1 + length;
                let (operator, specs) = parse_expression(&source[at + 1..end], at)?;
                expressions += 1;
                variables += specs.len();
                if expressions > MAX_EXPRESSIONS {
                    return Err(format!(
                        "more than {MAX_EXPRESSIONS} expressions (the one at byte {at} is one too many)"
                    ));
                }
                if variables > MAX_VARIABLES {
                    return Err(format!(
                        "more than {MAX_VARIABLES} variables (reached in the expression at byte {at})"
                    ));
                }
                parts.push(Part::Expression(operator, specs));
                at = end + 1;
                literal_start = at;
                continue;
            }
            '}' => return Err(format!("`}}` at byte {at} closes no expression")),
            '%' if !is_pct_encoded(&source[at..]) => {
                return Err(format!(
                    "`%` at byte {at} does not start a pct-encoded triplet"
                ));
            }
            c if c != '%' && !is_literal(c) => {
                return Err(format!(
                    "{} at byte {at} is not allowed in a URI template literal",
                    describe(c)
                ));
            }
            _ => {}
        }
        at += c.len_utf8();
    }
    if literal_start < source.len() {
        parts.push(Part::Literal(&source[literal_start..]));
    }
    Ok(parts)
}

/// Parses the text between `{` (at byte `open`) and `}`.
fn parse_expression(body: &str, open: usize) -> Result<(Operator, Vec<VarSpec<'_>>), String> {
    let operator = match body.chars().next() {
        None => return Err(format!("empty expression at byte {open}")),
        Some('+') => Operator::Reserved,
        Some('#') => Operator::Fragment,
        Some('.') => Operator::Label,
        Some('/') => Operator::Path,
        Some(';') => Operator::Params,
        Some('?') => Operator::Query,
        Some('&') => Operator::Continuation,
        Some(c @ ('=' | ',' | '!' | '@' | '|')) => {
            return Err(format!(
                "unknown operator `{c}` at byte {} (RFC 6570 reserves `=`, `,`, `!`, `@` and `|` for future extensions)",
                open + 1
            ));
        }
        Some(_) => Operator::Simple,
    };
    let skip = usize::from(operator != Operator::Simple);
    let mut specs = Vec::new();
    let mut at = open + 1 + skip;
    for spec in body[skip..].split(',') {
        specs.push(parse_varspec(spec, at)?);
        at += spec.len() + 1;
    }
    Ok((operator, specs))
}

/// Parses one `varname[:length|*]` starting at byte `at`.
fn parse_varspec(spec: &str, at: usize) -> Result<VarSpec<'_>, String> {
    let (name, modifier) = if let Some(colon) = spec.find(':') {
        let digits = &spec[colon + 1..];
        let digits_at = at + colon + 1;
        if let Some((i, c)) = digits.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
            return Err(format!(
                "{} at byte {} in a prefix length, which is digits only (and excludes `*`)",
                describe(c),
                digits_at + i
            ));
        }
        if digits.is_empty() {
            return Err(format!(
                "missing prefix length after `:` at byte {}",
                at + colon
            ));
        }
        if digits.starts_with('0') {
            return Err(format!(
                "prefix length {digits} at byte {digits_at} must be from 1 to 9999, without leading zero"
            ));
        }
        match digits.parse::<u16>() {
            Ok(length) if length <= 9999 => (&spec[..colon], Modifier::Prefix(length)),
            _ => {
                return Err(format!(
                    "prefix length {digits} at byte {digits_at} exceeds 9999"
                ));
            }
        }
    } else if let Some(name) = spec.strip_suffix('*') {
        (name, Modifier::Explode)
    } else {
        (spec, Modifier::None)
    };
    check_varname(name, at)?;
    Ok(VarSpec { name, modifier })
}

/// `varname = varchar *( ["."] varchar )`, `varchar = ALPHA / DIGIT / "_" / pct-encoded`.
fn check_varname(name: &str, at: usize) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("empty variable name at byte {at}"));
    }
    let bytes = name.as_bytes();
    let mut i = 0;
    while let Some(c) = name[i..].chars().next() {
        match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '_' => {}
            '%' if is_pct_encoded(&name[i..]) => {
                i += 3;
                continue;
            }
            '%' => {
                return Err(format!(
                    "`%` at byte {} does not start a pct-encoded triplet",
                    at + i
                ));
            }
            '.' if i > 0 && i + 1 < bytes.len() && bytes[i - 1] != b'.' => {}
            '.' => {
                return Err(format!(
                    "`.` at byte {} in variable name `{name}` must stand between two name characters",
                    at + i
                ));
            }
            c => {
                return Err(format!(
                    "{} at byte {} is not allowed in variable name `{name}`",
                    describe(c),
                    at + i
                ));
            }
        }
        i += c.len_utf8();
    }
    Ok(())
}

/// Whether `s` starts with `%` and two hexadecimal digits.
fn is_pct_encoded(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3 && b[0] == b'%' && b[1].is_ascii_hexdigit() && b[2].is_ascii_hexdigit()
}

/// RFC 6570 `literals`, except `%` (checked as pct-encoded) and `{` (an
/// expression). `'` is accepted although the ABNF omits it: it is a
/// sub-delim of RFC 3986, and the shared uritemplate-test suite expects it.
fn is_literal(c: char) -> bool {
    match c {
        '\0'..=' ' | '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}' | '\x7f' => false,
        '!'..='~' => true,
        c => is_ucschar_or_iprivate(c),
    }
}

/// RFC 3987 `ucschar` and `iprivate`: the non-ASCII characters an IRI, and
/// so a template literal, may contain.
fn is_ucschar_or_iprivate(c: char) -> bool {
    let c = u32::from(c);
    match c {
        0xA0..=0xD7FF | 0xE000..=0xFDCF | 0xFDF0..=0xFFEF => true,
        0x10000.. => c & 0xFFFF <= 0xFFFD && !(0xE0000..0xE1000).contains(&c),
        _ => false,
    }
}

/// A character as an error message shows it: invisible ones by code point.
fn describe(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("U+{:04X}", u32::from(c))
    } else {
        format!("`{c}`")
    }
}

/// Builds the anchored regex accepting every expansion of `parts`.
fn compile(parts: &[Part<'_>]) -> Result<Regex, String> {
    let mut pattern = String::from(r"\A");
    for part in parts {
        match part {
            Part::Literal(text) => literal(&mut pattern, text),
            Part::Expression(operator, specs) => expression(&mut pattern, *operator, specs),
        }
    }
    pattern.push_str(r"\z");
    RegexBuilder::new(&pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => {
                format!("the template is too complex: its compiled form would exceed {limit} bytes")
            }
            other => format!("the template could not be compiled: {other}"),
        })
}

/// A literal matches itself; its non-ASCII characters also match their
/// pct-encoded UTF-8 octets (hexadecimal digits in either case).
fn literal(pattern: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_ascii() {
            pattern.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
            continue;
        }
        pattern.push_str("(?:");
        pattern.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
        pattern.push('|');
        for byte in c.encode_utf8(&mut [0; 4]).bytes() {
            pattern.push('%');
            for digit in [byte >> 4, byte & 0xF] {
                let upper = char::from_digit(u32::from(digit), 16).unwrap_or('0');
                if upper.is_ascii_digit() {
                    pattern.push(upper);
                } else {
                    pattern.push('[');
                    pattern.push(upper.to_ascii_uppercase());
                    pattern.push(upper);
                    pattern.push(']');
                }
            }
        }
        pattern.push(')');
    }
}

/// One expression: nothing when every variable is undefined, else the
/// operator's first string, then the defined variables, in order, joined by
/// its separator.
fn expression(pattern: &mut String, operator: Operator, specs: &[VarSpec<'_>]) {
    let items: Vec<String> = specs.iter().map(|s| item(operator, s)).collect();
    let first = regex::escape(operator.first());
    let separator = regex::escape(operator.separator());
    if first == separator {
        // Every defined variable is preceded by the same string.
        for item in &items {
            pattern.push_str(&format!("(?:{separator}{item})?"));
        }
        return;
    }
    // Choose the first defined variable; each later one is optional. This is
    // quadratic in the number of variables, hence `MAX_VARIABLES`.
    pattern.push_str(&format!("(?:{first}(?:"));
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            pattern.push('|');
        }
        pattern.push_str(item);
        for later in &items[i + 1..] {
            pattern.push_str(&format!("(?:{separator}{later})?"));
        }
    }
    pattern.push_str("))?");
}

/// Hexadecimal digits, in either case.
const HEX: &str = "[0-9A-Fa-f]";

/// The characters an operator copies unencoded into a value, as the body of
/// a regex class: unreserved, plus reserved for `+` and `#`, plus `,` when
/// list members may be joined.
fn class(operator: Operator, comma: bool) -> String {
    let mut class = String::from(r"A-Za-z0-9\-._\~");
    if operator.allows_reserved() {
        class.push_str(r":/?#\[\]@!$\&'()*+,;=");
    } else if comma {
        class.push(',');
    }
    class
}

/// Value characters, each one of `class` or a triplet, repeated as
/// `quantifier` says (`*` or `+`).
fn values(class: &str, quantifier: char) -> String {
    format!("(?:[{class}]|%{HEX}{{2}}){quantifier}")
}

/// What a variable contributes after the first string or separator that
/// precedes it, for every kind of value it may hold.
fn item(operator: Operator, spec: &VarSpec<'_>) -> String {
    let name = regex::escape(spec.name);
    match spec.modifier {
        // Strings only (the RFC does not apply prefixes to composite values).
        Modifier::Prefix(length) => {
            let length = length.min(MAX_COMPILED_PREFIX);
            let character = format!(
                "(?:[{}]|%{HEX}{{2}}(?:%[89ABab]{HEX}){{0,3}})",
                class(operator, false)
            );
            match operator {
                Operator::Params => format!("{name}(?:={character}{{1,{length}}})?"),
                Operator::Query | Operator::Continuation => {
                    format!("{name}={character}{{0,{length}}}")
                }
                _ => format!("{character}{{0,{length}}}"),
            }
        }
        // A string, or list members (or keys and values) joined by `,`.
        Modifier::None => {
            let joined = values(&class(operator, true), '*');
            match operator {
                // `;x` for "", `;x=` for the list [""].
                Operator::Params => format!("{name}(?:={joined})?"),
                Operator::Query | Operator::Continuation => format!("{name}={joined}"),
                _ => joined,
            }
        }
        Modifier::Explode => {
            let value = values(&class(operator, false), '*');
            let separator = regex::escape(operator.separator());
            if operator.named() {
                // Each member is `name=value`, each pair `key=value` (`;`
                // drops `=` for an empty value). Keys are any string, which
                // covers the variable's own name, so lists and strings add
                // nothing to the pairs.
                let pair = if operator == Operator::Params {
                    let nonempty = values(&class(operator, false), '+');
                    format!("{value}(?:={nonempty})?")
                } else {
                    format!("{value}={value}")
                };
                format!("{pair}(?:{separator}{pair})*")
            } else if operator.allows_reserved() {
                // `,` and `=` are reserved characters, already in `value`.
                value
            } else {
                // A string or list members joined by the separator, or
                // `key=value` pairs joined by it.
                let pair = format!("{value}={value}");
                format!("(?:{value}(?:{separator}{value})*|{pair}(?:{separator}{pair})*)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(template: &str, topic: &str) -> bool {
        UriTemplate::parse(template)
            .unwrap_or_else(|e| panic!("{template}: {e}"))
            .is_match(topic)
    }

    fn reason(template: &str) -> String {
        match UriTemplate::parse(template) {
            Err(HubError::InvalidTemplate { value, reason }) => {
                assert_eq!(value, template);
                reason
            }
            other => panic!("{template} must be refused, got {other:?}"),
        }
    }

    /// (template, topic, expected): every operator of levels 1 to 4.
    const CASES: &[(&str, &str, bool)] = &[
        // Level 1: simple string expansion.
        (
            "https://example.com/books/{id}",
            "https://example.com/books/1",
            true,
        ),
        (
            "https://example.com/books/{id}",
            "https://example.com/books/1/reviews",
            false,
        ),
        (
            "https://example.com/books/{id}",
            "https://example.com/books/",
            true,
        ),
        (
            "https://example.com/books/{id}",
            "https://example.com/books",
            false,
        ),
        (
            "https://example.com/books/{id}",
            "https://example.com/books/a%2Fb",
            true,
        ),
        (
            "https://example.com/books/{id}",
            "https://example.com/books/a%2fb",
            true,
        ),
        (
            "https://example.com/books/{id}",
            "https://example.com/books/a%2",
            false,
        ),
        (
            "https://example.com/books/{id}",
            "https://example.com/books/50%",
            false,
        ),
        (
            "https://example.com/books/{id}",
            "https://example.com/books/caf%C3%A9",
            true,
        ),
        (
            "https://example.com/books/{id}",
            "https://example.com/books/café",
            false,
        ),
        (
            "https://example.com/books/{id}",
            "https://example.com/books/a b",
            false,
        ),
        (
            "https://example.com/books/{id}",
            "https://example.com/books/a:b",
            false,
        ),
        (
            "https://example.com/books/{id}",
            "https://example.com/books/~a-b_c.d",
            true,
        ),
        (
            "https://example.com/books/{id}",
            "https://example.com/books/1,2",
            true,
        ),
        (
            "https://example.com/books/{id}",
            "https://example.com/books/1?x",
            false,
        ),
        (
            "https://example.com/books/{id}",
            "https://example.org/books/1",
            false,
        ),
        ("{x,y}", "1024,768", true),
        ("{x,y}", "1024", true),
        ("{x,y}", "", true),
        ("{x,y}", ",", true),
        ("{x,y}", "1024/768", false),
        // Level 2: reserved expansion.
        ("{+path}/here", "/foo/bar/here", true),
        ("{path}/here", "/foo/bar/here", false),
        ("{+base}index", "http://example.com/home/index", true),
        ("{base}index", "http://example.com/home/index", false),
        (
            "{base}index",
            "http%3A%2F%2Fexample.com%2Fhome%2Findex",
            true,
        ),
        ("{+x}", "!$&'()*+,;=:@?#[]", true),
        ("{+x}", "a b", false),
        ("{+x}", "é", false),
        ("{+x}", "a\"b", false),
        ("{+x}", "a%20b", true),
        ("here?ref={+path}", "here?ref=/foo/bar", true),
        // Level 2: fragment expansion.
        (
            "https://example.com/page{#frag}",
            "https://example.com/page#section/2",
            true,
        ),
        (
            "https://example.com/page{#frag}",
            "https://example.com/page",
            true,
        ),
        (
            "https://example.com/page{#frag}",
            "https://example.com/page#",
            true,
        ),
        (
            "https://example.com/page{#frag}",
            "https://example.com/page/2",
            false,
        ),
        (
            "https://example.com/page{#frag}",
            "https://example.com/page#a b",
            false,
        ),
        ("{#x,y}", "#1024,768", true),
        // Level 3: label expansion.
        (
            "https://example.com/file{.ext}",
            "https://example.com/file.json",
            true,
        ),
        (
            "https://example.com/file{.ext}",
            "https://example.com/file",
            true,
        ),
        (
            "https://example.com/file{.ext}",
            "https://example.com/file.",
            true,
        ),
        (
            "https://example.com/file{.ext}",
            "https://example.com/file/json",
            false,
        ),
        (
            "https://example.com/file{.ext}",
            "https://example.com/filejson",
            false,
        ),
        ("www{.dom*}", "www.example.com", true),
        ("X{.x,y}", "X.1024.768", true),
        // Level 3: path segments.
        ("https://example.com{/seg}", "https://example.com/a", true),
        (
            "https://example.com{/seg}",
            "https://example.com/a/b",
            false,
        ),
        ("https://example.com{/seg}", "https://example.com/a,b", true),
        (
            "https://example.com{/seg*}",
            "https://example.com/a/b/c",
            true,
        ),
        ("https://example.com{/seg*}", "https://example.com", true),
        (
            "https://example.com{/seg*}",
            "https://example.com/k=v/l=w",
            true,
        ),
        (
            "https://example.com{/seg*}",
            "https://example.com/a/b?c",
            false,
        ),
        ("https://example.com{/x,y}", "https://example.com/1/2", true),
        (
            "https://example.com{/x,y}",
            "https://example.com/1/2/3",
            false,
        ),
        ("https://example.com{/x,y}/z", "https://example.com/z", true),
        // Level 3: path-style parameters.
        ("/map{;x,y}", "/map;x=1024;y=768", true),
        ("/map{;x,y}", "/map;y=768", true),
        ("/map{;x,y}", "/map;x;y", true),
        ("/map{;x,y}", "/map", true),
        ("/map{;x,y}", "/map;y=768;x=1024", false),
        ("/map{;x,y}", "/map;z=1", false),
        ("/map{;x,y}", "/map;x=1;x=2", false),
        ("/map{;x*}", "/map;x=1;x=2", true),
        ("/map{;x*}", "/map;a=1;b", true),
        // Level 3: form-style query and continuation.
        (
            "https://example.com/users/foo/{?topic}",
            "https://example.com/users/foo/?topic=https%3A%2F%2Fexample.com%2Fbooks%2F1",
            true,
        ),
        (
            "https://example.com/users/foo/{?topic}",
            "https://example.com/users/foo/?topic=https://example.com/books/1",
            false,
        ),
        (
            "https://example.com/users/foo/{?topic}",
            "https://example.com/users/foo/",
            true,
        ),
        (
            "https://example.com/users/foo/{?topic}",
            "https://example.com/users/foo/?topic=",
            true,
        ),
        (
            "https://example.com/users/foo/{?topic}",
            "https://example.com/users/foo/?topic",
            false,
        ),
        (
            "https://example.com/users/foo/{?topic}",
            "https://example.com/users/foo/?other=1",
            false,
        ),
        ("/search{?x,y}", "/search?x=1024&y=768", true),
        ("/search{?x,y}", "/search?y=768", true),
        ("/search{?x,y}", "/search?y=768&x=1024", false),
        ("/search{?x,y}", "/search&y=768", false),
        ("/search{?q*}", "/search?a=1&b=2", true),
        ("/search{?q*}", "/search?a&b=2", false),
        ("/search?fixed=yes{&x}", "/search?fixed=yes&x=1024", true),
        ("/search?fixed=yes{&x}", "/search?fixed=yes", true),
        ("/search?fixed=yes{&x}", "/search?fixed=yes?x=1024", false),
        ("{?x}{&y,z}", "?x=1&y=2&z=3", true),
        ("{?x}{&y,z}", "?x=1&z=3", true),
        // Level 4: prefix; a pct-encoded character counts as one.
        ("/dict/{term:1}/{term}", "/dict/c/cat", true),
        ("/dict/{term:1}/{term}", "/dict/ca/cat", false),
        ("{var:3}", "val", true),
        ("{var:3}", "valu", false),
        ("{var:3}", "", true),
        ("{var:3}", "%20ab", true),
        ("{var:3}", "%20%20%20", true),
        ("{var:3}", "%20%20%20a", false),
        ("{var:1}", "%E2%82%AC", true),
        ("{var:3}", "a,b", false),
        ("{+var:3}", "a/b", true),
        ("{+var:3}", "a/bc", false),
        ("{;var:3}", ";var=abc", true),
        ("{;var:3}", ";var", true),
        ("{;var:3}", ";var=", false),
        ("{?var:3}", "?var=", true),
        ("{?var:3}", "?var=abcd", false),
        // Literals are matched literally, regex metacharacters included.
        (
            "https://example.com/a.b(c)?d$/{id}",
            "https://example.com/a.b(c)?d$/1",
            true,
        ),
        (
            "https://example.com/a.b(c)?d$/{id}",
            "https://example.com/aXb(c)?d$/1",
            false,
        ),
        (
            "https://example.com/a.b(c)?d$/{id}",
            "https://example.com/a.b(c)d$/1",
            false,
        ),
        (
            "https://example.com/a.b(c)?d$/{id}",
            "https://example.com/a.bc?d$/1",
            false,
        ),
        ("a+b*[c]{x}", "a+b*[c]1", true),
        ("a+b*[c]{x}", "aab[c]1", false),
        ("café/{x}", "café/1", true),
        ("café/{x}", "caf%C3%A9/1", true),
        ("café/{x}", "caf%c3%a9/1", true),
        ("x%20y/{x}", "x%20y/1", true),
        ("x%20y/{x}", "x y/1", false),
        // Variable names: dots and pct-encoded triplets, used as written.
        ("{?last.name}", "?last.name=Doe", true),
        ("{?Stra%C3%9Fe}", "?Stra%C3%9Fe=1", true),
    ];

    #[test]
    fn table_of_templates_and_topics() {
        let failures: Vec<_> = CASES
            .iter()
            .filter(|(template, topic, expected)| matches(template, topic) != *expected)
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn every_operator_with_every_modifier_compiles() {
        for operator in ["", "+", "#", ".", "/", ";", "?", "&"] {
            for spec in ["x", "x*", "x:5", "x,y*,z:2"] {
                let template = format!("https://example.com/{{{operator}{spec}}}");
                UriTemplate::parse(&template).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }

    #[test]
    fn invalid_templates_report_why() {
        for (template, expected) in [
            ("{", "unclosed expression starting at byte 0"),
            ("{a", "unclosed expression starting at byte 0"),
            (
                "https://example.com/{a",
                "unclosed expression starting at byte 20",
            ),
            ("a}", "`}` at byte 1 closes no expression"),
            ("{}", "empty expression at byte 0"),
            ("{!x}", "unknown operator `!` at byte 1"),
            ("{=x}", "unknown operator `=` at byte 1"),
            (
                "{a b}",
                "U+0020 at byte 2 is not allowed in variable name `a b`",
            ),
            ("{x,}", "empty variable name at byte 3"),
            ("{+}", "empty variable name at byte 2"),
            (
                "{$var}",
                "`$` at byte 1 is not allowed in variable name `$var`",
            ),
            ("{x.}", "`.` at byte 2 in variable name `x.`"),
            ("{x..y}", "`.` at byte 3 in variable name `x..y`"),
            ("{.x.}", "`.` at byte 3 in variable name `x.`"),
            (
                "{%2x}",
                "`%` at byte 1 does not start a pct-encoded triplet",
            ),
            (
                "{var:0}",
                "prefix length 0 at byte 5 must be from 1 to 9999",
            ),
            (
                "{var:01}",
                "prefix length 01 at byte 5 must be from 1 to 9999",
            ),
            ("{var:10000}", "prefix length 10000 at byte 5 exceeds 9999"),
            ("{var:10001}", "prefix length 10001 at byte 5 exceeds 9999"),
            ("{var:}", "missing prefix length after `:` at byte 4"),
            ("{var:prefix}", "`p` at byte 5 in a prefix length"),
            ("{hello:2*}", "`*` at byte 8 in a prefix length"),
            (
                "{var*:2}",
                "`*` at byte 4 is not allowed in variable name `var*`",
            ),
            (
                "{/?id}",
                "`?` at byte 2 is not allowed in variable name `?id`",
            ),
            (
                "/resolution{?x, y}",
                "U+0020 at byte 15 is not allowed in variable name ` y`",
            ),
            (
                "/a b/{x}",
                "U+0020 at byte 2 is not allowed in a URI template literal",
            ),
            (
                "/a|b/{x}",
                "`|` at byte 2 is not allowed in a URI template literal",
            ),
            (
                "/50%/{x}",
                "`%` at byte 3 does not start a pct-encoded triplet",
            ),
            (
                "/\u{85}/{x}",
                "U+0085 at byte 1 is not allowed in a URI template literal",
            ),
        ] {
            let reason = reason(template);
            assert!(
                reason.starts_with(expected),
                "{template}: `{reason}` should start with `{expected}`"
            );
        }
    }

    #[test]
    fn templates_without_expressions_match_only_themselves() {
        let template = UriTemplate::parse("https://example.com/a.b").unwrap();
        assert!(template.is_plain());
        assert!(template.is_match("https://example.com/a.b"));
        assert!(!template.is_match("https://example.com/aXb"));
        assert_eq!(template.source(), "https://example.com/a.b");
        // Except that a non-ASCII literal also matches its encoded form.
        let template = UriTemplate::parse("https://example.com/café").unwrap();
        assert!(!template.is_plain());
        assert!(template.is_match("https://example.com/café"));
        assert!(template.is_match("https://example.com/caf%C3%A9"));
    }

    #[test]
    fn pathological_templates_are_refused() {
        let many: String = (0..200).map(|i| format!("/{{v{i}}}")).collect();
        assert!(reason(&many).starts_with("more than 32 expressions"));
        let wide = format!(
            "{{{}}}",
            (0..65)
                .map(|i| format!("v{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(reason(&wide).starts_with("more than 64 variables"));
        let long = format!("https://example.com/{}{{x}}", "a".repeat(MAX_LENGTH));
        assert!(reason(&long).contains("the limit is 4096 bytes"));
        // Valid, but too large once compiled.
        let huge: String = (0..8).map(|i| format!("{{v{i}:1000}}")).collect();
        assert!(
            reason(&huge).starts_with("the template is too complex"),
            "{}",
            reason(&huge)
        );
    }

    #[test]
    fn the_largest_templates_within_limits_still_match() {
        // The quadratic worst case: 64 variables in one expression.
        let names: Vec<String> = (0..64).map(|i| format!("v{i}")).collect();
        let wide = UriTemplate::parse(&format!("{{?{}}}", names.join(","))).unwrap();
        assert!(wide.is_match("?v0=a&v63=b"));
        assert!(!wide.is_match("?v63=b&v0=a"));
        let prefix = UriTemplate::parse("{var:1000}").unwrap();
        assert!(prefix.is_match(&"%C3%A9".repeat(1000)));
        assert!(!prefix.is_match(&"a".repeat(1001)));
        // Clamped to 1000 characters: compiling 9999 copies would take 14 MiB.
        let clamped = UriTemplate::parse("{var:9999}").unwrap();
        assert!(clamped.is_match("value"));
        assert!(clamped.is_match(&"a".repeat(1000)));
        assert!(!clamped.is_match(&"a".repeat(1001)));
    }
}
