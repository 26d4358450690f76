//! Port of the elastic-tabstop writer docker uses for table output
//! (`cli/command/formatter/tabwriter`, a fork of Go's `text/tabwriter` that
//! measures cells with go-runewidth).
//!
//! Text is split into cells terminated by `'\t'`, `'\v'`, `'\n'` or `'\f'`.
//! Tab-terminated cells in consecutive lines form a column block; every cell
//! of a block is padded to the block's width (`max(minwidth, cell width +
//! padding)`). The last cell of a line is not part of a column and is never
//! padded. A line with fewer cells ends the blocks to its right. Docker
//! always uses `NewWriter(out, 10, 1, 3, ' ', 0)`: see [`TabWriter::docker`].

use super::runewidth::str_width;

#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    /// Size of the cell's text in bytes.
    size: usize,
    /// Display width of the cell's text.
    width: usize,
}

/// A buffering elastic-tabstop writer (flags 0: left-aligned, no escapes,
/// no HTML filtering).
#[derive(Debug)]
pub struct TabWriter {
    minwidth: usize,
    tabwidth: usize,
    padding: usize,
    padchar: char,
    /// Text of all cells, without the terminators.
    buf: String,
    /// Byte offset in `buf` where the current (unterminated) cell starts.
    cell_start: usize,
    lines: Vec<Vec<Cell>>,
    widths: Vec<usize>,
    out: String,
}

impl TabWriter {
    /// Creates a writer with Go's `tabwriter.NewWriter` parameters
    /// (`flags` is always 0).
    pub fn new(minwidth: usize, tabwidth: usize, padding: usize, padchar: char) -> Self {
        TabWriter {
            minwidth,
            tabwidth,
            padding,
            padchar,
            buf: String::new(),
            cell_start: 0,
            lines: vec![Vec::new()],
            widths: Vec::new(),
            out: String::new(),
        }
    }

    /// The writer docker's formatter uses: minwidth 10, tabwidth 1,
    /// padding 3, padchar `' '`, no flags.
    pub fn docker() -> Self {
        Self::new(10, 1, 3, ' ')
    }

    /// Convenience: formats `text` with docker's settings and flushes.
    pub fn format_docker(text: &str) -> String {
        let mut w = Self::docker();
        w.write(text);
        w.finish()
    }

    fn terminate_cell(&mut self) -> usize {
        let text = &self.buf[self.cell_start..];
        let cell = Cell {
            size: text.len(),
            width: str_width(text),
        };
        self.cell_start = self.buf.len();
        let line = self
            .lines
            .last_mut()
            .expect("there is always a current line");
        line.push(cell);
        line.len()
    }

    /// Appends text; output is produced as column blocks complete.
    pub fn write(&mut self, text: &str) {
        let mut start = 0;
        for (i, ch) in text.char_indices() {
            if matches!(ch, '\t' | '\u{0b}' | '\n' | '\u{0c}') {
                self.buf.push_str(&text[start..i]);
                start = i + 1;
                let ncells = self.terminate_cell();
                if ch == '\n' || ch == '\u{0c}' {
                    self.lines.push(Vec::new());
                    if ch == '\u{0c}' || ncells == 1 {
                        // A one-cell line cannot influence the layout of the
                        // following lines, so everything buffered is final.
                        self.flush_buffered();
                    }
                }
            }
        }
        self.buf.push_str(&text[start..]);
    }

    /// Flushes buffered text and returns everything written so far.
    pub fn finish(mut self) -> String {
        self.flush_buffered();
        self.out
    }

    fn flush_buffered(&mut self) {
        if self.buf.len() > self.cell_start {
            self.terminate_cell();
        }
        let nlines = self.lines.len();
        self.format(0, 0, nlines);
        self.buf.clear();
        self.cell_start = 0;
        self.lines.clear();
        self.lines.push(Vec::new());
        self.widths.clear();
    }

    fn write_padding(&mut self, textw: usize, cellw: usize) {
        if self.padchar == '\t' {
            if self.tabwidth == 0 {
                return;
            }
            let cellw = cellw.div_ceil(self.tabwidth) * self.tabwidth;
            let n = cellw.saturating_sub(textw);
            for _ in 0..n.div_ceil(self.tabwidth) {
                self.out.push('\t');
            }
            return;
        }
        for _ in textw..cellw {
            self.out.push(self.padchar);
        }
    }

