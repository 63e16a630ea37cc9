"""Execution of a parsed Go text/template (Go 1.19 semantics and error texts).

Values are plain Python objects standing for Go's: ``str`` string, ``int`` int,
``Uint8`` uint8, ``float`` float64, ``bool``, ``None`` a nil interface, lists and
tuples ``[]interface {}``, mappings ``map[string]interface {}``, other objects
structs read by attribute. ``MISSING`` is Go's invalid reflect.Value: what a missing
map key or field yields, printed as ``<no value>``.

The executor tracks the node it is at exactly where Go's does (``s.at(node)``),
because errors quote that node and its line:column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from imagesmith.golang import (
    Uint8,
    format_value,
    go_type,
    is_print,
    quote,
    sprint,
    sprintf,
    sprintln,
)
from imagesmith.template.goparse import (
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
    TemplateError,
    TemplateNode,
    TextNode,
    Tree,
    VariableNode,
    WithNode,
)


class ExecError(TemplateError):
    pass


class FuncError(Exception):
    """A template function returned an error; ``str()`` is its Go error text."""


class GoFunc:
    """A template function with its Go signature.

    ``params`` and ``variadic`` use Go type names: ``string``, ``int``, ``bool``,
    ``float64``, ``any`` (interface{}) and ``value`` (reflect.Value, which the
    builtins take and which accepts even a missing value).
    """

    __slots__ = ("call", "params", "variadic")

    def __init__(
        self,
        call: Callable[..., Any],
        params: tuple[str, ...] = (),
        variadic: str | None = None,
    ) -> None:
        self.call = call
        self.params = params
        self.variadic = variadic


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_NO_FINAL: Any = object()  # Go's missingVal: no piped-in value
_MAX_DEPTH = 100_000

_PARAM_TYPE_NAMES = {
    "string": "string",
    "int": "int",
    "bool": "bool",
    "float64": "float64",
    "any": "interface {}",
    "value": "reflect.Value",
}


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


# --- truth and comparison --------------------------------------------------------------


def is_true(v: Any) -> tuple[bool, bool]:
    """Go's isTrue: (truth, ok)."""
    if v is MISSING or v is None:
        return False, True
    if isinstance(v, bool):
        return v, True
    if isinstance(v, int | float | complex):
        return v != 0, True
    if isinstance(v, str | list | tuple | Mapping):
        return len(v) > 0, True
    return True, True


def _basic_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Uint8):
        return "uint"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, complex):
        return "complex"
    if isinstance(v, str):
        return "string"
    return "invalid"


def _deref(v: Any) -> Any:
    """indirectInterface: a nil interface is no value at all."""
    return MISSING if v is None else v


_BAD_COMPARISON = "incompatible types for comparison"
_BAD_COMPARISON_TYPE = "invalid type for comparison"


def _comparable(v: Any) -> bool:
    return not isinstance(v, list | Mapping)


def builtin_eq(arg1: Any, *arg2: Any) -> bool:
    arg1 = _deref(arg1)
    if arg1 is not MISSING and not _comparable(arg1):
        raise FuncError(f"uncomparable type {go_type(arg1)}: {format_value(arg1)}")
    if not arg2:
        raise FuncError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in arg2:
        arg = _deref(arg)
        k2 = _basic_kind(arg)
        if k1 != k2:
            if {k1, k2} == {"int", "uint"}:
                truth = int(arg1) == int(arg)
            elif arg1 is not MISSING and arg is not MISSING:
                raise FuncError(_BAD_COMPARISON)
            else:
                truth = False
        elif k1 != "invalid":
            truth = arg1 == arg
        elif arg is MISSING or arg1 is MISSING:
            truth = arg is arg1
        else:
            if not _comparable(arg):
                raise FuncError(f"runtime error: comparing uncomparable type {go_type(arg)}")
            truth = arg1 is arg or arg1 == arg
        if truth:
            return True
    return False


def builtin_ne(arg1: Any, arg2: Any) -> bool:
    return not builtin_eq(arg1, arg2)


