//! A config file cut into the pieces it is parsed by, so that no tree of the whole document is ever
//! built: its top-level keys and tables, then each `[[tickets]]` entry with its sub-tables.
//!
//! The `toml` crate builds a tree of the whole document before serde sees any of it: for a file
//! of 100,000 tickets (15 MB) that tree took about 350 MiB, far more than the daemon holds once
//! running. The cut finds the table headers with `toml_parser`'s lexer (the one the `toml` crate
//! uses) and assigns each header's table to a piece by TOML's own rules: a `[tickets.…]` or
//! `[[tickets.…]]` table belongs to the last `[[tickets]]` above it, wherever it is written. Every
//! layout is cut, malformed ones too: a header that does not lex, or a bracket that never closes,
//! stays in a piece whose own parse reports the syntax error at its place in the file.

use std::borrow::Cow;
use std::ops::Range;

use toml_parser::Source;
use toml_parser::lexer::{Token, TokenKind};

/// A config file's text, cut into pieces (byte ranges of the text, so the cut holds no text).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Cut {
    /// Everything but the tickets, in file order: small, parsed as one document.
    pub(crate) rest: Piece,
    /// Each ticket's first chunk: its `[[tickets]]` header with the keys and sub-tables right
    /// after it, up to the next header that is not part of it.
    tickets: Vec<Range<usize>>,
    /// A ticket's sub-tables written after another table (rare), as (ticket, chunk), in file order.
    later: Vec<(usize, Range<usize>)>,
    /// Where TOML refuses the file's layout: the `tickets` key of the first header that defines
    /// `tickets` both as a table and as the array of tickets (TOML's "duplicate key").
    pub(crate) clash: Option<Range<usize>>,
}

/// Chunks of the file's text that are parsed together, in file order.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Piece(Vec<Range<usize>>);

impl Piece {
    /// The piece's text: borrowed from the file's when it is one chunk.
    pub(crate) fn text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match self.0.as_slice() {
            [] => Cow::Borrowed(""),
            [one] => Cow::Borrowed(&text[one.clone()]),
            chunks => Cow::Owned(chunks.iter().map(|c| &text[c.clone()]).collect()),
        }
    }

    /// The byte ranges of the file's text the piece is made of, in order.
    pub(crate) fn chunks(&self) -> &[Range<usize>] {
        &self.0
    }

    /// The file offset of byte `offset` of the piece's text.
    pub(crate) fn file_offset(&self, mut offset: usize) -> usize {
        for chunk in &self.0 {
            if offset < chunk.len() {
                return chunk.start + offset;
            }
            offset -= chunk.len();
        }
        self.0.last().map_or(offset, |c| c.end + offset)
    }

    /// All of `text` as one piece.
    pub(crate) fn whole(text: &str) -> Piece {
        let all = 0..text.len();
        Piece(vec![all])
    }

    fn push(&mut self, chunk: Range<usize>) {
        match self.0.last_mut() {
            Some(last) if last.end == chunk.start => last.end = chunk.end,
            _ => self.0.push(chunk),
        }
    }
}

impl Cut {
    /// How many tickets the file has.
    pub(crate) fn tickets(&self) -> usize {
        self.tickets.len()
    }

    /// Ticket `i`'s piece: a document of its own with one `[[tickets]]` entry.
    pub(crate) fn ticket(&self, i: usize) -> Piece {
        let mut piece = Piece(vec![self.tickets[i].clone()]);
        let from = self.later.partition_point(|(t, _)| *t < i);
        for (_, chunk) in self.later[from..].iter().take_while(|(t, _)| *t == i) {
            piece.0.push(chunk.clone());
        }
        piece
    }
}

/// What a table header opens.
#[derive(Debug, Clone, PartialEq)]
enum Header {
    /// `[[tickets]]`: a new ticket; the span of its `tickets` key.
    Ticket(Range<usize>),
    /// `[tickets.sub]` or `[[tickets.sinks]]`: part of the last ticket above; the `tickets` key.
    TicketPart(Range<usize>),
    /// `[tickets]`: `tickets` as a table (which the rest's check explains); its `tickets` key.
    TicketsTable(Range<usize>),
    /// Any other table, or a header that does not lex (the rest's parse reports it).
    Other,
}