    fn write_lines(&mut self, mut pos: usize, line0: usize, line1: usize) -> usize {
        for i in line0..line1 {
            let ncells = self.lines[i].len();
            for j in 0..ncells {
                let c = self.lines[i][j];
                if c.size > 0 {
                    let text = &self.buf[pos..pos + c.size];
                    self.out.push_str(text);
                    pos += c.size;
                }
                if j < self.widths.len() {
                    let w = self.widths[j];
                    self.write_padding(c.width, w);
                }
            }
            if i + 1 == self.lines.len() {
                // Last buffered line: no newline, the (empty) partial cell
                // has already been terminated by the flush.
            } else {
                self.out.push('\n');
            }
        }
        pos
    }

    fn format(&mut self, pos0: usize, line0: usize, line1: usize) -> usize {
        let mut pos = pos0;
        let mut line0 = line0;
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            // This line has a cell in `column`: a column block starts here.
            pos = self.write_lines(pos, line0, this);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                width = width.max(line[column].width + self.padding);
                this += 1;
            }
            self.widths.push(width);
            pos = self.format(pos, line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(pos, line0, line1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    // The flag-free cases of Go's text/tabwriter tests (tabwriter_test.go),
    // named as there. "11" is adjusted for docker's fork, which measures
    // "本" as 2 cells wide (go-runewidth) where Go counts 1 rune.
    #[rstest]
    #[case::t1a(8, 0, 1, '.', "", "")]
    #[case::t2(8, 0, 1, '.', "\n\n\n", "\n\n\n")]
    #[case::t3(8, 0, 1, '.', "a\nb\nc", "a\nb\nc")]
    #[case::t4a(8, 0, 1, '.', "\t", "")]
    #[case::t5(8, 0, 1, '.', "*\t*", "*.......*")]
    #[case::t5b(8, 0, 1, '.', "*\t*\n", "*.......*\n")]
    #[case::t5c(8, 0, 1, '.', "*\t*\t", "*.......*")]
    #[case::t6(8, 0, 1, '.', "\t\n", "........\n")]
    #[case::t7a(8, 0, 1, '.', "a) foo", "a) foo")]
    #[case::t7b(8, 0, 1, ' ', "b) foo\tbar", "b) foo  bar")]
    #[case::t7c(8, 0, 1, '.', "c) foo\tbar\t", "c) foo..bar")]
    #[case::t7d(8, 0, 1, '.', "d) foo\tbar\n", "d) foo..bar\n")]
    #[case::t7e(8, 0, 1, '.', "e) foo\tbar\t\n", "e) foo..bar.....\n")]
    #[case::t8(8, 0, 1, '*', "Hello, world!\n", "Hello, world!\n")]
    #[case::t9a(
        1,
        0,
        0,
        '.',
        "1\t2\t3\t4\n11\t222\t3333\t44444\n",
        "1.2..3...4\n11222333344444\n"
    )]
    #[case::t9c(
        1,
        0,
        0,
        '.',
        "1\t2\t3\t4\u{c}11\t222\t3333\t44444\n",
        "1234\n11222333344444\n"
    )]
    #[case::t10a(5, 0, 0, '.', "1\t2\t3\t4\n", "1....2....3....4\n")]
    #[case::t10b(5, 0, 0, '.', "1\t2\t3\t4\t\n", "1....2....3....4....\n")]
    #[case::t11_docker_width(
        8,
        0,
        1,
        '.',
        "本\tb\tc\naa\t本本本\tcccc\tddddd\naaa\tbbbb\n",
        "本......b.......c\naa......本本本..cccc....ddddd\naaa.....bbbb\n"
    )]
    #[case::t12b(
        2,
        0,
        0,
        ' ',
        "a\tb\tc\naa\tbbb\tcccc\naaa\tbbbb\n",
        "a  b  c\naa bbbcccc\naaabbbb\n"
    )]
    #[case::t12c(
        8,
        0,
        1,
        '_',
        "a\tb\tc\naa\tbbb\tcccc\naaa\tbbbb\n",
        "a_______b_______c\naa______bbb_____cccc\naaa_____bbbb\n"
    )]
    #[case::t13b(
        4,
        0,
        3,
        '.',
        "4444\t333\t22\t1\t333\n999999999\t22\n7\t22\n\t\t\t88888888\n\n666666\t666666\t666666\t4444\n1\t1\t999999999\t0000000000\n",
        "4444........333...22...1...333\n999999999...22\n7...........22\n....................88888888\n\n666666...666666...666666......4444\n1........1........999999999...0000000000\n"
    )]
    #[case::t15a(4, 0, 0, '.', "a\t\tb", "a.......b")]
    #[case::t16a(
        100,
        100,
        0,
        '\t',
        "a\tb\t\td\na\tb\t\td\te\na\na\tb\tc\td\na\tb\tc\td\te\n",
        "a\tb\t\td\na\tb\t\td\te\na\na\tb\tc\td\na\tb\tc\td\te\n"
    )]
    fn go_tabwriter_table(
        #[case] minwidth: usize,
        #[case] tabwidth: usize,
        #[case] padding: usize,
        #[case] padchar: char,
        #[case] input: &str,
        #[case] expected: &str,
    ) {
        let mut w = TabWriter::new(minwidth, tabwidth, padding, padchar);
        w.write(input);
        assert_eq!(w.finish(), expected);
        // Writing byte by byte (char by char) must not change the result.
        let mut w = TabWriter::new(minwidth, tabwidth, padding, padchar);
        for (i, ch) in input.char_indices() {
            w.write(&input[i..i + ch.len_utf8()]);
        }
        assert_eq!(w.finish(), expected);
    }

    // Golden outputs of docker's own tests (network-list.golden,
    // formatter_test.go) and of a real `docker network ls`.
    #[rstest]
    #[case(
        "NETWORK ID\tNAME\tDRIVER\tSCOPE\n123454321\tnetwork_1\t09.7.01\tglobal\n",
        "NETWORK ID   NAME        DRIVER    SCOPE\n123454321    network_1   09.7.01   global\n"
    )]
    #[case(
        "NETWORK ID\tNAME\tDRIVER\tSCOPE\nnetworkID1\tfoobar_baz\tfoo\tlocal\nnetworkID2\tfoobar_bar\tbar\tlocal\n",
        "NETWORK ID   NAME         DRIVER    SCOPE\nnetworkID1   foobar_baz   foo       local\nnetworkID2   foobar_bar   bar       local\n"
    )]
    #[case(
        "NETWORK ID\tNAME\tDRIVER\tSCOPE\ndecbc8d10a7d\tbridge\tbridge\tlocal\n",
        "NETWORK ID     NAME      DRIVER    SCOPE\ndecbc8d10a7d   bridge    bridge    local\n"
    )]
    #[case(
        "NETWORK ID\tNAME\tDRIVER\tSCOPE\ndecbc8d10a7d\tbridge\tbridge\tlocal\n5ae4fa2b7e4c\thost\thost\tlocal\n0cdec720eeca\tmhk_network\tbridge\tlocal\n0e9f5b0d0b5f\tnone\tnull\tlocal\n",
        "NETWORK ID     NAME          DRIVER    SCOPE\n\
         decbc8d10a7d   bridge        bridge    local\n\
         5ae4fa2b7e4c   host          host      local\n\
         0cdec720eeca   mhk_network   bridge    local\n\
         0e9f5b0d0b5f   none          null      local\n"
    )]
    #[case(
        "NETWORK ID\tNAME\tDRIVER\tSCOPE\n",
        "NETWORK ID   NAME      DRIVER    SCOPE\n"
    )]
    #[case("NAME\nfoobar_baz\nfoobar_bar\n", "NAME\nfoobar_baz\nfoobar_bar\n")]
    #[case("\n{\"a\":1}\n", "\n{\"a\":1}\n")]
    // A shorter line ends the column block: widths restart below it.
    #[case(
        "a\tbbbbbbbbbbbbbbbbbb\tc\nx\n1\t2\t3\n",
        "a         bbbbbbbbbbbbbbbbbb   c\nx\n1         2         3\n"
    )]
    // Cells with wide characters are measured in display cells.
    #[case("名前\tX\nab\tY\n", "名前      X\nab        Y\n")]
    // Text after the last newline is emitted unpadded at flush.
    #[case("a\tb\nc\td", "a         b\nc         d")]
    fn docker_golden(#[case] input: &str, #[case] expected: &str) {
        assert_eq!(TabWriter::format_docker(input), expected);
    }
}
