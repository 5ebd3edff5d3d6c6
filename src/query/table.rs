//! The table format: what a person reads on a terminal.
//!
//! Numbers are right-aligned; floats keep about three significant digits
//! (`97.0`, `1.23`, `0.0123`) and never print as `1.2307692307692308`; NULL
//! reads as NULL; a table wider than the terminal has its widest cells cut
//! (ending in `…`) and the footer says which columns were cut. CSV, JSON and
//! Parquet keep every digit and every character.

use std::io::Write;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float32Type, Float64Type, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::error::Result;
use crate::query::output::Written;

/// Narrowest a cut column gets.
const MIN_WIDTH: usize = 8;

/// `v` with about three significant digits and at least one decimal.
pub fn float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return "0.0".into();
    }
    let a = v.abs();
    let magnitude = a.log10().floor() as i32;
    let decimals = if magnitude >= 0 {
        (2 - magnitude).max(1)
    } else {
        (-magnitude + 2).min(9)
    } as usize;
    format!("{v:.decimals$}")
}

/// Every cell of `batches` as text, column by column.
fn cells(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<Vec<String>>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut cols: Vec<Vec<String>> = vec![Vec::new(); schema.fields().len()];
    for b in batches {
        for (i, col) in b.columns().iter().enumerate() {
            let out = &mut cols[i];
            match col.data_type() {
                DataType::Float64 => {
                    let a = col.as_primitive::<Float64Type>();
                    for r in 0..a.len() {
                        out.push(if a.is_null(r) {
                            "NULL".into()
                        } else {
                            float(a.value(r))
                        });
                    }
                }
                DataType::Float32 => {
                    let a = col.as_primitive::<Float32Type>();
                    for r in 0..a.len() {
                        out.push(if a.is_null(r) {
                            "NULL".into()
                        } else {
                            float(f64::from(a.value(r)))
                        });
                    }
                }
                _ => {
                    let f = ArrayFormatter::try_new(col.as_ref(), &options)?;
                    for r in 0..col.len() {
                        // a line break would break the table's rows
                        let s = f.value(r).to_string();
                        out.push(if s.contains(['\n', '\r', '\t']) {
                            s.replace('\n', "\\n")
                                .replace('\r', "\\r")
                                .replace('\t', " ")
                        } else {
                            s
                        });
                    }
                }
            }
        }
    }
    Ok(cols)
}

/// `s` cut to `width` display columns, ending in `…` when cut.
fn cut(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// Column widths that fit `limit`: the widest columns give way first, down
/// to `MIN_WIDTH` (or their header). Returns the widths and the cut columns.
fn fit(natural: &[usize], floor: &[usize], limit: Option<usize>) -> (Vec<usize>, Vec<usize>) {
    let mut widths = natural.to_vec();
    let Some(limit) = limit else {
        return (widths, vec![]);
    };
    // `| a | b |`: 3 per column plus 1
    let frame = 3 * widths.len() + 1;
    let budget = limit.saturating_sub(frame);
    loop {
        let total: usize = widths.iter().sum();
        if total <= budget {
            break;
        }
        // shrink the widest column that can still shrink
        let Some((i, _)) = widths
            .iter()
            .enumerate()
            .filter(|(i, w)| **w > floor[*i])
            .max_by_key(|(_, w)| **w)
        else {
            break;
        };
        let over = total - budget;
        let second = widths
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, w)| *w)
            .max()
            .unwrap_or(0);
        let step = over
            .min(widths[i] - floor[i])
            .min((widths[i] - second).max(1));
        widths[i] -= step;
    }
    let cut: Vec<usize> = (0..widths.len())
        .filter(|&i| widths[i] < natural[i])
        .collect();
    (widths, cut)
}

/// Writes `batches` as a table; returns the names of the columns cut to fit `width`.
pub fn render<W: Write>(
    w: &mut W,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    width: Option<usize>,
) -> Result<Vec<String>> {
    let cols = cells(schema, batches)?;
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let natural: Vec<usize> = names
        .iter()
        .zip(&cols)
        .map(|(n, c)| {
            c.iter()
                .map(|s| s.width())
                .max()
                .unwrap_or(0)
                .max(n.width())
        })
        .collect();
    let floor: Vec<usize> = names
        .iter()
        .zip(&natural)
        .map(|(n, nat)| (*nat).min(n.width().max(MIN_WIDTH)))
        .collect();
    let (widths, cut_cols) = fit(&natural, &floor, width);
    let right: Vec<bool> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().is_numeric())
        .collect();
    let rule: String = {
        let mut s = String::from("+");
        for wd in &widths {
            s.push_str(&"-".repeat(wd + 2));
            s.push('+');
        }
        s
    };
    let line = |cells: Vec<String>| -> String {
        let mut s = String::from("|");
        for (i, c) in cells.into_iter().enumerate() {
            let c = cut(&c, widths[i]);
            let pad = widths[i].saturating_sub(c.width());
            if right[i] {
                s.push_str(&format!(" {}{} |", " ".repeat(pad), c));
            } else {
                s.push_str(&format!(" {}{} |", c, " ".repeat(pad)));
            }
        }
        s
    };
    let io = |e: std::io::Error| crate::error::Error::Arrow(e.into());
    writeln!(w, "{rule}").map_err(io)?;
    // headers are left-aligned over text, right-aligned over numbers
    writeln!(w, "{}", line(names.iter().map(|n| n.to_string()).collect())).map_err(io)?;
    writeln!(w, "{rule}").map_err(io)?;
    let rows = cols.first().map(Vec::len).unwrap_or(0);
    for r in 0..rows {
        writeln!(w, "{}", line(cols.iter().map(|c| c[r].clone()).collect())).map_err(io)?;
    }
    writeln!(w, "{rule}").map_err(io)?;
    Ok(cut_cols.into_iter().map(|i| names[i].to_string()).collect())
}

/// `3 rows`, `12,345 rows (1,000 shown)`, and which columns were cut.
pub fn footer<W: Write>(w: &mut W, written: Written, cut: &[String]) -> Result<()> {
    let n = crate::query::thousands(written.rows);
    let mut s = if written.rows == 1 {
        "1 row".to_string()
    } else {
        format!("{n} rows")
    };
    if written.hidden() > 0 {
        s.push_str(&format!(
            " ({} shown; --max-rows N, LIMIT or --format csv for more)",
            crate::query::thousands(written.shown)
        ));
    }
    if !cut.is_empty() {
        s.push_str(&format!(
            "; cut to fit the terminal: {} (--format csv shows them whole)",
            cut.join(", ")
        ));
    }
    writeln!(w, "{s}").map_err(|e| crate::error::Error::Arrow(e.into()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats() {
        assert_eq!(float(97.0), "97.0");
        assert_eq!(float(1.2307692307692308), "1.23");
        assert_eq!(float(100.0 / 3.0), "33.3");
        assert_eq!(float(0.012345), "0.0123");
        assert_eq!(float(12345.678), "12345.7");
        assert_eq!(float(-2.5), "-2.50");
        assert_eq!(float(0.0), "0.0");
        assert_eq!(float(f64::NAN), "NaN");
    }

    #[test]
    fn fitting() {
        let (w, cut) = fit(&[10, 200, 5], &[8, 8, 5], Some(80));
        assert!(w.iter().sum::<usize>() + 10 <= 80, "{w:?}");
        assert_eq!(cut, vec![1]);
        let (w, cut) = fit(&[10, 20], &[8, 8], None);
        assert_eq!(w, vec![10, 20]);
        assert!(cut.is_empty());
        assert_eq!(super::cut("abcdefghij", 5), "abcd…");
    }
}
