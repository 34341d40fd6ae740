//! Splitting a SQL file into statements, for running them one per
//! transaction as DSQL requires, and reading the job id that
//! `CREATE INDEX ASYNC` returns.

/// One statement of a SQL file, without its terminating semicolon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Position in the file, counting from 1.
    pub number: usize,
    /// Line of the file on which the statement starts, counting from 1.
    pub line: usize,
    pub text: String,
}

/// Splits `source` at semicolons that are outside comments (`--`, nested
/// `/* */`), string constants ('...' with '' escapes, E'...' with backslash
/// escapes), quoted identifiers and dollar-quoted strings. Statements that
/// contain only comments and white space are dropped.
pub fn split(source: &str) -> Vec<Statement> {
    let mut statements = Vec::new();
    let mut scanner = Scanner::new(source);
    let mut start = 0;

    while let Some(byte) = scanner.peek() {
        match byte {
            b';' => {
                push_statement(&mut statements, source, start, scanner.position);
                scanner.position += 1;
                start = scanner.position;
            }
            b'-' if scanner.starts_with("--") => scanner.skip_line_comment(),
            b'/' if scanner.starts_with("/*") => scanner.skip_block_comment(),
            b'\'' => {
                let backslash_escapes = scanner.previous_is_escape_prefix();
                scanner.skip_quoted(b'\'', backslash_escapes);
            }
            b'"' => scanner.skip_quoted(b'"', false),
            b'$' => scanner.skip_dollar_quoted(),
            _ => scanner.position += 1,
        }
    }
    push_statement(&mut statements, source, start, source.len());
    statements
}

fn push_statement(statements: &mut Vec<Statement>, source: &str, start: usize, end: usize) {
    let text = source[start..end].trim();
    if is_only_comments(text) {
        return;
    }

    let leading = source[start..end].len() - source[start..end].trim_start().len();
    let line = source[..start + leading].matches('\n').count() + 1;
    statements.push(Statement {
        number: statements.len() + 1,
        line,
        text: text.to_string(),
    });
}

fn is_only_comments(text: &str) -> bool {
    let mut scanner = Scanner::new(text);
    while let Some(byte) = scanner.peek() {
        match byte {
            b'-' if scanner.starts_with("--") => scanner.skip_line_comment(),
            b'/' if scanner.starts_with("/*") => scanner.skip_block_comment(),
            byte if byte.is_ascii_whitespace() => scanner.position += 1,
            _ => return false,
        }
    }
    true
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

    /// Skips a block comment; PostgreSQL lets block comments nest.
    fn skip_block_comment(&mut self) {
        let mut depth = 0;
        while self.position < self.bytes.len() {
            if self.starts_with("/*") {
                depth += 1;
                self.position += 2;
            } else if self.starts_with("*/") {
                depth -= 1;
                self.position += 2;
                if depth == 0 {
                    return;
                }
            } else {
                self.position += 1;
            }
        }
    }

    /// Skips a quoted string or identifier; a doubled quote is part of it.
    fn skip_quoted(&mut self, quote: u8, backslash_escapes: bool) {
        self.position += 1;
        while let Some(byte) = self.peek() {
            self.position += 1;
            if backslash_escapes && byte == b'\\' {
                self.position += 1;
            } else if byte == quote {
                if self.peek() == Some(quote) {
                    self.position += 1;
                } else {
                    return;
                }
            }
        }
    }

    /// Skips `$tag$ ... $tag$` when the cursor is on a dollar-quote opening;
    /// otherwise (a parameter such as `$1`) moves past the `$` only.
    fn skip_dollar_quoted(&mut self) {
        let Some(tag) = self.dollar_tag() else {
            self.position += 1;
            return;
        };
        let tag = tag.to_vec();
        self.position += tag.len();
        while self.position < self.bytes.len() {
            if self.bytes[self.position..].starts_with(&tag) {
                self.position += tag.len();
                return;
            }
            self.position += 1;
        }
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

        let statements = split(source);

        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0].number, 1);
        assert_eq!(statements[0].text, "SELECT 1");
    }

    #[test]
    fn records_number_and_line() {
        let statements = split("SELECT 1;\n\n-- note\nSELECT\n  2;");

        assert_eq!(statements[1].number, 2);
        assert_eq!(statements[1].line, 3);
        assert_eq!(statements[1].text, "-- note\nSELECT\n  2");
    }

    #[test]
    fn unterminated_quote_keeps_rest() {
        assert_eq!(
            texts("SELECT 'open; SELECT 2;"),
            ["SELECT 'open; SELECT 2;"]
        );
    }

    #[test]
    fn splits_example_schema() {
        let schema = include_str!("../../schema.sql");

        let statements = split(schema);

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
