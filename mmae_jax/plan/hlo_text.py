"""What the optimised per-chip HLO text (``compiled.as_text()``) tells that the cost analysis does not.

``collectives``: the collectives of a compiled program, by kind, with the bytes each chip
receives per step. ``custom_calls``: the custom calls (Pallas / Mosaic kernels, cuDNN), whose
FLOPs and bytes XLA's cost analysis leaves out unless the kernel states them.

Collectives are read from the optimised per-chip HLO text (``compiled.as_text()``): every all-reduce,
all-gather, reduce-scatter, collective-permute and all-to-all, synchronous or split into
``-start`` / ``-done`` (counted once, by the ``-done``'s result), in the entry computation and
in everything it calls; a collective inside a ``while`` body counts once per iteration when
the compiler knows the trip count. Bytes are those of the result shape on one chip.
"""

from __future__ import annotations

import collections
import re

KINDS = ("all-reduce", "all-gather", "reduce-scatter", "collective-permute", "all-to-all")
# Bytes per element of XLA's element types (sub-byte types rounded up per element).
ELEMENT_BYTES = {"pred": 1, "s4": 1, "u4": 1, "s8": 1, "u8": 1, "f8e4m3fn": 1, "f8e5m2": 1, "s16": 2, "u16": 2,
                 "f16": 2, "bf16": 2, "s32": 4, "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8,
                 "c128": 16, "token": 0}

_COMPUTATION = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*(.+?)\s+([a-z][\w\-]*)\(")
_ARRAY = re.compile(r"\b([a-z]+\d*(?:e\d+m\d+\w*)?)\[([\d,]*)\]")
_CALLEE = re.compile(r"\b(?:body|calls|true_computation|false_computation|branch_computations)="
                     r"\{?%?([\w.\-]+(?:,\s*%?[\w.\-]+)*)\}?")
_TRIP_COUNT = re.compile(r'"known_trip_count":\{"n":"(\d+)"')


def shape_bytes(shape: str) -> int:
    """Bytes of an HLO shape text: ``bf16[8,1568,768]{2,1,0}`` or a tuple ``(f32[4], s32[])``."""
    total = 0
    for dtype, dims in _ARRAY.findall(shape):
        if dtype not in ELEMENT_BYTES:
            continue
        count = 1
        for dim in filter(None, dims.split(",")):
            count *= int(dim)
        total += count * ELEMENT_BYTES[dtype]
    return total


def _kind(op: str) -> str | None:
    """The collective kind of HLO opcode ``op`` (``all-gather-done`` -> ``all-gather``), None for others
    (and for ``-start``, counted at its ``-done``)."""
    base = op.removesuffix("-done")
    return base if base in KINDS else None


def _parse(hlo_text: str) -> tuple[str | None, dict, dict]:
    """(entry name, computation -> Counter of (kind, bytes, count), computation -> [(callee, times)])."""
    entry = None
    current = None
    direct: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    calls: dict[str, list[tuple[str, int]]] = collections.defaultdict(list)
    for line in hlo_text.splitlines():
        if match := _COMPUTATION.match(line):
            current = match.group(2)
            if match.group(1):
                entry = current
            continue
        if current is None or not (match := _INSTRUCTION.match(line)):
            continue
        result, op = match.groups()
        if kind := _kind(op):
            direct[current][(kind, "bytes")] += shape_bytes(result)
            direct[current][(kind, "count")] += 1
        times = 1
        if op == "while" and (trip := _TRIP_COUNT.search(line)):
            times = int(trip.group(1))
        for callees in _CALLEE.findall(line):
            for callee in re.split(r",\s*", callees):
                calls[current].append((callee.lstrip("%"), times if op == "while" else 1))
    return entry, direct, calls


def collectives(hlo_text: str) -> dict[str, dict[str, int]]:
    """``{kind: {"count": n, "bytes": b}}`` per step on one chip, kinds with none left out."""
    entry, direct, calls = _parse(hlo_text)
    totals: collections.Counter = collections.Counter()

    def visit(name: str, times: int, path: tuple[str, ...]) -> None:
        if name in path:        # no recursion in HLO; guards against a misread
            return
        for key, value in direct.get(name, {}).items():
            totals[key] += value * times
        for callee, repeat in calls.get(name, []):
            visit(callee, times * repeat, path + (name,))

    if entry is not None:
        visit(entry, 1, ())
    return {kind: {"count": totals[(kind, "count")], "bytes": totals[(kind, "bytes")]}
            for kind in KINDS if totals[(kind, "count")]}


_CUSTOM_CALL_TARGET = re.compile(r'custom_call_target="([^"]+)"')


def custom_calls(hlo_text: str) -> dict[str, int]:
    """``{custom_call_target: count}`` of the custom-call instructions in the program text."""
    counts: collections.Counter = collections.Counter()
    for line in hlo_text.splitlines():
        if (match := _INSTRUCTION.match(line)) and match.group(2) == "custom-call":
            target = _CUSTOM_CALL_TARGET.search(line)
            counts[target.group(1) if target else "?"] += 1
    return dict(counts)
