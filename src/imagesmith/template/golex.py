"""The lexer of Go's text/template (Go 1.19, the version Packer 1.6.6 was built with).

It yields the same items at the same positions as Go's, including the trim markers
``{{- `` and `` -}}``, comments, and the error texts the parser reports
(``unclosed action``, ``bad character U+0060 '`'``, ...).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import NamedTuple

from imagesmith.golang import quote, sprintf

LEFT_DELIM = "{{"
RIGHT_DELIM = "}}"
LEFT_COMMENT = "/*"
RIGHT_COMMENT = "*/"
SPACE_CHARS = " \t\r\n"


class T:
    """Item types, in Go's order (everything after KEYWORD is a keyword)."""

    ERROR = 0
    BOOL = 1
    CHAR = 2
    CHAR_CONSTANT = 3
    COMMENT = 4
    COMPLEX = 5
    ASSIGN = 6
    DECLARE = 7
    EOF = 8
    FIELD = 9
    IDENTIFIER = 10
    LEFT_DELIM = 11
    LEFT_PAREN = 12
    NUMBER = 13
    PIPE = 14
    RAW_STRING = 15
    RIGHT_DELIM = 16
    RIGHT_PAREN = 17
    SPACE = 18
    STRING = 19
    TEXT = 20
    VARIABLE = 21
    KEYWORD = 22
    BLOCK = 23
    BREAK = 24
    CONTINUE = 25
    DOT = 26
    DEFINE = 27
    ELSE = 28
    END = 29
    IF = 30
    NIL = 31
    RANGE = 32
    TEMPLATE = 33
    WITH = 34


KEYWORDS = {
    ".": T.DOT,
    "block": T.BLOCK,
    "break": T.BREAK,
    "continue": T.CONTINUE,
    "define": T.DEFINE,
    "else": T.ELSE,
    "end": T.END,
    "if": T.IF,
    "range": T.RANGE,
    "nil": T.NIL,
    "template": T.TEMPLATE,
    "with": T.WITH,
}


class Item(NamedTuple):
    typ: int
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        # Go's item.String(), which parse errors quote.
        if self.typ == T.EOF:
            return "EOF"
        if self.typ == T.ERROR:
            return self.val
        if self.typ > T.KEYWORD:
            return f"<{self.val}>"
        if len(self.val.encode("utf-8", "surrogateescape")) > 10:
            return quote(self.val[:10]) + "..."
        return quote(self.val)


def is_space(c: str) -> bool:
    return c != "" and c in SPACE_CHARS


def is_alnum(c: str) -> bool:
    return c != "" and (c == "_" or c.isalpha() or c.isdecimal())


def _has_left_trim(s: str, i: int) -> bool:
    return s[i : i + 1] == "-" and is_space(s[i + 1 : i + 2])


def _has_right_trim(s: str, i: int) -> bool:
    return is_space(s[i : i + 1]) and s[i + 1 : i + 2] == "-"


class _LexError(Exception):
    pass