impl Header {
    /// The header with its key's span moved `by` bytes on.
    fn shifted(self, by: usize) -> Header {
        let shift = |span: Range<usize>| span.start + by..span.end + by;
        match self {
            Header::Ticket(span) => Header::Ticket(shift(span)),
            Header::TicketPart(span) => Header::TicketPart(shift(span)),
            Header::TicketsTable(span) => Header::TicketsTable(shift(span)),
            Header::Other => Header::Other,
        }
    }
}

/// Where the chunk being read goes.
#[derive(Clone, Copy, Default)]
enum Goes {
    #[default]
    Rest,
    /// Ticket `i`'s first chunk.
    Ticket(usize),
    /// A later chunk of ticket `i`.
    Later(usize),
}

/// Cut `text` into its pieces.
pub(crate) fn split(text: &str) -> Cut {
    let mut splitter = Splitter::default();
    splitter.window(text, 0);
    splitter.finish(text.len())
}

/// The cut of a text that is read a window at a time (the config file's reader): each window
/// but the last ends where a line ends outside any string ([`whole_lines`]), so its tokens are
/// those of the whole text, and what is carried from one window to the next (open brackets, the
/// piece being read) is kept here.
#[derive(Default)]
pub(crate) struct Splitter {
    cut: Cut,
    /// A `tickets` table defined before any `[[tickets]]` (an orphan sub-table, or `[tickets]`).
    tickets_table: bool,
    into: Goes,
    /// Where the chunk being read started.
    from: usize,
    lexing: Lexing,
}

impl Splitter {
    /// The next window of the text: `text`, which starts at byte `base` of the whole.
    pub(crate) fn window(&mut self, text: &str, base: usize) {
        let cut = &mut self.cut;
        for (start, header) in headers(text, base, &mut self.lexing) {
            let next = match header {
                Header::Ticket(key) => {
                    if self.tickets_table && cut.clash.is_none() {
                        cut.clash = Some(key);
                    }
                    close(cut, self.into, self.from..start);
                    cut.tickets.push(start..start);
                    self.from = start;
                    self.into = Goes::Ticket(cut.tickets.len() - 1);
                    continue;
                }
                Header::TicketPart(_) if !cut.tickets.is_empty() => match self.into {
                    Goes::Ticket(_) | Goes::Later(_) => continue,
                    Goes::Rest => Goes::Later(cut.tickets.len() - 1),
                },
                Header::TicketPart(_) => {
                    self.tickets_table = true;
                    Goes::Rest
                }
                Header::TicketsTable(key) => {
                    if !cut.tickets.is_empty() && cut.clash.is_none() {
                        cut.clash = Some(key);
                    }
                    self.tickets_table = true;
                    Goes::Rest
                }
                Header::Other => Goes::Rest,
            };
            close(cut, self.into, self.from..start);
            self.from = start;
            self.into = next;
        }
    }

    /// The cut of the whole text, `len` bytes.
    pub(crate) fn finish(mut self, len: usize) -> Cut {
        close(&mut self.cut, self.into, self.from..len);
        self.cut
    }
}

/// How many bytes of `text`, the start of a longer text, are whole lines: up to the end of its
/// last newline outside any string or comment, except one at its very end (a `\r` there may be
/// the first half of a `\r\n`). 0 when there is none.
pub(crate) fn whole_lines(text: &str) -> usize {
    Source::new(text)
        .lex()
        .filter(|t| t.kind() == TokenKind::Newline)
        .map(|t| t.span().end())
        .take_while(|&end| end < text.len())
        .last()
        .unwrap_or(0)
}

/// Add `chunk` to the piece it goes to.
fn close(cut: &mut Cut, into: Goes, chunk: Range<usize>) {
    match into {
        Goes::Rest => cut.rest.push(chunk),
        Goes::Ticket(i) => cut.tickets[i].end = chunk.end,
        Goes::Later(i) => match cut.later.last_mut() {
            Some((t, last)) if *t == i && last.end == chunk.start => last.end = chunk.end,
            _ => cut.later.push((i, chunk)),
        },
    }
}

/// What the lexer carries from one window of the text to the next.
struct Lexing {
    /// Brackets open in values (arrays, inline tables), which may span lines. A bracket that never
    /// closes keeps what follows in its piece, whose parse reports it; a stray closing one is
    /// reported by its piece's parse too.
    depth: usize,
    line_start: bool,
}

impl Default for Lexing {
    fn default() -> Self {
        Lexing { depth: 0, line_start: true }
    }
}