def builtin_lt(arg1: Any, arg2: Any) -> bool:
    arg1, arg2 = _deref(arg1), _deref(arg2)
    k1, k2 = _basic_kind(arg1), _basic_kind(arg2)
    if "invalid" in (k1, k2):
        raise FuncError(_BAD_COMPARISON_TYPE)
    if k1 != k2:
        if {k1, k2} == {"int", "uint"}:
            return bool(int(arg1) < int(arg2))
        raise FuncError(_BAD_COMPARISON)
    if k1 in ("bool", "complex"):
        raise FuncError(_BAD_COMPARISON_TYPE)
    return bool(arg1 < arg2)


def builtin_le(arg1: Any, arg2: Any) -> bool:
    return builtin_lt(arg1, arg2) or builtin_eq(arg1, arg2)


def builtin_gt(arg1: Any, arg2: Any) -> bool:
    return not builtin_le(arg1, arg2)


def builtin_ge(arg1: Any, arg2: Any) -> bool:
    return not builtin_lt(arg1, arg2)


def builtin_not(arg: Any) -> bool:
    return not is_true(_deref(arg))[0]


# --- indexing ----------------------------------------------------------------------------


def _index_arg(index: Any, cap: int) -> int:
    if index is MISSING or index is None:
        raise FuncError("cannot index slice/array with nil")
    if isinstance(index, bool) or not isinstance(index, int):
        raise FuncError(f"cannot index slice/array with type {go_type(index)}")
    if index < 0 or index > cap:
        raise FuncError(f"index out of range: {index}")
    return int(index)


