//! Splitting a SQL file into statements, for running them one per
//! transaction as DSQL requires, and reading the job id that
//! `CREATE INDEX ASYNC` returns.

/// One statement of a SQL file, without its terminating semicolon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Position in the file, counting from 1.
    pub number: usize,
    /// Line of the file on which the statement's SQL starts after any
    /// leading comments, counting from 1.
    pub line: usize,
    pub text: String,
}

/// A comment, string or quoted identifier that the file never closes, so
/// everything after its start would be one statement or dropped as comment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {what} that starts on line {line} is not closed")]
pub struct Unterminated {
    pub what: &'static str,
    pub line: usize,
}

/// Splits `source` at semicolons that are outside comments (`--`, nested
/// `/* */`), string constants ('...' with '' escapes, E'...' with backslash
/// escapes), quoted identifiers and dollar-quoted strings. Statements that
/// contain only comments and white space are dropped, and a leading UTF-8
/// byte order mark is ignored. Line numbers count from the start of
/// `source`.
pub fn split(source: &str) -> Result<Vec<Statement>, Unterminated> {
    let offset = source.len() - source.trim_start_matches('\u{feff}').len();
    let mut statements = Vec::new();
    let mut scanner = Scanner::new(source);
    scanner.position = offset;
    let mut start = offset;

    while let Some(byte) = scanner.peek() {
        let opened_at = scanner.position;
        let closed = match byte {
            b';' => {
                push_statement(&mut statements, source, start, scanner.position);
                scanner.position += 1;
                start = scanner.position;
                true
            }
            b'-' if scanner.starts_with("--") => {
                scanner.skip_line_comment();
                true
            }
            b'/' if scanner.starts_with("/*") => scanner.skip_block_comment(),
            b'\'' => {
                let backslash_escapes = scanner.previous_is_escape_prefix();
                scanner.skip_quoted(b'\'', backslash_escapes)
            }
            b'"' => scanner.skip_quoted(b'"', false),
            b'$' => scanner.skip_dollar_quoted(),
            _ => {
                scanner.position += 1;
                true
            }
        };
        if !closed {
            return Err(Unterminated {
                what: construct_name(byte),
                line: line_of(source, opened_at),
            });
        }
    }
    push_statement(&mut statements, source, start, source.len());
    Ok(statements)
}

/// Names what the byte opens, for an error about it.
fn construct_name(opening: u8) -> &'static str {
    match opening {
        b'/' => "block comment",
        b'\'' => "string constant",
        b'"' => "quoted identifier",
        _ => "dollar-quoted string",
    }
}

fn line_of(source: &str, position: usize) -> usize {
    source[..position].matches('\n').count() + 1
}

fn push_statement(statements: &mut Vec<Statement>, source: &str, start: usize, end: usize) {
    let text = source[start..end].trim();
    if is_only_comments(text) {
        return;
    }

    let line = line_of(source, start + leading_comments_length(&source[start..end]));
    statements.push(Statement {
        number: statements.len() + 1,
        line,
        text: text.to_string(),
    });
}

fn is_only_comments(text: &str) -> bool {
    leading_comments_length(text) == text.len()
}

/// Returns the length of the white space and comments that start `text`.
fn leading_comments_length(text: &str) -> usize {
    let mut scanner = Scanner::new(text);
    while let Some(byte) = scanner.peek() {
        match byte {
            b'-' if scanner.starts_with("--") => scanner.skip_line_comment(),
            b'/' if scanner.starts_with("/*") => {
                scanner.skip_block_comment();
            }
            byte if byte.is_ascii_whitespace() => scanner.position += 1,
            _ => break,
        }
    }
    scanner.position
}

/// A cursor over the bytes of SQL text. Every delimiter it looks for is
/// ASCII, so byte positions stay on UTF-8 character boundaries.
struct Scanner<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner {
            bytes: text.as_bytes(),
            position: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn starts_with(&self, prefix: &str) -> bool {
        self.bytes[self.position..].starts_with(prefix.as_bytes())
    }

    /// Checks whether the quote at the cursor opens an escape string
    /// constant: `E'...'` (or `e'...'`) not preceded by part of an identifier.
    fn previous_is_escape_prefix(&self) -> bool {
        let Some(before) = self.position.checked_sub(1) else {
            return false;
        };
        let is_e = matches!(self.bytes[before], b'E' | b'e');
        let standalone = before == 0 || !is_identifier_byte(self.bytes[before - 1]);
        is_e && standalone
    }

