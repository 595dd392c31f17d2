//! A config file cut into its `[[tickets]]` sections, so that tickets are parsed one at a time.
//!
//! The `toml` crate builds a tree of the whole document before serde sees any of it. For a file
//! of 100,000 tickets (15 MB) that tree took about 350 MiB, far more than the daemon holds once
//! running. Cutting the file at its table headers (found with `toml_parser`'s lexer, the one the
//! `toml` crate uses) lets each ticket be parsed, checked and dropped on its own.
//!
//! The cut is only an optimisation: where the layout is unusual (a `[tickets.…]` table away from
//! its `[[tickets]]`, a quoted `"tickets"` header, unbalanced brackets), [`split`] gives up and the
//! caller parses the whole document, which also reports every syntax error with its line.

use toml_parser::Source;
use toml_parser::lexer::TokenKind;

/// A config file's text, cut at its table headers.
#[derive(Debug, PartialEq)]
pub(super) struct Sections<'t> {
    /// Everything but the tickets, in file order: small, parsed as one document.
    pub rest: String,
    /// Each `[[tickets]]` header with its keys and `[tickets.…]` sub-tables, in file order.
    pub tickets: Vec<&'t str>,
}

/// What a table header opens.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Header {
    /// `[[tickets]]`: a new ticket.
    Ticket,
    /// `[tickets.sub]` or `[[tickets.sinks]]`: part of the ticket above.
    TicketPart,
    /// Any other table.
    Other,
}

/// Cut `text` into sections; `None` when its layout needs a whole-document parse.
pub(super) fn split(text: &str) -> Option<Sections<'_>> {
    let headers = headers(text)?;
    let mut sections = Sections { rest: String::new(), tickets: Vec::new() };
    let ends = headers.iter().map(|(start, _)| *start).skip(1).chain([text.len()]);
    let first = headers.first().map_or(text.len(), |(start, _)| *start);
    sections.rest.push_str(&text[..first]);
    let mut ticket_start = None;
    for ((start, header), end) in headers.iter().copied().zip(ends) {
        match header {
            Header::Ticket => {
                if let Some(from) = ticket_start.replace(start) {
                    sections.tickets.push(&text[from..start]);
                }
            }
            Header::TicketPart if ticket_start.is_some() => {}
            // A sub-table with no ticket right above it: only the whole document can say what it is.
            Header::TicketPart => return None,
            Header::Other => {
                if let Some(from) = ticket_start.take() {
                    sections.tickets.push(&text[from..start]);
                }
                sections.rest.push_str(&text[start..end]);
            }
        }
    }
    if let Some(from) = ticket_start {
        sections.tickets.push(&text[from..]);
    }
    Some(sections)
}