def _encode(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def builtin_index(item: Any, *indexes: Any) -> Any:
    item = _deref(item)
    if item is MISSING:
        raise FuncError("index of untyped nil")
    for index in indexes:
        index = _deref(index)
        if item is None:
            raise FuncError("index of nil pointer")
        if isinstance(item, str):
            data = _encode(item)
            x = _index_arg(index, len(data))
            if x == len(data):
                raise FuncError("reflect: string index out of range")
            item = Uint8(data[x])
        elif isinstance(item, list | tuple):
            x = _index_arg(index, len(item))
            if x == len(item):
                raise FuncError("reflect: slice index out of range")
            item = item[x]
        elif isinstance(item, Mapping):
            if index is MISSING:
                raise FuncError("value is nil; should be of type string")
            if not isinstance(index, str):
                raise FuncError(f"value has type {go_type(index)}; should be string")
            item = item.get(index)
        else:
            raise FuncError(f"can't index item of type {go_type(item)}")
    return item


def builtin_slice(item: Any, *indexes: Any) -> Any:
    item = _deref(item)
    if item is MISSING:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
        seq: Any = _encode(item)
    elif isinstance(item, list | tuple):
        seq = list(item)
    else:
        raise FuncError(f"can't slice item of type {go_type(item)}")
    idx = [0, len(seq), len(seq)]
    for i, index in enumerate(indexes):
        idx[i] = _index_arg(index, len(seq))
    if idx[0] > idx[1]:
        raise FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise FuncError(f"invalid slice index: {idx[1]} > {idx[2]}")
    part = seq[idx[0] : idx[1]]
    if isinstance(part, bytes):
        return part.decode("utf-8", "surrogateescape")
    return part


def builtin_len(item: Any) -> int:
    if item is MISSING:
        raise FuncError("reflect: call of reflect.Value.Type on zero Value")
    if item is None:
        raise FuncError("len of nil pointer")
    if isinstance(item, str):
        return len(_encode(item))
    if isinstance(item, list | tuple | Mapping):
        return len(item)
    raise FuncError(f"len of type {go_type(item)}")


def builtin_call(fn: Any, *args: Any) -> Any:
    fn = _deref(fn)
    if fn is MISSING:
        raise FuncError("call of nil")
    if not callable(fn):
        raise FuncError(f"non-function of type {go_type(fn)}")
    return fn(*(None if a is MISSING else a for a in args))


# --- escaping ----------------------------------------------------------------------------


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(*("<no value>" if a is None or a is MISSING else a for a in args))


_HTML = {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\0": "\ufffd"}
_JS = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "<": "\\u003C",
    ">": "\\u003E",
    "&": "\\u0026",
    "=": "\\u003D",
}


def builtin_html(*args: Any) -> str:
    s = _eval_args(args)
    return "".join(_HTML.get(c, c) for c in s)


def builtin_js(*args: Any) -> str:
    out = []
    for c in _eval_args(args):
        if c in _JS:
            out.append(_JS[c])
        elif c < " " or (ord(c) >= 0x80 and not is_print(c)):
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


def builtin_urlquery(*args: Any) -> str:
    import urllib.parse

    return urllib.parse.quote_plus(_encode(_eval_args(args)), safe="-_.~")


def _builtin_and_or(*_args: Any) -> Any:  # evaluated lazily by the executor
    raise AssertionError("and/or are evaluated by the executor")


BUILTINS: dict[str, GoFunc] = {
    "and": GoFunc(_builtin_and_or, ("value",), "value"),
    "or": GoFunc(_builtin_and_or, ("value",), "value"),
    "not": GoFunc(builtin_not, ("value",)),
    "len": GoFunc(builtin_len, ("value",)),
    "index": GoFunc(builtin_index, ("value",), "value"),
    "slice": GoFunc(builtin_slice, ("value",), "value"),
    "print": GoFunc(sprint, (), "any"),
    "printf": GoFunc(sprintf, ("string",), "any"),
    "println": GoFunc(sprintln, (), "any"),
    "html": GoFunc(builtin_html, (), "any"),
    "js": GoFunc(builtin_js, (), "any"),
    "urlquery": GoFunc(builtin_urlquery, (), "any"),
    "call": GoFunc(builtin_call, ("value",), "value"),
    "eq": GoFunc(builtin_eq, ("value",), "value"),
    "ne": GoFunc(builtin_ne, ("value", "value")),
    "lt": GoFunc(builtin_lt, ("value", "value")),
    "le": GoFunc(builtin_le, ("value", "value")),
    "gt": GoFunc(builtin_gt, ("value", "value")),
    "ge": GoFunc(builtin_ge, ("value", "value")),
}


# --- the executor ------------------------------------------------------------------------


class State:
    """One execution: output, variable stack and the node errors are reported at."""

    def __init__(
        self,
        name: str,
        trees: Mapping[str, Tree],
        funcs: Mapping[str, GoFunc],
        text: str,
        parse_name: str,
    ) -> None:
        self.name = name
        self.trees = trees
        self.funcs = funcs
        self.text = text
        self.parse_name = parse_name
        self.node: Node | None = None
        self.vars: list[list[Any]] = []
        self.out: list[str] = []
        self.depth = 0

    # -- errors ----------------------------------------------------------------------------

    def at(self, node: Node) -> None:
        self.node = node

    def errorf(self, msg: str) -> ExecError:
        if self.node is None:
            return ExecError(f"template: {self.name}: {msg}")
        pos = self.node.pos
        before = self.text[:pos]
        nl = before.rfind("\n")
        line = 1 + before.count("\n")
        col = len(_encode(before[nl + 1 :]))
        location = f"{self.parse_name}:{line}:{col}"
        return ExecError(
            f"template: {location}: executing {quote(self.name)} at <{self.node}>: {msg}"
        )

    # -- variables -------------------------------------------------------------------------

    def push(self, name: str, value: Any) -> None:
        self.vars.append([name, value])

    def mark(self) -> int:
        return len(self.vars)

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def set_var(self, name: str, value: Any) -> None:
        for var in reversed(self.vars):
            if var[0] == name:
                var[1] = value
                return
        raise self.errorf(f"undefined variable: {name}")

    def set_top_var(self, n: int, value: Any) -> None:
        self.vars[-n][1] = value

    def var_value(self, name: str) -> Any:
        for var in reversed(self.vars):
            if var[0] == name:
                return var[1]
        raise self.errorf(f"undefined variable: {name}")

    # -- walking ---------------------------------------------------------------------------

    def walk(self, dot: Any, node: Node) -> None:
        if isinstance(node, TextNode):
            self.out.append(node.text)
        elif isinstance(node, ActionNode):
            val = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.at(node)
                self.out.append("<no value>" if val is MISSING else format_value(val))
        elif isinstance(node, ListNode):
            for n in node.nodes:
                self.walk(dot, n)
        elif isinstance(node, IfNode | WithNode):
            self.walk_if_or_with(dot, node)
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break
        elif isinstance(node, ContinueNode):
            raise _Continue
        else:
            raise self.errorf(f"unknown node: {node}")

    def walk_if_or_with(self, dot: Any, node: BranchNode) -> None:
        mark = self.mark()
        try:
            val = self.eval_pipeline(dot, node.pipe)
            truth, _ = is_true(_deref(val))
            if truth:
                self.walk(val if isinstance(node, WithNode) else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            self.pop(mark)

    def walk_range(self, dot: Any, node: BranchNode) -> None:
        self.at(node)
        outer = self.mark()
        try:
            val = self.eval_pipeline(dot, node.pipe)
            mark = self.mark()
            if isinstance(val, list | tuple):
                pairs: Any = enumerate(val)
                empty = not val
            elif isinstance(val, Mapping):
                pairs = ((k, val[k]) for k in sorted(val, key=_map_key_order))
                empty = not val
            elif val is MISSING or val is None:
                pairs, empty = (), True
            else:
                raise self.errorf(f"range can't iterate over {format_value(val)}")
            try:
                for index, elem in pairs:
                    self._range_iteration(node, mark, index, elem)
            except _Break:
                pass
            if empty and node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            self.pop(outer)

    def _range_iteration(self, node: BranchNode, mark: int, index: Any, elem: Any) -> None:
        decl = node.pipe.decl
        if decl:
            if node.pipe.is_assign:
                self.set_var(decl[0].ident[0], index if len(decl) > 1 else elem)
            else:
                self.set_top_var(1, elem)
        if len(decl) > 1:
            if node.pipe.is_assign:
                self.set_var(decl[1].ident[0], elem)
            else:
                self.set_top_var(2, index)
        try:
            self.walk(elem, node.list)
        except _Continue:
            pass
        finally:
            self.pop(mark)

    def walk_template(self, dot: Any, node: TemplateNode) -> None:
        self.at(node)
        tree = self.trees.get(node.name)
        if tree is None:
            raise self.errorf(f"template {quote(node.name)} not defined")
        if self.depth >= _MAX_DEPTH:
            raise self.errorf(f"exceeded maximum template depth ({_MAX_DEPTH})")
        dot = self.eval_pipeline(dot, node.pipe)
        sub = State(tree.name, self.trees, self.funcs, self.text, self.parse_name)
        sub.depth = self.depth + 1
        sub.out = self.out
        sub.push("$", dot)
        sub.walk(dot, tree.root)

    # -- pipelines and commands ------------------------------------------------------------

    def eval_pipeline(self, dot: Any, pipe: PipeNode | None) -> Any:
        if pipe is None:
            return MISSING
        self.at(pipe)
        value = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is None:
                value = MISSING  # a nil interface{} is no value
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.ident[0], value)
            else:
                self.push(var.ident[0], value)
        return value

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            return self.eval_field_node(dot, first, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain_node(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable_node(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            raise self.errorf("nil is not a command")
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, StringNode):
            return first.text
        raise self.errorf(f"can't evaluate command {quote(str(first))}")

    def not_a_function(self, args: list[Node], final: Any) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            raise self.errorf(f"can't give argument to non-function {args[0]}")

    def ideal_constant(self, n: NumberNode) -> Any:
        self.at(n)
        text = n.text
        is_hex_int = (
            len(text) > 2
            and text[0] == "0"
            and text[1] in "xX"
            and not any(c in text for c in "pP")
        )
        if n.is_complex:
            return n.complex_value
        if (
            n.is_float
            and not is_hex_int
            and not text.startswith("'")
            and any(c in text for c in ".eEpP")
        ):
            return n.float_value
        if n.is_int:
            return n.int_value
        raise self.errorf(f"{text} overflows int")

    # -- fields ----------------------------------------------------------------------------

    def eval_field_node(self, dot: Any, node: FieldNode, args: list[Node], final: Any) -> Any:
        self.at(node)
        return self.eval_field_chain(dot, dot, node, node.ident, args, final)

    def eval_chain_node(self, dot: Any, chain: ChainNode, args: list[Node], final: Any) -> Any:
        self.at(chain)
        if isinstance(chain.node, NilNode):
            raise self.errorf(f"indirection through explicit nil in {chain}")
        pipe = self.eval_arg(dot, None, chain.node)
        return self.eval_field_chain(dot, pipe, chain, chain.fields, args, final)

    def eval_variable_node(self, dot: Any, node: VariableNode, args: list[Node], final: Any) -> Any:
        self.at(node)
        value = self.var_value(node.ident[0])
        if len(node.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, node, node.ident[1:], args, final)

    def eval_field_chain(
        self,
        dot: Any,
        receiver: Any,
        node: Node,
        idents: list[str],
        args: list[Node],
        final: Any,
    ) -> Any:
        typ = go_type(receiver)
        for name in idents[:-1]:
            receiver = self.eval_field(dot, name, node, [], _NO_FINAL, receiver, typ)
            typ = "interface {}"  # what a map of interface{} values holds
        return self.eval_field(dot, idents[-1], node, args, final, receiver, typ)

    def eval_field(
        self,
        dot: Any,
        name: str,
        node: Node,
        args: list[Node],
        final: Any,
        receiver: Any,
        typ: str,
    ) -> Any:
        if receiver is MISSING:
            return MISSING
        if receiver is None:
            raise self.errorf(f"nil pointer evaluating {typ}.{name}")
        has_args = len(args) > 1 or final is not _NO_FINAL
        if isinstance(receiver, Mapping):
            if has_args:
                raise self.errorf(f"{name} is not a method but has arguments")
            return receiver.get(name, MISSING)
        if isinstance(receiver, str | int | float | complex | list | tuple):
            raise self.errorf(f"can't evaluate field {name} in type {typ}")
        value = getattr(receiver, name, MISSING)
        if callable(value) and not isinstance(value, type):
            fn = GoFunc(value, (), "any")
            return self.eval_call(dot, fn, False, node, name, args, final)
        if has_args:
            raise self.errorf(f"{name} has arguments but cannot be invoked as function")
        return value

    # -- calls -----------------------------------------------------------------------------

    def eval_function(
        self, dot: Any, node: IdentifierNode, cmd: Node, args: list[Node], final: Any
    ) -> Any:
        self.at(node)
        name = node.ident
        fn = self.funcs.get(name)
        builtin = False
        if fn is None:
            fn = BUILTINS.get(name)
            builtin = True
        if fn is None:
            raise self.errorf(f"{quote(name)} is not a defined function")
        return self.eval_call(dot, fn, builtin, cmd, name, args, final)

    def eval_call(
        self,
        dot: Any,
        fn: GoFunc,
        builtin: bool,
        node: Node,
        name: str,
        args: list[Node],
        final: Any,
    ) -> Any:
        args = args[1:]  # the zeroth is the function's own name
        num_in = len(args) + (final is not _NO_FINAL)
        params = fn.params
        num_params = len(params) + (fn.variadic is not None)
        if fn.variadic is not None:
            num_fixed = len(params)
            if num_in < num_fixed:
                raise self.errorf(
                    f"wrong number of args for {name}: want at least {num_fixed} got {len(args)}"
                )
        else:
            num_fixed = len(args)
            if num_in != num_params:
                raise self.errorf(
                    f"wrong number of args for {name}: want {num_params} got {num_in}"
                )

        if builtin and name in ("and", "or"):
            return self._and_or(dot, name, args, final)

        argv: list[Any] = []
        i = 0
        while i < num_fixed and i < len(args):
            argv.append(self.eval_arg(dot, params[i], args[i]))
            i += 1
        if fn.variadic is not None:
            for arg in args[i:]:
                argv.append(self.eval_arg(dot, fn.variadic, arg))
        if final is not _NO_FINAL:
            if fn.variadic is not None and num_in - 1 >= num_fixed:
                typ = fn.variadic
            else:
                typ = params[num_in - 1]
            argv.append(self.validate_type(final, typ))

        try:
            return fn.call(*argv)
        except FuncError as e:
            self.at(node)
            raise self.errorf(f"error calling {name}: {e}") from None

    def _and_or(self, dot: Any, name: str, args: list[Node], final: Any) -> Any:
        v: Any = MISSING
        for arg in args:
            v = self.eval_arg(dot, "value", arg)
            if is_true(_deref(v))[0] == (name == "or"):
                return v
        if final is not _NO_FINAL:
            v = self.validate_type(final, "value")
        return v

    # -- arguments -------------------------------------------------------------------------

    def eval_arg(self, dot: Any, typ: str | None, n: Node) -> Any:
        self.at(n)
        if isinstance(n, DotNode):
            return self.validate_type(dot, typ)
        if isinstance(n, NilNode):
            if typ in ("any", None):
                return None
            raise self.errorf(f"cannot assign nil to {_PARAM_TYPE_NAMES[typ]}")
        if isinstance(n, FieldNode):
            return self.validate_type(self.eval_field_node(dot, n, [n], _NO_FINAL), typ)
        if isinstance(n, VariableNode):
            return self.validate_type(self.eval_variable_node(dot, n, [], _NO_FINAL), typ)
        if isinstance(n, PipeNode):
            return self.validate_type(self.eval_pipeline(dot, n), typ)
        if isinstance(n, IdentifierNode):
            return self.validate_type(self.eval_function(dot, n, n, [], _NO_FINAL), typ)
        if isinstance(n, ChainNode):
            return self.validate_type(self.eval_chain_node(dot, n, [], _NO_FINAL), typ)
        if typ == "bool":
            if isinstance(n, BoolNode):
                return n.value
            raise self.errorf(f"expected bool; found {n}")
        if typ == "int":
            if isinstance(n, NumberNode) and n.is_int:
                return n.int_value
            raise self.errorf(f"expected integer; found {n}")
        if typ == "float64":
            if isinstance(n, NumberNode) and n.is_float:
                return n.float_value
            raise self.errorf(f"expected float; found {n}")
        if typ == "string":
            if isinstance(n, StringNode):
                return n.text
            raise self.errorf(f"expected string; found {n}")
        return self.eval_empty_interface(dot, n)

    def eval_empty_interface(self, dot: Any, n: Node) -> Any:
        self.at(n)
        if isinstance(n, BoolNode):
            return n.value
        if isinstance(n, NumberNode):
            return self.ideal_constant(n)
        if isinstance(n, StringNode):
            return n.text
        raise self.errorf(f"can't handle assignment of {n} to empty interface argument")

    def validate_type(self, value: Any, typ: str | None) -> Any:
        if value is MISSING:
            if typ is None or typ == "any":
                return None
            if typ == "value":
                return MISSING
            raise self.errorf(f"invalid value; expected {_PARAM_TYPE_NAMES[typ]}")
        if typ in (None, "any", "value"):
            return value
        if _assignable(value, typ):
            return value
        got = "interface {}" if value is None else go_type(value)
        raise self.errorf(f"wrong type for value; expected {_PARAM_TYPE_NAMES[typ]}; got {got}")


def _assignable(value: Any, typ: str) -> bool:
    if typ == "string":
        return isinstance(value, str)
    if typ == "bool":
        return isinstance(value, bool)
    if typ == "int":
        return isinstance(value, int) and not isinstance(value, bool | Uint8)
    if typ == "float64":
        return isinstance(value, float)
    return True


def _map_key_order(k: Any) -> Any:
    return (0, k) if isinstance(k, int | float) else (1, str(k))


def execute(
    trees: Mapping[str, Tree],
    name: str,
    text: str,
    data: Any,
    funcs: Mapping[str, GoFunc],
) -> str:
    """Run template ``name`` of ``trees`` (parsed from ``text``) on ``data``."""
    tree = trees.get(name)
    state = State(name, trees, funcs, text, name)
    dot = MISSING if data is None else data
    if tree is None:
        raise state.errorf(f"{quote(name)} is an incomplete or empty template")
    state.push("$", dot)
    try:
        state.walk(dot, tree.root)
    except RecursionError:
        raise state.errorf(f"exceeded maximum template depth ({_MAX_DEPTH})") from None
    return "".join(state.out)
