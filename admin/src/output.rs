//! What a command prints: one JSON document with `--json`, else lines and tables.

use comfy_table::{presets, Table};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Output {
    pub json: Value,
    pub text: String,
}

impl Output {
    pub fn new(json: Value, text: impl Into<String>) -> Self {
        Self {
            json,
            text: text.into(),
        }
    }

    /// The text to print: pretty JSON, or the human-readable form.
    pub fn render(&self, json: bool) -> String {
        if json {
            serde_json::to_string_pretty(&self.json).unwrap_or_else(|_| self.json.to_string())
        } else {
            self.text.clone()
        }
    }
}

/// A plain table (no borders: it reads in a terminal and greps well), header first.
pub fn table<R, C>(header: &[&str], rows: R) -> String
where
    R: IntoIterator<Item = C>,
    C: IntoIterator<Item = String>,
{
    let mut t = Table::new();
    t.load_style(presets::NOTHING).set_header(header.to_vec());
    let mut any = false;
    for row in rows {
        t.add_row(row.into_iter().collect::<Vec<_>>());
        any = true;
    }
    if !any {
        return "(none)".to_owned();
    }
    t.to_string()
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}
