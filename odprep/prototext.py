"""A tokenizer and parser for protobuf text format that keeps every byte offset.

Label maps and pipeline.config files are read with it, and config patching
edits the original text at the offsets it records, so nothing else moves.
"""

from __future__ import annotations

import array
import bisect
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from odprep.errors import OdprepError

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n\f\v\ufeff]+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"[^"\\\n]*(?:\\.[^"\\\n]*)*"|'[^'\\\n]*(?:\\.[^'\\\n]*)*')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[fF]?)
  | (?P<ident>[-]?[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}<>\[\]:,;])
    """,
    re.VERBOSE,
)
_CURLY_QUOTES = "\u201c\u201d\u2018\u2019"
MAX_DEPTH = 100  # protobuf's own parsers stop at 100 nested messages


def shown(text: str, limit: int = 60) -> str:
    """A token as messages show it: quoted, and cut short when long."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
            "\\": "\\", "'": "'", '"': '"', "?": "?"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # string, number, ident or punct
    text: str
    start: int
    end: int


@dataclass(slots=True)
class Field:
    """``name: value`` or ``name { ... }`` with the offsets of the whole field."""

    name: str
    start: int
    end: int  # after the value (and a trailing ',' or ';' if any)
    value: Scalar | Message | list[Scalar]


@dataclass(slots=True)
class Scalar:
    token: Token
    start: int
    end: int
    text: str  # for strings, the decoded value (adjacent strings joined)

    @property
    def is_string(self) -> bool:
        return self.token.kind == "string"

    @property
    def quote(self) -> str:
        return self.token.text[0] if self.is_string else '"'