    fn skip_line_comment(&mut self) {
        while let Some(byte) = self.peek() {
            self.position += 1;
            if byte == b'\n' {
                return;
            }
        }
    }

    /// Skips a block comment; PostgreSQL lets block comments nest. Returns
    /// whether the comment was closed before the end of the text.
    fn skip_block_comment(&mut self) -> bool {
        let mut depth = 0;
        while self.position < self.bytes.len() {
            if self.starts_with("/*") {
                depth += 1;
                self.position += 2;
            } else if self.starts_with("*/") {
                depth -= 1;
                self.position += 2;
                if depth == 0 {
                    return true;
                }
            } else {
                self.position += 1;
            }
        }
        false
    }

    /// Skips a quoted string or identifier; a doubled quote is part of it.
    /// Returns whether the closing quote was found.
    fn skip_quoted(&mut self, quote: u8, backslash_escapes: bool) -> bool {
        self.position += 1;
        while let Some(byte) = self.peek() {
            self.position += 1;
            if backslash_escapes && byte == b'\\' {
                self.position += 1;
            } else if byte == quote {
                if self.peek() == Some(quote) {
                    self.position += 1;
                } else {
                    return true;
                }
            }
        }
        false
    }

    /// Skips `$tag$ ... $tag$` when the cursor is on a dollar-quote opening;
    /// otherwise (a parameter such as `$1`) moves past the `$` only. Returns
    /// whether a dollar quote that was opened was also closed.
    fn skip_dollar_quoted(&mut self) -> bool {
        let Some(tag) = self.dollar_tag() else {
            self.position += 1;
            return true;
        };
        let tag = tag.to_vec();
        self.position += tag.len();
        while self.position < self.bytes.len() {
            if self.bytes[self.position..].starts_with(&tag) {
                self.position += tag.len();
                return true;
            }
            self.position += 1;
        }
        false
    }

    /// Returns the opening `$tag$` at the cursor, if there is one. A tag is
    /// empty or an identifier that does not start with a digit, and a `$`
    /// that ends an identifier (as in `a$b`) opens nothing.
    fn dollar_tag(&self) -> Option<&'a [u8]> {
        if self.position > 0 && is_identifier_byte(self.bytes[self.position - 1]) {
            return None;
        }
        let rest = &self.bytes[self.position + 1..];
        let length = rest
            .iter()
            .take_while(|byte| is_identifier_byte(**byte) && **byte != b'$')
            .count();
        let starts_with_digit = rest.first().is_some_and(u8::is_ascii_digit);
        if starts_with_digit || rest.get(length) != Some(&b'$') {
            return None;
        }
        Some(&self.bytes[self.position..self.position + length + 2])
    }
}

fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80
}

/// Checks whether a statement is `CREATE INDEX ASYNC`, for which DSQL returns
/// one row that contains the id of the job that builds the index.
pub fn is_create_index_async(text: &str) -> bool {
    let words: Vec<String> = text
        .split_whitespace()
        .take(4)
        .map(str::to_ascii_uppercase)
        .collect();
    matches!(
        words.as_slice(),
        [create, index, asynchronous, ..] if create == "CREATE" && index == "INDEX" && asynchronous == "ASYNC"
    ) || matches!(
        words.as_slice(),
        [create, unique, index, asynchronous] if create == "CREATE" && unique == "UNIQUE" && index == "INDEX" && asynchronous == "ASYNC"
    )
}

