"""Arithmetic over catalogue columns for derived properties (sSFR = log10(AVG_SFR) - LOG_MSTAR), parsed and checked
from the config before any data is read and walked node by node: never evaluated as Python.

Allowed: column names, numbers, + - * / ** (and unary minus), and the functions log (natural), log10 and exp with
one argument each. A value that is not finite (log of a negative mass) stays NaN and drops that galaxy.
A `Condition` (a catalogue's row filter, `LOG_MSTAR > 0`) compares such expressions."""

from __future__ import annotations

import ast
import unicodedata
from collections.abc import Mapping

import numpy as np

from astroclip_eval.io.errors import UserError, short

FUNCTIONS = {"log": np.log, "log10": np.log10, "exp": np.exp}
OPERATORS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide, ast.Pow: np.power}
COMPARISONS = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal}
MAX_LENGTH = 500


class Expression:
    """A checked expression: `columns` it reads, and `evaluate` over a mapping of column name -> array."""

    def __init__(self, text: str, where: str):
        self.text, self.where = text, where
        self._tree = self._parse()
        self.columns: list[str] = []
        self._check(self._tree)
        self._require_a_column()

    def _require_a_column(self) -> None:
        """An expression that reads no column would give every row, in the catalogue or not, the same value."""
        if not self.columns:
            raise UserError(f"{self.where}: {self.text!r} reads no catalogue column; a label must depend on one")

    def _parse(self) -> ast.AST:
        if not isinstance(self.text, str) or not self.text.strip() or len(self.text) > MAX_LENGTH:
            raise UserError(f"{self.where}: expected an expression of at most {MAX_LENGTH} characters, got {short(self.text)}")
        if unicodedata.normalize("NFKC", self.text) != self.text:  # Python reads identifiers NFKC-normalised
            raise UserError(f"{self.where}: {self.text!r} holds characters Python reads as others (e.g. \ufb01 as fi, "
                            "\u00b5 as \u03bc), so the column read would not be the one named; name it with column:")
        try:
            return ast.parse(self.text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise UserError(f"{self.where}: {self.text!r} is not an arithmetic expression ({exc.msg})") from None

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            self._check(node.operand)
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            try:
                finite = np.isfinite(float(node.value))
            except OverflowError:
                finite = False
            if not finite:
                raise UserError(f"{self.where}: the number {short(str(node.value))} in {short(self.text)} is not a finite "
                                "float")
        elif isinstance(node, ast.Name):
            if node.id not in self.columns:
                self.columns.append(node.id)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FUNCTIONS
            and len(node.args) == 1
            and not node.keywords
        ):
            self._check(node.args[0])
        else:
            allowed = "column names, numbers, + - * / **, log(), log10(), exp()"
            raise UserError(f"{self.where}: {ast.unparse(node)!r} in {self.text!r} is not allowed (only {allowed})")

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(self._walk(self._tree, columns), dtype=np.float64)

    def _walk(self, node: ast.AST, columns: Mapping[str, np.ndarray]) -> np.ndarray | float:
        if isinstance(node, ast.BinOp):
            return OPERATORS[type(node.op)](self._walk(node.left, columns), self._walk(node.right, columns))
        if isinstance(node, ast.UnaryOp):
            value = self._walk(node.operand, columns)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return np.asarray(columns[node.id], dtype=np.float64)
        return FUNCTIONS[node.func.id](self._walk(node.args[0], columns))  # a checked call


class Condition(Expression):
    """A row filter: arithmetic expressions compared with < <= > >= (chains too: `0 < Z_MW < 0.1`). A row where any
    side is not finite fails it, so a missing or failed value never passes a filter."""

    def __init__(self, text: str, where: str):
        self.text, self.where = text, where
        tree = self._parse()
        if not isinstance(tree, ast.Compare) or any(type(op) not in COMPARISONS for op in tree.ops):
            raise UserError(f"{where}: {text!r} is not a comparison of columns and numbers (e.g. 'LOG_MSTAR > 0')")
        self._tree, self.columns = tree, []
        for side in (tree.left, *tree.comparators):
            self._check(side)
        self._require_a_column()

    def holds(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """True per row where every comparison holds between finite values."""
        tree = self._tree
        with np.errstate(all="ignore"):
            sides = np.broadcast_arrays(*[np.asarray(self._walk(s, columns), dtype=np.float64)
                                          for s in (tree.left, *tree.comparators)])
            out = np.logical_and.reduce([np.isfinite(s) for s in sides])
            for op, left, right in zip(tree.ops, sides, sides[1:]):
                out &= COMPARISONS[type(op)](left, right)
        return np.asarray(out, dtype=bool)
