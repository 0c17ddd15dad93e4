//! A text table that fits a width: columns carry a priority, numbers are right-aligned in human
//! units, and the first (name) column is abbreviated in the middle (`/features…conv/Conv`).
//!
//! Contract of [`Table::render`] with [`Fit::Width`]`(w)`: no line is wider than `w` characters
//! (for any `w`; below about 30 the last resort cuts lines). To get there it drops columns of
//! priority below [`NAME_KEEP`] (the lowest first, the rightmost first among equals), then
//! abbreviates names down to a quarter of the width, then drops more columns (never the name
//! column), then abbreviates names further; a line at the end says how many columns were
//! left out. With [`Fit::Wide`] every column is printed with its exact value (integers as the
//! JSON has them, seconds to the microsecond) whatever the width.

use super::units;

/// How a column's cells are aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Padded on the right (names, protocols).
    Left,
    /// Padded on the left (numbers).
    Right,
}

/// One column: header, alignment, and how much it matters when space is short.
#[derive(Clone, Debug)]
pub struct Column {
    header: String,
    align: Align,
    /// Higher is kept longer; the name column is always kept.
    priority: u8,
    name: bool,
    /// Unit of the exact values, appended to the header under [`Fit::Wide`].
    unit: Option<&'static str>,
}

impl Column {
    /// The rows' name (the first column): left-aligned, never dropped, abbreviated in the middle.
    pub fn name(header: &str) -> Self {
        Column { header: header.into(), align: Align::Left, priority: u8::MAX, name: true, unit: None }
    }

    /// A left-aligned text column.
    pub fn text(header: &str, priority: u8) -> Self {
        Column { header: header.into(), align: Align::Left, priority, name: false, unit: None }
    }

    /// A right-aligned number column.
    pub fn number(header: &str, priority: u8) -> Self {
        Column { header: header.into(), align: Align::Right, priority, name: false, unit: None }
    }

    /// The unit the exact values are in (`B`, `s`), shown in the header under [`Fit::Wide`].
    pub fn unit(mut self, unit: &'static str) -> Self {
        self.unit = Some(unit);
        self
    }
}

/// One cell: its human form (`40.4 MB`) and its exact form (`40407083`).
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    human: String,
    exact: String,
}

impl Cell {
    /// Text, the same in both forms.
    pub fn text(s: impl Into<String>) -> Self {
        let s = s.into();
        Cell { human: s.clone(), exact: s }
    }

    /// A byte count.
    pub fn bytes(n: u64) -> Self {
        Cell { human: units::bytes(n), exact: n.to_string() }
    }

    /// A count (gates, ReLUs, rounds).
    pub fn count(n: u64) -> Self {
        Cell { human: units::count(n), exact: n.to_string() }
    }

    /// A duration in seconds (exact form: seconds to the microsecond).
    pub fn seconds(s: f64) -> Self {
        Cell { human: units::seconds(s), exact: format!("{s:.6}") }
    }

    /// An empty cell.
    pub fn empty() -> Self {
        Cell::text("")
    }
}

/// How wide a table may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// At most this many characters a line, in human units.
    Width(usize),
    /// Every column, exact values, whatever the width (`--wide`).
    Wide,
}

impl Fit {
    /// `--wide`, else the width of [`terminal_width`].
    pub fn terminal(wide: bool) -> Fit {
        if wide { Fit::Wide } else { Fit::Width(terminal_width()) }
    }
}

/// The width tables fit: the `COLUMNS` environment variable if it is a positive number, else
/// the terminal's width if standard output is a terminal, else 100.
pub fn terminal_width() -> usize {
    if let Some(n) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|&n| n > 0) {
        return n;
    }
    match terminal_size::terminal_size_of(std::io::stdout()) {
        Some((terminal_size::Width(w), _)) if w > 0 => w as usize,
        _ => 100,
    }
}

/// Columns and rows; [`Table::render`] lays them out.
#[derive(Clone, Debug)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
}

/// Columns below this priority are dropped before names are abbreviated.
pub const NAME_KEEP: u8 = 50;

