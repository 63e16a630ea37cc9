"""The parser of Go's text/template (Go 1.19): literals, pipelines, control
structures and named templates, building the tree of ``gonodes``.

Parse errors read ``template: root:<line>: <message>`` exactly as Go words them,
with the line of the last item read, as Go's three-item lookahead leaves it.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from imagesmith.golang import quote
from imagesmith.template.golex import Item, Lexer, T
from imagesmith.template.gonodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
    WithNode,
    _ElseNode,
    _EndNode,
    is_empty_tree,
)


class TemplateError(Exception):
    """A Go template error; ``str()`` is Go's full message."""


class ParseError(TemplateError):
    pass


# --- literals ------------------------------------------------------------------------

_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_HEX = "0123456789abcdefABCDEF"


class _Syntax(Exception):
    """strconv's ErrSyntax: Go reports it as ``invalid syntax``."""


def _unquote_char(s: str, i: int, quote_char: str) -> tuple[str, int]:
    """strconv.UnquoteChar: one (possibly escaped) character of ``s`` at ``i``.

    Returns the decoded text and the index after it. ``\\x`` and octal escapes give raw
    bytes, kept as surrogate-escaped characters as Python does for undecodable bytes.
    """
    c = s[i]
    if c == quote_char and quote_char in "'\"":
        raise _Syntax
    if c != "\\":
        return c, i + 1
    if i + 1 >= len(s):
        raise _Syntax
    c = s[i + 1]
    i += 2
    if c in _SIMPLE:
        return _SIMPLE[c], i
    if c in "xuU":
        n = {"x": 2, "u": 4, "U": 8}[c]
        digits = s[i : i + n]
        if len(digits) < n or any(d not in _HEX for d in digits):
            raise _Syntax
        v = int(digits, 16)
        if c == "x":
            return (chr(v) if v < 0x80 else chr(0xDC00 + v)), i + n
        if v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
            raise _Syntax
        return chr(v), i + n
    if "0" <= c <= "7":
        digits = s[i - 1 : i + 2]
        if len(digits) < 3 or any(not "0" <= d <= "7" for d in digits):
            raise _Syntax
        v = int(digits, 8)
        if v > 255:
            raise _Syntax
        return (chr(v) if v < 0x80 else chr(0xDC00 + v)), i + 2
    if c in "'\"" and c == quote_char:
        return c, i
    raise _Syntax


def unquote(s: str) -> str:
    """strconv.Unquote for the two string forms a template may use."""
    if len(s) < 2 or s[0] != s[-1]:
        raise _Syntax
    body = s[1:-1]
    if s[0] == "`":
        if "`" in body:
            raise _Syntax
        return body.replace("\r", "")  # Go drops carriage returns from raw strings
    if s[0] != '"' or "\n" in body:
        raise _Syntax
    if "\\" not in body and '"' not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        piece, i = _unquote_char(body, i, '"')
        out.append(piece)
    return _join_bytes("".join(out))


def _join_bytes(s: str) -> str:
    """Turn runs of escaped bytes that form valid UTF-8 back into characters."""
    if not any(0xDC80 <= ord(c) <= 0xDCFF for c in s):
        return s
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")


_OCTAL_LEGACY = re.compile(r"^[+-]?0[0-7_]+$")


def _parse_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64)'s value if it parses, ignoring the range."""
    try:
        if _OCTAL_LEGACY.match(text) and text.strip("+-0_"):
            sign = -1 if text.startswith("-") else 1
            return sign * int(text.lstrip("+-")[1:].lstrip("_"), 8)
        return int(text, 0)
    except ValueError:
        return None


def _parse_float(text: str) -> float | None:
    t = text
    try:
        if "x" in t.lower():
            if "_" in t:
                t = t.replace("_", "")
            return float.fromhex(t)
        return float(t)
    except (ValueError, OverflowError):
        return None