@dataclass(slots=True)
class Message:
    """A block: its fields and the offsets of its braces (-1 for the top level)."""

    fields: list[Field] = field(default_factory=list)
    open: int = -1
    close: int = -1

    def all(self, name: str) -> list[Field]:
        return [f for f in self.fields if f.name == name]

    def first(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def messages(self, name: str) -> list[Message]:
        return [f.value for f in self.fields if f.name == name and isinstance(f.value, Message)]

    def scalar(self, name: str) -> str | None:
        found = self.first(name)
        if found is None or not isinstance(found.value, Scalar):
            return None
        return found.value.text


@functools.lru_cache(maxsize=4)
def _line_starts(text: str) -> array.array:
    """The offset at which each line starts, found once per text (a str caches its hash,
    so each later lookup costs a bisection, not a scan from the start)."""
    return array.array("q", [0, *(match.end() for match in re.finditer("\n", text))])


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of an offset."""
    starts = _line_starts(text)
    line = bisect.bisect_right(starts, offset)
    return line, offset - starts[line - 1] + 1


def unescape(quoted: str) -> str:
    """Decode a quoted text-format string, escapes included."""
    body = quoted[1:-1]
    if "\\" not in body:
        return body
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8")
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out += _ESCAPES[nxt].encode()
            i += 2
        elif nxt in "01234567":
            digits = re.match(r"[0-7]{1,3}", body[i + 1 :]).group(0)
            out.append(int(digits, 8) & 0xFF)
            i += 1 + len(digits)
        elif nxt in "xX":
            digits = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2 :])
            if not digits:
                raise ValueError("\\x without hex digits")
            out.append(int(digits.group(0), 16))
            i += 2 + len(digits.group(0))
        elif nxt in "uU":
            width = 4 if nxt == "u" else 8
            digits = body[i + 2 : i + 2 + width]
            out += chr(int(digits, 16)).encode("utf-8")
            i += 2 + width
        else:
            raise ValueError(f"unknown escape \\{nxt}")
    return out.decode("utf-8")


def quote(value: str, quote_char: str = '"') -> str:
    """Quote a string for text format; non-ASCII is kept as UTF-8."""
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    escaped = escaped.replace("\t", "\\t").replace(quote_char, "\\" + quote_char)
    return f"{quote_char}{escaped}{quote_char}"


def tokenize(text: str, source: str = "") -> list[Token]:
    """Split text format into tokens; comments and white space are dropped."""
    return list(iter_tokens(text, source))


def iter_tokens(text: str, source: str = "") -> Iterator[Token]:
    """The tokens of text format, one at a time (a big label map is never held as tokens)."""
    pos = 0
    for match in _TOKEN.finditer(text):  # one scan; a gap between matches is a stray character
        if match.start() != pos:
            break
        kind = match.lastgroup
        if kind != "ws" and kind != "comment":
            yield Token(kind, match.group(), pos, match.end())
        pos = match.end()
    if pos < len(text):
        line, col = line_col(text, pos)
        char = text[pos]
        if char in _CURLY_QUOTES:
            raise OdprepError(source, f"line {line}:{col}: curly quote {char!r}",
                              "Replace it with a straight quote (\" or ')")
        if char in "\"'":
            raise OdprepError(source, f"line {line}:{col}: unterminated string",
                              "Close the quote on the same line")
        raise OdprepError(source, f"line {line}:{col}: unexpected character {char!r}",
                          "This is not protobuf text format")


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.tokens = iter_tokens(text, source)
        self.ahead: Token | None = next(self.tokens, None)
        self.last: Token | None = None

    def error(self, offset: int, problem: str, fix: str = "") -> OdprepError:
        line, col = line_col(self.text, offset)
        return OdprepError(self.source, f"line {line}:{col}: {problem}", fix)

    def peek(self) -> Token | None:
        return self.ahead

    def take(self) -> Token:
        tok = self.ahead
        if tok is None:
            raise self.error(len(self.text), "the text ends too early")
        self.last, self.ahead = tok, next(self.tokens, None)
        return tok

    def parse_message(self, closing: str | None, open_at: int, depth: int = 0) -> Message:
        if depth > MAX_DEPTH:
            raise self.error(open_at, f"blocks nest deeper than {MAX_DEPTH} levels",
                             "This is not a real config or label map")
        msg = Message(open=open_at)
        while True:
            tok = self.peek()
            if tok is None:
                if closing is not None:
                    raise self.error(open_at, "block is never closed", f"Add the missing '{closing}'")
                msg.close = len(self.text)
                return msg
            if tok.kind == "punct" and tok.text == closing:
                self.take()
                msg.close = tok.start
                return msg
            msg.fields.append(self.parse_field(depth))

    def parse_field(self, depth: int = 0) -> Field:
        name_tok = self.take()
        if name_tok.kind != "ident" and not (name_tok.kind == "punct" and name_tok.text == "["):
            raise self.error(name_tok.start, f"expected a field name, found {shown(name_tok.text)}")
        name = name_tok.text
        if name_tok.text == "[":  # extension or Any type URL: [a.b.c]
            parts = []
            while (tok := self.peek()) is not None and tok.text != "]":
                parts.append(self.take().text)
            if tok is None:
                raise self.error(name_tok.start, "'[' is never closed", "Add the missing ']'")
            self.take()
            name = "[" + "".join(parts) + "]"
        tok = self.peek()
        if tok is None:
            raise self.error(name_tok.start, f"field {shown(name)} has no value")
        colon = tok.kind == "punct" and tok.text == ":"
        if colon:
            self.take()
            tok = self.peek()
            if tok is None:
                raise self.error(name_tok.start, f"field {shown(name)} has no value")
        if tok.kind == "punct" and tok.text in "{<":
            self.take()
            value = self.parse_message("}" if tok.text == "{" else ">", tok.start, depth + 1)
            end = value.close + 1
        elif colon and tok.kind == "punct" and tok.text == "[":
            value, end = self.parse_list()
        elif colon:
            value = self.parse_scalar()
            end = value.end
        else:
            raise self.error(tok.start, f"expected ':' or '{{' after {shown(name)}")
        after = self.peek()
        if after is not None and after.kind == "punct" and after.text in ",;":
            self.take()
            end = after.end
        return Field(name, name_tok.start, end, value)

    def parse_list(self) -> tuple[list[Scalar], int]:
        self.take()  # [
        items: list[Scalar] = []
        while True:
            tok = self.peek()
            if tok is None:
                raise self.error(self.last.start if self.last else 0, "list is never closed", "Add ']'")
            if tok.kind == "punct" and tok.text == "]":
                self.take()
                return items, tok.end
            if tok.kind == "punct" and tok.text == ",":
                self.take()
                continue
            items.append(self.parse_scalar())

    def parse_scalar(self) -> Scalar:
        tok = self.take()
        if tok.kind == "string":
            parts = [tok]
            while (nxt := self.peek()) is not None and nxt.kind == "string":
                parts.append(self.take())
            try:
                text = "".join(unescape(p.text) for p in parts)
            except (ValueError, UnicodeDecodeError) as exc:
                raise self.error(tok.start, f"bad string escape ({exc})") from None
            return Scalar(tok, tok.start, parts[-1].end, text)
        if tok.kind in ("number", "ident"):
            return Scalar(tok, tok.start, tok.end, tok.text)
        raise self.error(tok.start, f"expected a value, found {shown(tok.text)}")


def iter_top_level(text: str, source: str = "") -> Iterator[Field]:
    """The top-level fields, each parsed when it is reached and not kept: a label map of a
    million items is read in the memory of its items, not of its syntax tree."""
    parser = _Parser(text, source)
    while parser.peek() is not None:
        yield parser.parse_field()


def parse(text: str, source: str = "") -> Message:
    """Parse text format into a tree of fields with their offsets in ``text``."""
    parser = _Parser(text, source)
    root = parser.parse_message(None, -1)
    return root