/// Where each table header of `text` (at byte `base` of the whole) starts, and what it opens, in
/// file order (found as they are read, so the cut holds no list of them).
fn headers<'a>(text: &'a str, base: usize, lexing: &'a mut Lexing) -> impl Iterator<Item = (usize, Header)> + 'a {
    let source = Source::new(text);
    let mut tokens = source.lex().filter(|t| t.kind() != TokenKind::Whitespace).peekable();
    std::iter::from_fn(move || {
        while let Some(token) = tokens.next() {
            let mut found = None;
            match token.kind() {
                TokenKind::Eof => return None,
                TokenKind::Newline => {
                    lexing.line_start = true;
                    continue;
                }
                TokenKind::Comment => continue,
                TokenKind::LeftSquareBracket if lexing.line_start && lexing.depth == 0 => {
                    let header = header(&source, &mut tokens).unwrap_or(Header::Other);
                    found = Some((base + token.span().start(), header.shifted(base)));
                }
                TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => lexing.depth += 1,
                TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                    lexing.depth = lexing.depth.saturating_sub(1);
                }
                _ => {}
            }
            lexing.line_start = false;
            if found.is_some() {
                return found;
            }
        }
        None
    })
}

/// The header whose first `[` was just read; `None` when it does not lex as one (its line's
/// tokens are then skipped: the parse of its piece reports it).
fn header(source: &Source<'_>, tokens: &mut std::iter::Peekable<impl Iterator<Item = Token>>) -> Option<Header> {
    let array = tokens.next_if(|t| t.kind() == TokenKind::LeftSquareBracket).is_some();
    let mut first: Option<(String, Range<usize>)> = None;
    let mut dotted = false;
    let mut closing = 0;
    let mut well_formed = true;
    while let Some(token) = tokens.next_if(|t| !matches!(t.kind(), TokenKind::Newline | TokenKind::Eof)) {
        match token.kind() {
            TokenKind::Comment if closing == 1 + usize::from(array) => {}
            _ if closing == 1 + usize::from(array) => well_formed = false,
            TokenKind::RightSquareBracket => closing += 1,
            TokenKind::Atom | TokenKind::BasicString | TokenKind::LiteralString if closing == 0 => {
                if first.is_none() {
                    let mut key = String::new();
                    let mut errors = Vec::new();
                    match source.get(token) {
                        Some(raw) => raw.decode_key(&mut key, &mut errors),
                        None => well_formed = false,
                    }
                    well_formed &= errors.is_empty();
                    first = Some((key, token.span().start()..token.span().end()));
                }
            }
            TokenKind::Dot if closing == 0 && first.is_some() => dotted = true,
            _ => well_formed = false,
        }
    }
    let (key, span) = first.filter(|_| well_formed && closing == 1 + usize::from(array))?;
    Some(match (key == "tickets", array, dotted) {
        (false, _, _) => Header::Other,
        (true, true, false) => Header::Ticket(span),
        (true, _, true) => Header::TicketPart(span),
        (true, false, false) => Header::TicketsTable(span),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str) -> (String, Vec<String>) {
        let cut = split(text);
        let tickets = (0..cut.tickets()).map(|i| cut.ticket(i).text(text).into_owned()).collect();
        (cut.rest.text(text).into_owned(), tickets)
    }

    #[test]
    fn tickets_are_cut_with_their_sub_tables_and_the_rest_is_kept_in_order() {
        let text = "state_dir = \"/s\"\n\
                    [credentials.a]\nvendor = \"alibaba\"\n\
                    [[tickets]]\nname = \"one\"\n[tickets.on_change]\nexec = [\"/bin/true\"]\n\
                    [[tickets.sinks]]\npath = \"/x\"\n\
                    [[ tickets ]] # second\nname = \"two\"\n\
                    [credentials.b]\nvendor = \"tencent\"\n\
                    [[tickets]]\nname = \"three\"\n";
        let (rest, tickets) = pieces(text);
        assert_eq!(
            rest,
            "state_dir = \"/s\"\n[credentials.a]\nvendor = \"alibaba\"\n[credentials.b]\nvendor = \"tencent\"\n"
        );
        assert_eq!(
            tickets,
            [
                "[[tickets]]\nname = \"one\"\n[tickets.on_change]\nexec = [\"/bin/true\"]\n[[tickets.sinks]]\npath = \"/x\"\n",
                "[[ tickets ]] # second\nname = \"two\"\n",
                "[[tickets]]\nname = \"three\"\n",
            ]
        );
        assert_eq!(split(text).clash, None);
    }

    #[test]
    fn brackets_inside_strings_comments_and_multi_line_values_are_not_headers() {
        let text = "[[tickets]]\nname = \"a\"\nallow_uids = [\n  1,\n]\n\
                    console_params = { x = \"[[tickets]]\" }\n\
                    # [[tickets]]\n\
                    description = \"\"\"\n[[tickets]]\n\"\"\"\n\
                    matrix = [\n[1], [2]\n]\n";
        assert_eq!(pieces(text), (String::new(), vec![text.to_string()]));
    }

    #[test]
    fn a_sub_table_after_another_table_belongs_to_the_ticket_above_as_in_toml() {
        let text = "[[tickets]]\nname = \"a\"\n[credentials.x]\nvendor = \"alibaba\"\n\
                    [tickets.on_change]\nexec = []\n[[tickets]]\nname = \"b\"\n";
        let (rest, tickets) = pieces(text);
        assert_eq!(rest, "[credentials.x]\nvendor = \"alibaba\"\n");
        assert_eq!(
            tickets,
            ["[[tickets]]\nname = \"a\"\n[tickets.on_change]\nexec = []\n", "[[tickets]]\nname = \"b\"\n"]
        );
        let cut = split(text);
        let second = text.find("exec").unwrap();
        assert_eq!(cut.ticket(0).file_offset("[[tickets]]\nname = \"a\"\n[tickets.on_change]\n".len()), second);
    }

    #[test]
    fn quoted_headers_are_read_by_their_key() {
        let text = "[[\"tickets\"]]\nname = \"a\"\n['tickets'.sinks]\npath = \"/x\"\n[\"tick\\u0065ts\".on_change]\n\
                    [\"other\"]\nx = 1\n";
        let (rest, tickets) = pieces(text);
        assert_eq!(rest, "[\"other\"]\nx = 1\n");
        assert_eq!(tickets.len(), 1);
    }

    #[test]
    fn tickets_as_a_table_and_as_the_array_is_the_clash_toml_refuses() {
        for (text, header) in [
            ("[[tickets.sinks]]\npath = \"/x\"\n[[tickets]]\nname = \"a\"\n", "[[tickets]]"),
            ("[tickets]\nname = \"a\"\n[[tickets]]\nname = \"b\"\n", "[[tickets]]"),
            ("[[tickets]]\nname = \"a\"\n[tickets]\nname = \"b\"\n", "\n[tickets]"),
        ] {
            let at = text.find(header).unwrap() + header.find('t').unwrap();
            assert_eq!(split(text).clash, Some(at..at + "tickets".len()), "{text}");
        }
        // `tickets` as a table alone is in the rest, whose check explains it.
        let (rest, tickets) = pieces("[tickets]\nname = \"a\"\n[tickets.on_change]\n");
        assert_eq!((rest.as_str(), tickets.len()), ("[tickets]\nname = \"a\"\n[tickets.on_change]\n", 0));
    }

    #[test]
    fn malformed_layouts_are_cut_too_and_stay_in_a_piece() {
        for (text, rest, tickets) in [
            // A bracket that never closes keeps the rest of the file in its piece.
            ("x = [1, 2\n[[tickets]]\n", "x = [1, 2\n[[tickets]]\n", 0),
            ("[[tickets]]\nx = [1\n[[tickets]]\nname = \"b\"\n", "", 1),
            // A stray closing bracket, a header that does not lex.
            ("x = ]\n[[tickets]]\n", "x = ]\n", 1),
            ("[[tickets\nname = \"a\"\n", "[[tickets\nname = \"a\"\n", 0),
            ("[[tickets]] x\n[[tickets]]\n", "[[tickets]] x\n", 1),
            ("[]\n[[tickets]]\n", "[]\n", 1),
        ] {
            let (r, t) = pieces(text);
            assert_eq!((r.as_str(), t.len()), (rest, tickets), "{text}");
            assert_eq!(r.len() + t.iter().map(String::len).sum::<usize>(), text.len(), "{text}");
        }
    }

    #[test]
    fn a_file_without_tickets_is_all_rest() {
        let text = "socket = \"/run/t.sock\"\n[credentials.a]\nvendor = \"alibaba\"\n";
        let cut = split(text);
        assert_eq!((cut.rest.text(text).as_ref(), cut.tickets()), (text, 0));
    }
}