def new_number(pos: int, text: str, typ: int) -> NumberNode:
    n = NumberNode(pos, text)
    if typ == T.CHAR_CONSTANT:
        try:
            ch, end = _unquote_char(text, 1, "'")
        except (_Syntax, IndexError):
            raise _Syntax from None
        if text[end:] != "'":
            raise ValueError(f"malformed character constant: {text}")
        r = ord(ch) if not 0xDC80 <= ord(ch) <= 0xDCFF else ord(ch) - 0xDC00
        n.is_int = n.is_uint = n.is_float = True
        n.int_value = n.uint_value = r
        n.float_value = float(r)
        return n
    if typ == T.COMPLEX:
        try:
            c = complex(text.replace("i", "j").replace("_", ""))
        except ValueError:
            raise _Syntax from None
        n.is_complex = True
        n.complex_value = c
        _simplify_complex(n)
        return n
    if text.endswith("i"):
        f = _parse_float(text[:-1])
        if f is not None:
            n.is_complex = True
            n.complex_value = complex(0, f)
            _simplify_complex(n)
            return n
    v = _parse_int(text)
    if v is not None and 0 <= v < 1 << 64 and not text.startswith(("-", "+")):
        n.is_uint, n.uint_value = True, v
    if v is not None and -(1 << 63) <= v < 1 << 63:
        n.is_int, n.int_value = True, v
        if v == 0:
            n.is_uint, n.uint_value = True, 0
    if n.is_int:
        n.is_float, n.float_value = True, float(n.int_value)
    elif n.is_uint:
        n.is_float, n.float_value = True, float(n.uint_value)
    else:
        f = _parse_float(text)
        if f is not None:
            if not any(c in text for c in ".eEpP"):
                raise ValueError(f"integer overflow: {quote(text)}")
            n.is_float, n.float_value = True, f
            if f == int(f) and -(1 << 63) <= f < 1 << 63:
                n.is_int, n.int_value = True, int(f)
            if f == int(f) and 0 <= f < 1 << 64:
                n.is_uint, n.uint_value = True, int(f)
    if not (n.is_int or n.is_uint or n.is_float):
        raise ValueError(f"illegal number syntax: {quote(text)}")
    return n


def _simplify_complex(n: NumberNode) -> None:
    if n.complex_value.imag == 0:
        n.is_float, n.float_value = True, n.complex_value.real
        f = n.float_value
        if f == int(f) and -(1 << 63) <= f < 1 << 63:
            n.is_int, n.int_value = True, int(f)
        if f == int(f) and 0 <= f < 1 << 64:
            n.is_uint, n.uint_value = True, int(f)


# --- parser --------------------------------------------------------------------------


class Tree:
    """One named template: ``root`` is its body."""

    __slots__ = ("name", "root")

    def __init__(self, name: str, root: ListNode) -> None:
        self.name, self.root = name, root


class _Stream:
    """The shared item source of one parse (Go's lexer, shared by define blocks)."""

    def __init__(self, items: list[Item]) -> None:
        self.items = items
        self.i = 0

    def next_item(self) -> Item:
        if self.i < len(self.items):
            item = self.items[self.i]
            self.i += 1
            return item
        return self.items[-1]