class Lexer:
    """Turns template text into items; ``items()`` ends with EOF or one ERROR item."""

    def __init__(self, text: str, *, break_ok: bool = True, continue_ok: bool = True) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.paren_depth = 0
        self.break_ok = break_ok
        self.continue_ok = continue_ok
        self.out: list[Item] = []
        self._newlines = [i for i, c in enumerate(text) if c == "\n"]

    def line_of(self, pos: int) -> int:
        return 1 + bisect_right(self._newlines, pos - 1)

    # -- helpers -----------------------------------------------------------------------

    def _emit(self, typ: int) -> None:
        self.out.append(
            Item(typ, self.start, self.text[self.start : self.pos], self.line_of(self.start))
        )
        self.start = self.pos

    def _error(self, msg: str) -> None:
        self.out.append(Item(T.ERROR, self.start, msg, self.line_of(self.start)))
        raise _LexError

    def _next(self) -> str:
        if self.pos >= len(self.text):
            self.pos += 1  # so that a backup after EOF is balanced
            return ""
        c = self.text[self.pos]
        self.pos += 1
        return c

    def _peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def _accept(self, valid: str) -> bool:
        c = self._peek()
        if c != "" and c in valid:
            self.pos += 1
            return True
        return False

    def _accept_run(self, valid: str) -> None:
        while self._accept(valid):
            pass

    def _at_right_delim(self) -> tuple[bool, bool]:
        text, pos = self.text, self.pos
        if _has_right_trim(text, pos) and text.startswith(RIGHT_DELIM, pos + 2):
            return True, True
        if text.startswith(RIGHT_DELIM, pos):
            return True, False
        return False, False

    def _at_terminator(self) -> bool:
        c = self._peek()
        return c == "" or is_space(c) or c in ".,|:)(" or c == RIGHT_DELIM[0]

    # -- states ------------------------------------------------------------------------

    def items(self) -> list[Item]:
        try:
            inside = False
            while True:
                if inside:
                    inside = self._lex_inside_action()
                elif not self._lex_text():
                    break
                else:
                    inside = self._lex_left_delim()
        except _LexError:
            pass
        return self.out

    def _lex_text(self) -> bool:
        """Emit text up to the next ``{{``; False at the end of the input."""
        text = self.text
        x = text.find(LEFT_DELIM, self.pos)
        if x < 0:
            self.pos = len(text)
            if self.pos > self.start:
                self._emit(T.TEXT)
            self.out.append(Item(T.EOF, self.pos, "", self.line_of(self.pos)))
            return False
        self.pos = x
        if x > self.start:
            end = x
            if _has_left_trim(text, x + len(LEFT_DELIM)):
                while end > self.start and is_space(text[end - 1]):
                    end -= 1
            if end > self.start:
                self.out.append(
                    Item(T.TEXT, self.start, text[self.start : end], self.line_of(self.start))
                )
            self.start = x
        return True

    def _lex_left_delim(self) -> bool:
        """After ``{{``: a comment (consumed here) or the start of an action."""
        self.pos += len(LEFT_DELIM)
        trim = _has_left_trim(self.text, self.pos)
        after = 2 if trim else 0
        if self.text.startswith(LEFT_COMMENT, self.pos + after):
            self.pos += after
            self.start = self.pos
            self._lex_comment()
            return False
        self.out.append(Item(T.LEFT_DELIM, self.start, LEFT_DELIM, self.line_of(self.start)))
        self.pos += after
        self.start = self.pos
        self.paren_depth = 0
        return True

    def _lex_comment(self) -> None:
        self.pos += len(LEFT_COMMENT)
        x = self.text.find(RIGHT_COMMENT, self.pos)
        if x < 0:
            self._error("unclosed comment")
        self.pos = x + len(RIGHT_COMMENT)
        delim, trim = self._at_right_delim()
        if not delim:
            self._error("comment ends before closing delimiter")
        if trim:
            self.pos += 2
        self.pos += len(RIGHT_DELIM)
        if trim:
            self._skip_leading_space()
        self.start = self.pos

    def _skip_leading_space(self) -> None:
        while self.pos < len(self.text) and is_space(self.text[self.pos]):
            self.pos += 1

    def _lex_right_delim(self) -> None:
        _, trim = self._at_right_delim()
        if trim:
            self.pos += 2
            self.start = self.pos
        self.pos += len(RIGHT_DELIM)
        self._emit(T.RIGHT_DELIM)
        if trim:
            self._skip_leading_space()
            self.start = self.pos

    def _lex_inside_action(self) -> bool:
        """Lex one item inside an action; False once the action is closed."""
        delim, _ = self._at_right_delim()
        if delim:
            if self.paren_depth == 0:
                self._lex_right_delim()
                return False
            self._error("unclosed left paren")
        c = self._next()
        if c == "":
            self._error("unclosed action")
        elif is_space(c):
            self.pos -= 1
            return self._lex_space()
        elif c == "=":
            self._emit(T.ASSIGN)
        elif c == ":":
            if self._next() != "=":
                self._error("expected :=")
            self._emit(T.DECLARE)
        elif c == "|":
            self._emit(T.PIPE)
        elif c == '"':
            self._lex_quote()
        elif c == "`":
            self._lex_raw_quote()
        elif c == "$":
            self._lex_variable()
        elif c == "'":
            self._lex_char()
        elif c == "." and self.pos < len(self.text) and not "0" <= self.text[self.pos] <= "9":
            self._lex_field_or_variable(T.FIELD)
        elif c in "+-." or "0" <= c <= "9":
            self.pos -= 1
            self._lex_number()
        elif is_alnum(c):
            self.pos -= 1
            self._lex_identifier()
        elif c == "(":
            self._emit(T.LEFT_PAREN)
            self.paren_depth += 1
        elif c == ")":
            self._emit(T.RIGHT_PAREN)
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self._error(sprintf("unexpected right paren %#U", ord(c)))
        elif c.isascii() and c.isprintable():
            self._emit(T.CHAR)
        else:
            self._error(sprintf("unrecognized character in action: %#U", ord(c)))
        return True

    def _lex_space(self) -> bool:
        n = 0
        while is_space(self._peek()):
            self.pos += 1
            n += 1
        # A space may belong to a trim-marked closing delimiter " -}}".
        if _has_right_trim(self.text, self.pos - 1) and self.text.startswith(
            RIGHT_DELIM, self.pos + 1
        ):
            self.pos -= 1
            if n == 1:
                self._lex_right_delim()
                return False
        self._emit(T.SPACE)
        return True

    def _lex_identifier(self) -> None:
        while is_alnum(self._peek()):
            self.pos += 1
        word = self.text[self.start : self.pos]
        if not self._at_terminator():
            self._error(sprintf("bad character %#U", ord(self._peek())))
        kw = KEYWORDS.get(word)
        if kw is not None and kw > T.KEYWORD:
            if (kw == T.BREAK and not self.break_ok) or (kw == T.CONTINUE and not self.continue_ok):
                self._emit(T.IDENTIFIER)
            else:
                self._emit(kw)
        elif word[0] == ".":
            self._emit(T.FIELD)
        elif word in ("true", "false"):
            self._emit(T.BOOL)
        else:
            self._emit(T.IDENTIFIER)

    def _lex_variable(self) -> None:
        if self._at_terminator():
            self._emit(T.VARIABLE)
            return
        self._lex_field_or_variable(T.VARIABLE)

    def _lex_field_or_variable(self, typ: int) -> None:
        if self._at_terminator():
            self._emit(T.VARIABLE if typ == T.VARIABLE else T.DOT)
            return
        while is_alnum(self._peek()):
            self.pos += 1
        if not self._at_terminator():
            c = self._peek()
            self._error(sprintf("bad character %#U", ord(c) if c else -1))
        self._emit(typ)

    def _lex_char(self) -> None:
        while True:
            c = self._next()
            if c == "\\":
                c = self._next()
                if c not in ("", "\n"):
                    continue
            if c in ("", "\n"):
                self._error("unterminated character constant")
            if c == "'":
                break
        self._emit(T.CHAR_CONSTANT)

    def _lex_quote(self) -> None:
        while True:
            c = self._next()
            if c == "\\":
                c = self._next()
                if c not in ("", "\n"):
                    continue
            if c in ("", "\n"):
                self._error("unterminated quoted string")
            if c == '"':
                break
        self._emit(T.STRING)

    def _lex_raw_quote(self) -> None:
        end = self.text.find("`", self.pos)
        if end < 0:
            self.pos = len(self.text)
            self._error("unterminated raw quoted string")
        self.pos = end + 1
        self._emit(T.RAW_STRING)

    def _lex_number(self) -> None:
        if not self._scan_number():
            self._error("bad number syntax: " + quote(self.text[self.start : self.pos]))
        if self._peek() in ("+", "-") and self._peek() != "":
            # A complex number such as 1+2i: no spaces, must end in 'i'.
            if not self._scan_number() or self.text[self.pos - 1] != "i":
                self._error("bad number syntax: " + quote(self.text[self.start : self.pos]))
            self._emit(T.COMPLEX)
        else:
            self._emit(T.NUMBER)

    def _scan_number(self) -> bool:
        self._accept("+-")
        digits = "0123456789_"
        if self._accept("0"):
            if self._accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self._accept("oO"):
                digits = "01234567_"
            elif self._accept("bB"):
                digits = "01_"
        self._accept_run(digits)
        if self._accept("."):
            self._accept_run(digits)
        if len(digits) == 11 and self._accept("eE"):
            self._accept("+-")
            self._accept_run("0123456789_")
        if len(digits) == 23 and self._accept("pP"):
            self._accept("+-")
            self._accept_run("0123456789_")
        self._accept("i")
        if is_alnum(self._peek()):
            self.pos += 1
            return False
        return True


def lex(text: str, *, break_ok: bool = True, continue_ok: bool = True) -> list[Item]:
    """All items of ``text``: Go's lexer run to its end (EOF) or to its first error."""
    return Lexer(text, break_ok=break_ok, continue_ok=continue_ok).items()
