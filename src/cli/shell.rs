//! `dnsq sql` on a terminal with no query: an interactive shell.
//!
//! Line editing, history (`$DNSQ_HISTORY`, else `~/.dnsq_history`) and
//! completion come from rustyline. A statement runs when a line ends it with
//! `;`; backslash commands (`\d`, `\f`, `\timing`, `\format`, `\set`, `\i`,
//! `\q`) act at once. Ctrl-C at the prompt clears the statement being typed;
//! during a query it cancels the query; Ctrl-D leaves.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use crate::cli::runtime;
use crate::cli::sql::{functions_text, show_text, terminal_width};
use crate::dataset::schema;
use crate::query::engine::EngineOptions;
use crate::query::output::{write_stream, Format};
use crate::query::params::{Binder, Given, Header};
use crate::query::policy::Guard;
use crate::query::{saved, Session};

const HELP: &str = "\
End a statement with ; to run it (it may span lines). Commands:
  \\d              tables          \\d TABLE   its columns
  \\f              DNS functions   \\df        every function
  \\l              saved queries   \\i NAME    run a saved query (\\show NAME: its SQL)
  \\set NAME VALUE a parameter ($NAME; also since, until, bucket, leg, top)
  \\unset NAME     \\set           (alone) lists them
  \\format table|csv|json|ndjson   \\rows N    rows the table shows
  \\timing         time each statement
  \\q              quit (or Ctrl-D); Ctrl-C clears the line or cancels a query
";

/// Words the shell completes.
struct Words {
    words: Vec<String>,
}

impl Completer for Words {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '\\' || c == '$'))
            .map(|i| i + 1)
            .unwrap_or(0);
        let prefix = &line[start..pos];
        if prefix.is_empty() {
            return Ok((start, vec![]));
        }
        let lower = prefix.to_ascii_lowercase();
        let mut out: Vec<Pair> = self
            .words
            .iter()
            .filter(|w| w.to_ascii_lowercase().starts_with(&lower))
            .map(|w| Pair {
                display: w.clone(),
                replacement: w.clone(),
            })
            .collect();
        out.dedup_by(|a, b| a.replacement == b.replacement);
        Ok((start, out))
    }
}

impl Hinter for Words {
    type Hint = String;
}

impl Highlighter for Words {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for Words {}

impl Helper for Words {}

/// Where the history lives: `$DNSQ_HISTORY`, else `~/.dnsq_history`.
fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DNSQ_HISTORY") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".dnsq_history"))
}

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "LIMIT",
    "HAVING",
    "WITH",
    "JOIN",
    "LEFT JOIN",
    "DISTINCT",
    "COUNT",
    "FILTER",
    "OVER",
    "PARTITION BY",
    "DESC",
    "ASC",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "IS NOT NULL",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "AS",
    "EXPLAIN",
    "SHOW TABLES",
    "DESCRIBE",
    "UNION ALL",
    "INTERVAL",
    "date_trunc",
    "date_bin",
];

/// Every table, column, function and saved query name, and the commands.
async fn words(session: &Session) -> Vec<String> {
    let mut w: Vec<String> = Vec::new();
    for t in ["transactions", "captures", crate::query::RAW] {
        w.push(t.to_string());
        if let Ok(df) = session.ctx.table(t).await {
            for f in df.schema().fields() {
                w.push(f.name().clone());
            }
        }
    }
    let state = session.ctx.state();
    w.extend(state.scalar_functions().keys().cloned());
    w.extend(state.aggregate_functions().keys().cloned());
    w.extend(state.window_functions().keys().cloned());
    w.extend(state.table_functions().keys().cloned());
    w.extend(saved::SAVED.iter().map(|(n, _)| n.to_string()));
    w.extend(KEYWORDS.iter().map(|k| k.to_string()));
    for c in [
        "\\d", "\\df", "\\f", "\\l", "\\i", "\\show", "\\set", "\\unset", "\\format", "\\rows",
        "\\timing", "\\q", "\\?",
    ] {
        w.push(c.to_string());
    }
    for p in ["$since", "$until", "$bucket", "$leg", "$top"] {
        w.push(p.to_string());
    }
    w.sort();
    w.dedup();
    w
}

struct Shell {
    session: Session,
    guard: Guard,
    given: Given,
    format: Format,
    max_rows: usize,
    timing: bool,
}