/// Where each table header starts, and what it opens.
fn headers(text: &str) -> Option<Vec<(usize, Header)>> {
    let source = Source::new(text);
    let mut tokens = source.lex().filter(|t| t.kind() != TokenKind::Whitespace);
    let mut headers = Vec::new();
    // Brackets open in values (arrays, inline tables), which may span lines.
    let mut depth = 0usize;
    let mut line_start = true;
    while let Some(token) = tokens.next() {
        match token.kind() {
            TokenKind::Eof => break,
            TokenKind::Newline => {
                line_start = true;
                continue;
            }
            TokenKind::Comment => continue,
            TokenKind::LeftSquareBracket if line_start && depth == 0 => {
                let start = token.span().start();
                let mut next = tokens.next()?;
                let array = next.kind() == TokenKind::LeftSquareBracket;
                if array {
                    next = tokens.next()?;
                }
                let first = &text[next.span().start()..next.span().end()];
                let is_tickets = match next.kind() {
                    TokenKind::Atom => first == "tickets",
                    // A quoted key may spell `tickets` in many ways: leave it to the whole parse.
                    TokenKind::BasicString | TokenKind::LiteralString => {
                        if first.contains("tickets") || first.contains('\\') {
                            return None;
                        }
                        false
                    }
                    _ => return None,
                };
                let mut dotted = false;
                let mut closing = 0;
                for token in tokens.by_ref() {
                    match token.kind() {
                        TokenKind::Dot => dotted = true,
                        TokenKind::RightSquareBracket => {
                            closing += 1;
                            if closing == 1 + usize::from(array) {
                                break;
                            }
                        }
                        TokenKind::Atom | TokenKind::BasicString | TokenKind::LiteralString if closing == 0 => {}
                        _ => return None,
                    }
                }
                if closing != 1 + usize::from(array) {
                    return None;
                }
                let header = match (is_tickets, array, dotted) {
                    (false, _, _) => Header::Other,
                    (true, true, false) => Header::Ticket,
                    (true, _, true) => Header::TicketPart,
                    // `[tickets]`: not an array of tables; the whole parse reports it.
                    (true, false, false) => return None,
                };
                headers.push((start, header));
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => depth += 1,
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => depth = depth.checked_sub(1)?,
            _ => {}
        }
        line_start = false;
    }
    (depth == 0).then_some(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_cut_with_their_sub_tables_and_the_rest_is_kept_in_order() {
        let text = "state_dir = \"/s\"\n\
                    [credentials.a]\nvendor = \"alibaba\"\n\
                    [[tickets]]\nname = \"one\"\n[tickets.on_change]\nexec = [\"/bin/true\"]\n\
                    [[tickets.sinks]]\npath = \"/x\"\n\
                    [[ tickets ]] # second\nname = \"two\"\n\
                    [credentials.b]\nvendor = \"tencent\"\n\
                    [[tickets]]\nname = \"three\"\n";
        let sections = split(text).expect("a plain layout is cut");
        assert_eq!(
            sections.rest,
            "state_dir = \"/s\"\n[credentials.a]\nvendor = \"alibaba\"\n[credentials.b]\nvendor = \"tencent\"\n"
        );
        assert_eq!(
            sections.tickets,
            [
                "[[tickets]]\nname = \"one\"\n[tickets.on_change]\nexec = [\"/bin/true\"]\n[[tickets.sinks]]\npath = \"/x\"\n",
                "[[ tickets ]] # second\nname = \"two\"\n",
                "[[tickets]]\nname = \"three\"\n",
            ]
        );
    }

    #[test]
    fn brackets_inside_strings_comments_and_multi_line_values_are_not_headers() {
        let text = "[[tickets]]\nname = \"a\"\nallow_uids = [\n  1,\n]\n\
                    console_params = { x = \"[[tickets]]\" }\n\
                    # [[tickets]]\n\
                    description = \"\"\"\n[[tickets]]\n\"\"\"\n\
                    matrix = [\n[1], [2]\n]\n";
        let sections = split(text).expect("cut");
        assert_eq!(sections.tickets, [text]);
        assert_eq!(sections.rest, "");
    }

    #[test]
    fn unusual_layouts_are_left_to_the_whole_document_parse() {
        for text in [
            // A ticket's sub-table after another table.
            "[[tickets]]\nname = \"a\"\n[credentials.x]\nvendor = \"alibaba\"\n[tickets.on_change]\nexec = []\n",
            // A quoted header key.
            "[[\"tickets\"]]\nname = \"a\"\n",
            // `tickets` as a plain table.
            "[tickets]\nname = \"a\"\n",
            // Unbalanced brackets.
            "x = [1, 2\n[[tickets]]\n",
            "x = ]\n",
            "[[tickets\n",
        ] {
            assert_eq!(split(text), None, "{text}");
        }
    }

    #[test]
    fn a_file_without_tickets_is_all_rest() {
        let text = "socket = \"/run/t.sock\"\n[credentials.a]\nvendor = \"alibaba\"\n";
        assert_eq!(split(text), Some(Sections { rest: text.to_string(), tickets: Vec::new() }));
    }
}