/// Spaces between columns.
const GAP: usize = 2;

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// `s` in at most `n` characters, its start and end kept around a `…`.
pub fn abbreviate(s: &str, n: usize) -> String {
    let len = chars(s);
    if len <= n {
        return s.into();
    }
    if n == 0 {
        return String::new();
    }
    let tail = (n - 1) / 2;
    let head = n - 1 - tail;
    let start: String = s.chars().take(head).collect();
    let end: String = s.chars().skip(len - tail).collect();
    format!("{start}…{end}")
}

impl Table {
    /// An empty table with these columns, in display order.
    pub fn new(columns: Vec<Column>) -> Self {
        Table { columns, rows: Vec::new() }
    }

    /// Adds a row: one cell per column (missing cells are empty, extra ones ignored).
    pub fn row(&mut self, mut cells: Vec<Cell>) {
        cells.resize(self.columns.len(), Cell::empty());
        self.rows.push(cells);
    }

    /// The table as text, one line per row after the header, each ending in a newline.
    pub fn render(&self, fit: Fit) -> String {
        let wide = fit == Fit::Wide;
        let header = |c: &Column| match (wide, c.unit) {
            (true, Some(u)) => format!("{} {u}", c.header),
            _ => c.header.clone(),
        };
        let text = |cell: &Cell| if wide { cell.exact.clone() } else { cell.human.clone() };
        let natural: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                let cells = self.rows.iter().map(|r| chars(&text(&r[i])));
                cells.chain([chars(&header(&self.columns[i]))]).max().unwrap_or(0)
            })
            .collect();
        let mut width = natural.clone();
        let mut shown = vec![true; self.columns.len()];
        let total = |width: &[usize], shown: &[bool]| {
            let n = shown.iter().filter(|s| **s).count();
            width.iter().zip(shown).filter(|(_, s)| **s).map(|(w, _)| w).sum::<usize>() + GAP * n.saturating_sub(1)
        };
        let name = self.columns.iter().position(|c| c.name);
        if let Fit::Width(w) = fit {
            let lowest = |shown: &[bool], below: u8| {
                (0..self.columns.len())
                    .filter(|&i| shown[i] && !self.columns[i].name && self.columns[i].priority < below)
                    .min_by_key(|&i| (self.columns[i].priority, std::cmp::Reverse(i)))
            };
            // Whole names first, as long as only minor columns go for them.
            while total(&width, &shown) > w {
                match lowest(&shown, NAME_KEEP) {
                    Some(i) => shown[i] = false,
                    None => break,
                }
            }
            if let Some(n) = name {
                let t = total(&width, &shown);
                if t > w {
                    width[n] = width[n].saturating_sub(t - w).max((w / 4).max(16)).min(natural[n]);
                }
            }
            while total(&width, &shown) > w {
                match lowest(&shown, u8::MAX) {
                    Some(i) => shown[i] = false,
                    None => break,
                }
            }
            if let Some(n) = name {
                let t = total(&width, &shown);
                if t > w {
                    width[n] = width[n].saturating_sub(t - w).max(4);
                } else {
                    width[n] = natural[n].min(width[n] + (w - t));
                }
            }
        }
        let cols: Vec<usize> = (0..self.columns.len()).filter(|&i| shown[i]).collect();
        let line = |cells: Vec<String>| {
            let mut l = String::new();
            for (k, (&i, cell)) in cols.iter().zip(cells).enumerate() {
                if k > 0 {
                    l.push_str(&" ".repeat(GAP));
                }
                let cell = abbreviate(&cell, width[i]);
                let pad = " ".repeat(width[i] - chars(&cell));
                match self.columns[i].align {
                    Align::Left => l += &(cell + &pad),
                    Align::Right => l += &(pad + &cell),
                }
            }
            let mut l = l.trim_end().to_string();
            if let Fit::Width(w) = fit
                && chars(&l) > w
            {
                l = l.chars().take(w).collect();
            }
            l + "\n"
        };
        let mut out = line(cols.iter().map(|&i| header(&self.columns[i])).collect());
        for r in &self.rows {
            out += &line(cols.iter().map(|&i| text(&r[i])).collect());
        }
        let hidden = self.columns.len() - cols.len();
        if let Fit::Width(w) = fit
            && hidden > 0
        {
            let note = format!("({hidden} more column(s) and exact numbers with --wide)");
            out += &note.chars().take(w).collect::<String>();
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(vec![
            Column::name("layer"),
            Column::text("op", 90),
            Column::text("protocol", 80),
            Column::number("AND gates", 60),
            Column::number("offline s→c", 70).unit("B"),
            Column::number("online", 50).unit("B"),
            Column::number("rounds", 40),
            Column::number("time", 30).unit("s"),
            Column::text("shape", 20),
        ]);
        for i in 0..6u64 {
            t.row(vec![
                Cell::text(format!("/features/features.{i}/block/very_long_layer_name_in_the_middle/Conv")),
                Cell::text("conv2d"),
                Cell::text("HE+share"),
                Cell::count(52_224 * i),
                Cell::bytes(40_407_083 * i + 1),
                Cell::bytes(978_536 + i),
                Cell::count(12 + i),
                Cell::seconds(0.0012 * i as f64),
                Cell::text("[1,16,4,4]"),
            ]);
        }
        t
    }

    #[test]
    fn no_line_is_wider_than_the_width_and_names_keep_start_and_end() {
        let t = sample();
        for w in 60..=200 {
            let text = t.render(Fit::Width(w));
            for l in text.lines() {
                assert!(l.chars().count() <= w, "width {w}: {} chars: {l:?}\n{text}", l.chars().count());
            }
            let rows: Vec<&str> = text.lines().skip(1).take(6).collect();
            for (i, r) in rows.iter().enumerate() {
                let name = r.split("  ").next().unwrap();
                assert!(name.starts_with("/feat"), "width {w}: {r:?}");
                assert!(name.trim_end().ends_with("/Conv"), "width {w}: {r:?}");
                // Names differ only in their middle: the abbreviation must still tell them apart
                // once there is room for the digit.
                if w >= 120 {
                    assert!(name.contains(&format!("features.{i}")), "width {w}: {r:?}");
                }
            }
            // The most important columns survive down to 60.
            assert!(text.lines().next().unwrap().contains("op"), "width {w}\n{text}");
            assert!(text.contains("MB"), "human units at width {w}\n{text}");
        }
        // Narrow: columns are left out, and the table says so.
        let narrow = t.render(Fit::Width(60));
        assert!(!narrow.lines().next().unwrap().contains("shape"), "{narrow}");
        assert!(narrow.contains("--wide"), "{narrow}");
        // Wide enough: every column and no note.
        let roomy = t.render(Fit::Width(400));
        assert!(roomy.lines().next().unwrap().contains("shape") && !roomy.contains("--wide"), "{roomy}");
    }

    #[test]
    fn wide_prints_every_column_with_exact_values() {
        let text = sample().render(Fit::Wide);
        let header = text.lines().next().unwrap();
        assert!(header.contains("shape") && header.contains("offline s→c B") && header.contains("time s"), "{header}");
        let last: Vec<&str> = text.lines().nth(6).unwrap().split_whitespace().collect();
        assert!(last[0].ends_with("middle/Conv") && last[0].starts_with("/features/features.5/"), "{last:?}");
        let want = [(5 * 52_224u64).to_string(), (40_407_083u64 * 5 + 1).to_string(), "978541".into(), "17".into()];
        assert_eq!(&last[3..7], &want.iter().map(String::as_str).collect::<Vec<_>>()[..], "{text}");
        assert_eq!(last[7], "0.006000");
        assert!(!text.contains('…') && !text.contains("MB"), "{text}");
    }

    #[test]
    fn abbreviation_keeps_both_ends() {
        assert_eq!(abbreviate("/features/features.3/conv/Conv", 12), "/featu…/Conv");
        assert_eq!(abbreviate("short", 12), "short");
        assert_eq!(abbreviate("abcdef", 1), "…");
        assert_eq!(abbreviate("abcdef", 0), "");
    }
}