pub fn run(
    dir: &Path,
    options: EngineOptions,
    given: Given,
    allow_write: bool,
    max_rows: usize,
) -> anyhow::Result<ExitCode> {
    crate::cli::without_huge_pages();
    let rt = runtime()?;
    let (session, guard) = rt.block_on(async {
        let session = Session::open_with(dir, &options).await?;
        let guard = Guard::new(&session.ctx, dir, allow_write).await?;
        Ok::<_, crate::error::Error>((session, guard))
    })?;
    let words = rt.block_on(words(&session));
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .max_history_size(10_000)?
        .build();
    let mut rl: Editor<Words, FileHistory> = Editor::with_config(config)?;
    rl.set_helper(Some(Words { words }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    let mut shell = Shell {
        session,
        guard,
        given,
        format: Format::Table,
        max_rows,
        timing: false,
    };
    println!(
        "dnsq {} on {}: end statements with ;  \\? help, \\q quit",
        env!("CARGO_PKG_VERSION"),
        dir.display()
    );
    let mut buf = String::new();
    loop {
        let prompt = if buf.is_empty() { "dnsq> " } else { "  ...> " };
        match rl.readline(prompt) {
            Ok(line) => {
                if buf.is_empty() && line.trim_start().starts_with('\\') {
                    let _ = rl.add_history_entry(line.trim());
                    if !shell.command(line.trim(), &rt) {
                        break;
                    }
                    continue;
                }
                if buf.is_empty() && line.trim().is_empty() {
                    continue;
                }
                buf.push_str(&line);
                buf.push('\n');
                if complete(&buf) {
                    let text = std::mem::take(&mut buf);
                    let _ = rl.add_history_entry(text.trim());
                    shell.sql(&text, &rt);
                }
            }
            Err(ReadlineError::Interrupted) => {
                buf.clear();
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
        if let Some(h) = &history {
            let _ = rl.save_history(h);
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    Ok(ExitCode::SUCCESS)
}

/// A statement ends with `;` outside quotes and comments.
fn complete(text: &str) -> bool {
    let mut in_single = false;
    let mut in_double = false;
    let mut last = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' if !in_double => in_single = !in_single,
            '"' if !in_single => in_double = !in_double,
            '-' if !in_single && !in_double && chars.peek() == Some(&'-') => {
                // a comment to the end of the line
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                continue;
            }
            _ => {}
        }
        if !c.is_whitespace() {
            last = Some((c, in_single || in_double));
        }
    }
    matches!(last, Some((';', false)))
}

impl Shell {
    /// Runs a backslash command; `false` to quit.
    fn command(&mut self, line: &str, rt: &tokio::runtime::Runtime) -> bool {
        let mut parts = line.splitn(3, char::is_whitespace);
        let cmd = parts.next().unwrap_or("");
        let arg = parts.next().map(str::trim).unwrap_or("");
        let rest = parts.next().map(str::trim).unwrap_or("");
        match cmd {
            "\\q" | "\\quit" => return false,
            "\\?" | "\\h" | "\\help" => print!("{HELP}"),
            "\\d" if arg.is_empty() => {
                println!("transactions       one row per DNS transaction (a query and its response), with leg");
                println!("captures           one row per ingested capture file");
                println!(
                    "{:18} the stored rows, without the computed leg column",
                    crate::query::RAW
                );
            }
            "\\d" => self.describe(arg, rt),
            "\\f" => print!("{}", functions_text()),
            "\\df" => self.sql(
                "SELECT DISTINCT routine_name AS function, function_type AS kind \
                 FROM information_schema.routines ORDER BY 1;",
                rt,
            ),
            "\\l" => {
                for (name, sql) in saved::SAVED {
                    println!("{name:24} {}", Header::parse(sql).purpose);
                }
            }
            "\\show" => match saved::find(arg) {
                Some(sql) => print!("{}", show_text(arg, sql)),
                None => println!("no saved query `{arg}` (\\l lists them)"),
            },
            "\\i" => match saved::find(arg) {
                Some(sql) => self.sql(sql, rt),
                None => match std::fs::read_to_string(arg) {
                    Ok(sql) => self.sql(&sql, rt),
                    Err(e) => println!("\\i {arg}: no saved query of that name, and {e}"),
                },
            },
            "\\set" if arg.is_empty() => {
                if self.given.values.is_empty() {
                    println!("no parameters set (\\set NAME VALUE)");
                }
                for (k, v) in &self.given.values {
                    println!("${k} = {v}");
                }
            }
            "\\set" => {
                let v = rest.trim_matches('\'');
                if v.is_empty() {
                    println!("\\set {arg} VALUE");
                } else {
                    let name = arg.trim_start_matches('$');
                    self.given.set(name, v);
                    println!("${name} = {v}");
                }
            }
            "\\unset" => {
                self.given.values.remove(arg.trim_start_matches('$'));
            }
            "\\format" => {
                match arg {
                    "table" => self.format = Format::Table,
                    "csv" => self.format = Format::Csv,
                    "json" => self.format = Format::Json,
                    "ndjson" => self.format = Format::Ndjson,
                    _ => print!("\\format table|csv|json|ndjson; "),
                }
                println!("format {}", format!("{:?}", self.format).to_lowercase());
            }
            "\\rows" => match arg.parse() {
                Ok(n) => self.max_rows = n,
                Err(_) => println!("\\rows N: rows the table shows (now {})", self.max_rows),
            },
            "\\timing" => {
                self.timing = !self.timing;
                println!("timing {}", if self.timing { "on" } else { "off" });
            }
            other => println!("unknown command {other}; \\? lists them"),
        }
        true
    }

    fn describe(&mut self, table: &str, rt: &tokio::runtime::Runtime) {
        let docs: Vec<(String, String)> = schema::transaction_columns()
            .into_iter()
            .chain(schema::capture_columns())
            .map(|(n, _, _, d)| (n.to_string(), d.to_string()))
            .collect();
        let df = match rt.block_on(self.session.ctx.table(table)) {
            Ok(df) => df,
            Err(e) => {
                println!("{e}");
                return;
            }
        };
        let fields: Vec<_> = df.schema().fields().iter().cloned().collect();
        let name_w = fields
            .iter()
            .map(|f| f.name().len())
            .max()
            .unwrap_or(4)
            .max(6);
        let types: Vec<String> = fields
            .iter()
            .map(|f| crate::cli::sql::type_name(f.data_type()))
            .collect();
        let type_w = types
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(4)
            .clamp(4, 28);
        println!("{:name_w$}  {:type_w$}  meaning", "column", "type");
        for (f, ty) in fields.iter().zip(types) {
            let doc = match f.name().as_str() {
                "leg" => {
                    "downstream or upstream: which side of a resolver (computed at query time)"
                        .to_string()
                }
                "date" => {
                    "UTC day of ts (the Hive partition date=YYYY-MM-DD), as a DATE".to_string()
                }
                n => docs
                    .iter()
                    .find(|(c, _)| c == n)
                    .map(|(_, d)| d.clone())
                    .unwrap_or_default(),
            };
            println!("{:name_w$}  {:type_w$}  {doc}", f.name(), ty);
        }
    }

    /// Runs the statements of `text`, printing results or the error.
    fn sql(&mut self, text: &str, rt: &tokio::runtime::Runtime) {
        let started = Instant::now();
        let header = Header::parse(text);
        let statements = match Session::statements(text) {
            Ok(s) => s,
            Err(e) => {
                println!("error: {e}");
                return;
            }
        };
        let width = terminal_width();
        // the busiest domain the ingest found, instead of a scan for it
        let given = self
            .session
            .with_kept_domain(text, &header, &self.given, false);
        let work = async {
            let binder = Binder {
                header: &header,
                given: &given,
            };
            for st in statements {
                let mut notes = Vec::new();
                let stream = self
                    .session
                    .execute_with(st, &self.guard, &binder, &mut notes)
                    .await;
                for n in notes {
                    println!("note: {n}");
                }
                let stream = stream?;
                if stream.schema().fields().is_empty() {
                    println!("ok");
                    continue;
                }
                let out = std::io::stdout();
                let (_, mut out) =
                    write_stream(stream, self.format, self.max_rows, width, out).await?;
                let _ = out.flush();
            }
            Ok::<_, crate::error::Error>(())
        };
        let result = rt.block_on(async {
            tokio::select! {
                r = work => Some(r),
                _ = tokio::signal::ctrl_c() => None,
            }
        });
        match result {
            Some(Ok(())) => {}
            Some(Err(e)) => println!("error: {e}"),
            None => println!("cancelled"),
        }
        if self.timing {
            println!("time: {:.3} s", started.elapsed().as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_ends() {
        assert!(complete("select 1;"));
        assert!(complete("select 1;\n"));
        assert!(!complete("select ';'"));
        assert!(!complete("select 1 -- done;"));
        assert!(complete("select 1 -- first\n;"));
        assert!(!complete("select\n  1"));
    }
}
