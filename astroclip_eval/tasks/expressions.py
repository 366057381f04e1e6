"""Arithmetic over catalogue columns for derived properties (sSFR = log10(AVG_SFR) - LOG_MSTAR), parsed and checked
from the config before any data is read and walked node by node: never evaluated as Python.

Allowed: column names, numbers, + - * / ** (and unary minus), and the functions log (natural), log10 and exp with
one argument each. A value that is not finite (log of a negative mass) stays NaN and drops that galaxy."""

from __future__ import annotations

import ast
from collections.abc import Mapping

import numpy as np

from astroclip_eval.io.errors import UserError

FUNCTIONS = {"log": np.log, "log10": np.log10, "exp": np.exp}
OPERATORS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide, ast.Pow: np.power}
MAX_LENGTH = 500


class Expression:
    """A checked expression: `columns` it reads, and `evaluate` over a mapping of column name -> array."""

    def __init__(self, text: str, where: str):
        self.text, self.where = text, where
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_LENGTH:
            raise UserError(f"{where}: expected an expression of at most {MAX_LENGTH} characters, got {text!r}")
        try:
            self._tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise UserError(f"{where}: {text!r} is not an arithmetic expression ({exc.msg})") from None
        self.columns: list[str] = []
        self._check(self._tree)

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            self._check(node.operand)
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            pass
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