/// Returns the job id from the rows that `CREATE INDEX ASYNC` returned:
/// the first column of the first row, when it is not empty.
pub fn job_id(rows: &[Vec<Option<String>>]) -> Option<String> {
    rows.first()?
        .first()?
        .as_ref()
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(source: &str) -> Vec<String> {
        split(source)
            .unwrap()
            .into_iter()
            .map(|statement| statement.text)
            .collect()
    }

    #[test]
    fn splits_at_semicolons() {
        assert_eq!(texts("SELECT 1; SELECT 2;"), ["SELECT 1", "SELECT 2"]);
    }

    #[test]
    fn keeps_last_statement_without_semicolon() {
        assert_eq!(texts("SELECT 1;\nSELECT 2\n"), ["SELECT 1", "SELECT 2"]);
    }

    #[test]
    fn ignores_semicolons_in_comments() {
        let source = "-- first; not a split\nSELECT 1; /* a; /* nested; */ still; */ SELECT 2;";

        assert_eq!(
            texts(source),
            [
                "-- first; not a split\nSELECT 1",
                "/* a; /* nested; */ still; */ SELECT 2"
            ]
        );
    }

    #[test]
    fn ignores_semicolons_in_strings() {
        let source = "INSERT INTO t VALUES ('a;b', 'it''s; ok'); SELECT \"odd;name\" FROM t;";

        assert_eq!(
            texts(source),
            [
                "INSERT INTO t VALUES ('a;b', 'it''s; ok')",
                "SELECT \"odd;name\" FROM t"
            ]
        );
    }

    #[test]
    fn escape_strings_allow_backslash_quote() {
        let source = r"SELECT E'a\';b'; SELECT 'c\'; SELECT 3;";

        assert_eq!(
            texts(source),
            [r"SELECT E'a\';b'", r"SELECT 'c\'", "SELECT 3"]
        );
    }

    #[test]
    fn ignores_semicolons_in_dollar_quotes() {
        let source = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n\
                      DO $body$ BEGIN PERFORM 1; $inner$ x; $inner$; END $body$;\n\
                      SELECT $1, a$b FROM t;";

        assert_eq!(
            texts(source),
            [
                "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql",
                "DO $body$ BEGIN PERFORM 1; $inner$ x; $inner$; END $body$",
                "SELECT $1, a$b FROM t"
            ]
        );
    }

    #[test]
    fn drops_comment_only_statements() {
        let source = "-- header\n\n;  /* nothing */ ;\nSELECT 1;\n-- trailing comment\n";

        let statements = split(source).unwrap();

        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0].number, 1);
        assert_eq!(statements[0].text, "SELECT 1");
    }

    #[test]
    fn records_number_and_line() {
        let statements = split("SELECT 1;\n\n-- note\nSELECT\n  2;").unwrap();

        assert_eq!(statements[1].number, 2);
        assert_eq!(statements[1].line, 4);
        assert_eq!(statements[1].text, "-- note\nSELECT\n  2");
    }

    #[test]
    fn unterminated_constructs_are_rejected() {
        let cases = [
            ("SELECT 1;\n/* open; SELECT 2;", "block comment", 2),
            ("SELECT 'open; SELECT 2;", "string constant", 1),
            ("SELECT 1;\n\nSELECT \"open;", "quoted identifier", 3),
            ("DO $body$ BEGIN PERFORM 1; END;", "dollar-quoted string", 1),
        ];
        for (source, what, line) in cases {
            assert_eq!(split(source), Err(Unterminated { what, line }), "{source}");
        }
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        let statements = split("\u{feff}CREATE TABLE t (id int);\r\nSELECT 1;\r\n").unwrap();

        assert_eq!(statements[0].text, "CREATE TABLE t (id int)");
        assert_eq!(statements[1].line, 2);
        assert_eq!(statements.len(), 2);
    }

    #[test]
    fn splits_example_schema() {
        let schema = include_str!("../../schema.sql");

        let statements = split(schema).unwrap();

        assert_eq!(statements.len(), 5);
        assert!(statements[0]
            .text
            .contains("CREATE TABLE IF NOT EXISTS customers"));
        let asynchronous: Vec<bool> = statements
            .iter()
            .map(|statement| is_create_index_async(&statement.text))
            .collect();
        assert_eq!(asynchronous, [false, false, true, true, true]);
    }

    #[test]
    fn recognises_create_index_async() {
        assert!(is_create_index_async("create index async i on t (c)"));
        assert!(is_create_index_async(
            "CREATE UNIQUE INDEX ASYNC i ON t (c)"
        ));
        assert!(!is_create_index_async("CREATE INDEX i ON t (c)"));
        assert!(!is_create_index_async("CREATE TABLE async (c int)"));
    }

    #[test]
    fn job_id_from_first_column() {
        let rows = vec![vec![Some("wq3l7yjcvbfv5oqjdrkwpnlfoy ".to_string())]];

        assert_eq!(
            job_id(&rows),
            Some("wq3l7yjcvbfv5oqjdrkwpnlfoy".to_string())
        );
        assert_eq!(job_id(&[]), None);
        assert_eq!(job_id(&[vec![None]]), None);
    }
}