class Parser:
    """Go's parse.Tree while parsing: three-item lookahead, variable scopes, and
    errors that carry the line of the last item read."""

    def __init__(
        self,
        name: str,
        stream: _Stream,
        funcs: Collection[str],
        tree_set: dict[str, Tree],
        parse_name: str,
    ) -> None:
        self.name = name
        self.stream = stream
        self.funcs = funcs
        self.tree_set = tree_set
        self.parse_name = parse_name
        self.token: list[Item] = [Item(T.EOF, 0, "", 0)] * 3
        self.peek_count = 0
        self.vars = ["$"]
        self.action_line = 0
        self.range_depth = 0
        self.root = ListNode(0)

    # -- token buffer ------------------------------------------------------------------

    def next(self) -> Item:
        if self.peek_count > 0:
            self.peek_count -= 1
        else:
            self.token[0] = self.stream.next_item()
        return self.token[self.peek_count]

    def backup(self) -> None:
        self.peek_count += 1

    def backup2(self, t1: Item) -> None:
        self.token[1] = t1
        self.peek_count = 2

    def backup3(self, t2: Item, t1: Item) -> None:
        self.token[1] = t1
        self.token[2] = t2
        self.peek_count = 3

    def peek(self) -> Item:
        if self.peek_count > 0:
            return self.token[self.peek_count - 1]
        self.peek_count = 1
        self.token[0] = self.stream.next_item()
        return self.token[0]

    def next_non_space(self) -> Item:
        while True:
            token = self.next()
            if token.typ != T.SPACE:
                return token

    def peek_non_space(self) -> Item:
        token = self.next_non_space()
        self.backup()
        return token

    # -- errors ------------------------------------------------------------------------

    def errorf(self, msg: str) -> ParseError:
        return ParseError(f"template: {self.parse_name}:{self.token[0].line}: {msg}")

    def unexpected(self, token: Item, context: str) -> ParseError:
        if token.typ == T.ERROR:
            extra = ""
            if self.action_line != 0 and self.action_line != token.line:
                extra = f" in action started at {self.parse_name}:{self.action_line}"
                if token.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            return self.errorf(f"{token}{extra}")
        return self.errorf(f"unexpected {token} in {context}")

    def expect(self, expected: int, context: str) -> Item:
        token = self.next_non_space()
        if token.typ != expected:
            raise self.unexpected(token, context)
        return token

    # -- structure ---------------------------------------------------------------------

    def parse(self) -> None:
        self.root = ListNode(self.peek().pos)
        while self.peek().typ != T.EOF:
            if self.peek().typ == T.LEFT_DELIM:
                delim = self.next()
                if self.next_non_space().typ == T.DEFINE:
                    sub = Parser(
                        "definition", self.stream, self.funcs, self.tree_set, self.parse_name
                    )
                    sub.parse_definition()
                    continue
                self.backup2(delim)
            n = self.text_or_action()
            if isinstance(n, _EndNode | _ElseNode):
                raise self.errorf(f"unexpected {n}")
            self.root.nodes.append(n)
        self.add()

    def add(self) -> None:
        tree = self.tree_set.get(self.name)
        if tree is None or is_empty_tree(tree.root):
            self.tree_set[self.name] = Tree(self.name, self.root)
            return
        if not is_empty_tree(self.root):
            raise self.errorf(f"template: multiple definition of template {quote(self.name)}")

    def parse_definition(self) -> None:
        context = "define clause"
        token = self.next_non_space()
        if token.typ not in (T.STRING, T.RAW_STRING):
            raise self.unexpected(token, context)
        self.name = self._unquote(token.val)
        self.expect(T.RIGHT_DELIM, context)
        self.root, end = self.item_list()
        if not isinstance(end, _EndNode):
            raise self.errorf(f"unexpected {end} in {context}")
        self.add()

    def item_list(self) -> tuple[ListNode, Node]:
        lst = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ != T.EOF:
            n = self.text_or_action()
            if isinstance(n, _EndNode | _ElseNode):
                return lst, n
            lst.nodes.append(n)
        raise self.errorf("unexpected EOF")

    def text_or_action(self) -> Node:
        token = self.next_non_space()
        if token.typ == T.TEXT:
            return TextNode(token.pos, token.val)
        if token.typ == T.LEFT_DELIM:
            self.action_line = token.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        raise self.unexpected(token, "input")

    def action(self) -> Node:
        token = self.next_non_space()
        typ = token.typ
        if typ == T.BLOCK:
            return self.block_control()
        if typ == T.BREAK:
            return self.break_control(token, "break")
        if typ == T.CONTINUE:
            return self.break_control(token, "continue")
        if typ == T.ELSE:
            return self.else_control()
        if typ == T.END:
            return _EndNode(self.expect(T.RIGHT_DELIM, "end").pos)
        if typ == T.IF:
            return self.parse_control(IfNode, "if", allow_else_if=True)
        if typ == T.RANGE:
            return self.parse_control(RangeNode, "range")
        if typ == T.TEMPLATE:
            return self.template_control()
        if typ == T.WITH:
            return self.parse_control(WithNode, "with")
        self.backup()
        token = self.peek()
        return ActionNode(token.pos, token.line, self.pipeline("command", T.RIGHT_DELIM))

    def break_control(self, start: Item, word: str) -> Node:
        token = self.next_non_space()
        if token.typ != T.RIGHT_DELIM:
            raise self.unexpected(token, "{{" + word + "}}")
        if self.range_depth == 0:
            raise self.errorf("{{" + word + "}} outside {{range}}")
        if word == "break":
            return BreakNode(start.pos)
        return ContinueNode(start.pos)

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.typ == T.IF:
            # "{{else if ..." is read as "{{else}}{{if ...".
            return _ElseNode(peek.pos)
        token = self.expect(T.RIGHT_DELIM, "else")
        return _ElseNode(token.pos)

    def parse_control(
        self, cls: type[BranchNode], context: str, *, allow_else_if: bool = False
    ) -> BranchNode:
        mark = len(self.vars)
        try:
            pipe = self.pipeline(context, T.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            lst, nxt = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_list = None
            if isinstance(nxt, _ElseNode):
                if allow_else_if and self.peek().typ == T.IF:
                    self.next()
                    else_list = ListNode(nxt.pos)
                    else_list.nodes.append(self.parse_control(IfNode, "if", allow_else_if=True))
                else:
                    else_list, nxt = self.item_list()
                    if not isinstance(nxt, _EndNode):
                        raise self.errorf(f"expected end; found {nxt}")
            return cls(pipe.pos, pipe.line, pipe, lst, else_list)
        finally:
            del self.vars[mark:]

    def template_control(self) -> Node:
        context = "template clause"
        token = self.next_non_space()
        name = self.parse_template_name(token, context)
        pipe = None
        if self.next_non_space().typ != T.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, T.RIGHT_DELIM)
        return TemplateNode(token.pos, token.line, name, pipe)

    def block_control(self) -> Node:
        context = "block clause"
        token = self.next_non_space()
        name = self.parse_template_name(token, context)
        pipe = self.pipeline(context, T.RIGHT_DELIM)
        block = Parser(name, self.stream, self.funcs, self.tree_set, self.parse_name)
        block.root, end = block.item_list()
        if not isinstance(end, _EndNode):
            raise self.errorf(f"unexpected {end} in {context}")
        block.add()
        return TemplateNode(token.pos, token.line, name, pipe)

    def parse_template_name(self, token: Item, context: str) -> str:
        if token.typ in (T.STRING, T.RAW_STRING):
            return self._unquote(token.val)
        raise self.unexpected(token, context)

    def _unquote(self, s: str) -> str:
        try:
            return unquote(s)
        except _Syntax:
            raise self.errorf("invalid syntax") from None

    # -- pipelines ---------------------------------------------------------------------

    def pipeline(self, context: str, end: int) -> PipeNode:
        token = self.peek_non_space()
        pipe = PipeNode(token.pos, token.line)
        while True:  # declarations: "$x :=", "$x =", "$i, $v :="
            v = self.peek_non_space()
            if v.typ != T.VARIABLE:
                break
            self.next()
            after = self.peek()
            nxt = self.peek_non_space()
            if nxt.typ in (T.ASSIGN, T.DECLARE):
                pipe.is_assign = nxt.typ == T.ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
            elif nxt.typ == T.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (T.VARIABLE, T.RIGHT_DELIM, T.RIGHT_PAREN):
                        continue  # the second variable of a range
                    raise self.errorf("range can only initialize variables")
                raise self.errorf(f"too many declarations in {context}")
            elif after.typ == T.SPACE:
                self.backup3(v, after)
            else:
                self.backup2(v)
            break
        while True:
            token = self.next_non_space()
            if token.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if token.typ in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(token, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            raise self.errorf(f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:]):
            if isinstance(c.args[0], BoolNode | DotNode | NilNode | NumberNode | StringNode):
                raise self.errorf(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.typ == T.SPACE:
                continue
            if token.typ in (T.RIGHT_DELIM, T.RIGHT_PAREN):
                self.backup()
            elif token.typ != T.PIPE:
                raise self.unexpected(token, "operand")
            break
        if not cmd.args:
            raise self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == T.FIELD:
            chain = ChainNode(self.peek().pos, node)
            while self.peek().typ == T.FIELD:
                chain.fields.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(chain.pos, [*node.ident, *chain.fields])
            if isinstance(node, VariableNode):
                return VariableNode(chain.pos, [*node.ident, *chain.fields])
            if isinstance(node, BoolNode | StringNode | NumberNode | NilNode | DotNode):
                raise self.errorf(f"unexpected . after term {quote(str(node))}")
            return chain
        return node

    def term(self) -> Node | None:
        token = self.next_non_space()
        typ = token.typ
        if typ == T.IDENTIFIER:
            if token.val not in self.funcs:
                raise self.errorf(f"function {quote(token.val)} not defined")
            return IdentifierNode(token.pos, token.val)
        if typ == T.DOT:
            return DotNode(token.pos)
        if typ == T.NIL:
            return NilNode(token.pos)
        if typ == T.VARIABLE:
            return self.use_var(token)
        if typ == T.FIELD:
            return FieldNode(token.pos, token.val[1:].split("."))
        if typ == T.BOOL:
            return BoolNode(token.pos, token.val == "true")
        if typ in (T.CHAR_CONSTANT, T.COMPLEX, T.NUMBER):
            try:
                return new_number(token.pos, token.val, typ)
            except _Syntax:
                raise self.errorf("invalid syntax") from None
            except ValueError as e:
                raise self.errorf(str(e)) from None
        if typ == T.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", T.RIGHT_PAREN)
        if typ in (T.STRING, T.RAW_STRING):
            return StringNode(token.pos, token.val, self._unquote(token.val))
        self.backup()
        return None

    def use_var(self, token: Item) -> VariableNode:
        v = VariableNode(token.pos, token.val.split("."))
        if v.ident[0] not in self.vars:
            raise self.errorf(f"undefined variable {quote(v.ident[0])}")
        return v


_OPERAND_START = frozenset(
    {
        T.BOOL,
        T.CHAR_CONSTANT,
        T.COMPLEX,
        T.DOT,
        T.FIELD,
        T.IDENTIFIER,
        T.NUMBER,
        T.NIL,
        T.RAW_STRING,
        T.STRING,
        T.VARIABLE,
        T.LEFT_PAREN,
    }
)


def parse(text: str, funcs: Collection[str], name: str = "root") -> dict[str, Tree]:
    """Parse ``text`` as template ``name``; returns every tree it defines by name.

    ``funcs`` is the set of function names in scope (builtins included): calling any
    other name is a parse error, as in Go.
    """
    items = Lexer(text, break_ok="break" not in funcs, continue_ok="continue" not in funcs).items()
    trees: dict[str, Tree] = {}
    parser = Parser(name, _Stream(items), funcs, trees, name)
    parser.parse()
    return trees
