"""Execution of a parsed Go text/template (Go 1.19 semantics and error texts).

Values follow the model described in ``gobuiltins`` (``MISSING`` is Go's invalid
reflect.Value, printed as ``<no value>``).

The executor tracks the node it is at exactly where Go's does (``s.at(node)``),
because errors quote that node and its line:column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagesmith.golang import Uint8, format_value, go_type, quote
from imagesmith.template.gobuiltins import (
    BUILTINS,
    MISSING,
    FuncError,
    GoFunc,
    deref,
    is_true,
)
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
)
from imagesmith.template.goparse import TemplateError, Tree

__all__ = ["BUILTINS", "MISSING", "ExecError", "FuncError", "GoFunc", "execute"]


class ExecError(TemplateError):
    pass


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
        col = len(before[nl + 1 :].encode("utf-8", "surrogateescape"))  # Go counts bytes
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
            truth, _ = is_true(deref(val))
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
            if is_true(deref(v))[0] == (name == "or"):
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
