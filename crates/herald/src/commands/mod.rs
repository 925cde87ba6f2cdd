//! One module per subcommand.

pub mod bench;
pub mod config;
pub mod log;
pub mod overrides;
pub mod publish;
pub mod serve;
pub mod subscribe;
pub mod token;

/// Writes `line` and a line break to stdout. A reader that went away
/// (`herald token | head -c 10`) wanted no more: not an error, and not a
/// panic as `println!` makes it.
pub fn print_line(line: &str) -> Result<(), crate::error::CliError> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(
            crate::error::CliError::Runtime(format!("cannot write to stdout: {error}")),
        ),
        _ => Ok(()),
    }
}

/// `text` with its control characters escaped as Rust writes them (`\n`,
/// `\u{1b}`) and every other character as it is: what a server sends, printed
/// raw, could move the cursor, rewrite the line or send commands to the
/// terminal.
pub fn escape_controls(text: &str) -> String {
    escape(text, |_| false)
}

/// Like [`escape_controls`], with tabs left as they are: data lines for
/// people to read, where a tab is text.
pub fn escape_controls_but_tabs(text: &str) -> String {
    escape(text, |c| c == '\t')
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && !keep(c) {
            escaped.extend(c.escape_debug());
        } else {
            escaped.push(c);
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::{escape_controls, escape_controls_but_tabs};

    #[test]
    fn only_control_characters_are_escaped() {
        assert_eq!(escape_controls("urn:uuid:1"), "urn:uuid:1");
        assert_eq!(escape_controls("é \\ \"x\""), "é \\ \"x\"");
        assert_eq!(
            escape_controls("a\nb\r\u{1b}[31mred\u{7}\u{9b}"),
            "a\\nb\\r\\u{1b}[31mred\\u{7}\\u{9b}"
        );
        assert_eq!(escape_controls_but_tabs("a\tb\u{1b}"), "a\tb\\u{1b}");
    }
}
