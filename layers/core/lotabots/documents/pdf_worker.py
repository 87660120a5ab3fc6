"""PDF text extraction in a process of its own, under hard budgets (started by `pdf_extraction`).

A PDF is cheap to make and can be very expensive to read: a few kilobytes of Flate data inflate
to gigabytes, page trees and form XObjects can be deep, shared or cyclic, one text operator can
hold millions of characters. pypdf limits much of this itself (`pypdf.Configuration`), but
nothing in one process bounds the total, and a cooperative check between pages cannot stop a
single page that takes minutes. So the reader runs here, in a subprocess (not multiprocessing:
Lambda has no /dev/shm), which

- limits itself before it touches the file: address space, CPU seconds, no files written, no
  core dumps; and gets an environment without credentials;
- tells pypdf its per-stream limits, counts every decoded byte against a per-document total
  and walks the page tree lazily, never past the page budget;
- gives each page a time slice: SIGALRM raises an exception derived from BaseException, which
  pypdf's many `except Exception` clauses cannot swallow;
- writes one JSON line per page as soon as the page is read, so that what was read survives
  even when the parent has to kill it at the deadline.

Records on stdout (one JSON object per line; `done` or `reject` comes last but one, unless the
process was killed):

    {"page": n, "words": w, "text": "...", "cut": bool}   page n read; `text` is the part kept
    {"skip": n, "why": "..."}                               page n could not be read
    {"done": {"stop": "..." | null}}                        finished, or stopped by a budget
    {"reject": "..."}                                       not a readable PDF
    {"peak_rss": bytes}                                     always last: this process's peak

Run as `python -m lotabots.documents.pdf_worker BUDGET_JSON PDF_PATH`.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

from lotabots.documents.extraction import WordCounter, clean_text
from lotabots.documents.pdf_budget import MIB, PdfBudget

T = TypeVar("T")
_INHERITABLE = ("/Resources", "/MediaBox", "/CropBox", "/Rotate")
# Page-tree levels walked (pypdf's own default); deeper trees stop the walk.
MAX_TREE_DEPTH = 100


class OverBudget(BaseException):
    """A budget ran out. BaseException on purpose: pypdf catches `Exception` in many places."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _Overtime(OverBudget):
    pass


class _Clock:
    """Runs a step under a time slice (ITIMER_REAL/SIGALRM interrupts pure-Python loops)."""

    def __init__(self, budget: PdfBudget) -> None:
        self.budget = budget
        self.deadline = min(budget.deadline, time.monotonic() + budget.seconds)
        self._armed = False
        signal.signal(signal.SIGALRM, self._on_alarm)

    def _on_alarm(self, signum: int, frame: object) -> None:
        if self._armed:
            raise _Overtime("time")

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, step: Callable[[], T], limit: float) -> T:
        """`step()` within `limit` seconds (and the overall deadline); raises _Overtime."""
        seconds = min(limit, self.remaining())
        if seconds <= 0:
            raise _Overtime("time")
        self._armed = True  # armed before the timer starts, disarmed before it is cleared
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return step()
        finally:
            self._armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)

    def out_of_time(self) -> bool:
        return self.remaining() <= 0.01


def _limit_self(budget: PdfBudget) -> None:
    """Hard limits of this process; best effort where the platform does not offer one."""
    try:
        import resource
    except ImportError:  # not POSIX: only the parent's deadline applies
        return
    cpu = math.ceil(budget.seconds) + 1
    memory = budget.memory_mb * MIB
    for limit, value in (
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_CORE, 0),
    ):
        _soft, hard = resource.getrlimit(limit)
        ceiling = value if hard == resource.RLIM_INFINITY else min(value, hard)
        try:
            resource.setrlimit(limit, (ceiling, hard if limit == resource.RLIMIT_CPU else ceiling))
        except (ValueError, OSError):  # e.g. macOS refuses RLIMIT_AS below the current size
            continue


def _count_decoded_bytes(limit: int) -> None:
    """Charge every decoded stream to one per-document total (pypdf has only per-stream limits).

    pypdf decodes every stream through `pypdf.filters.decode_stream_data` (imported at call
    time by `EncodedStreamObject.get_data`, which caches the result), so wrapping it here, in
    this throwaway process, sees each decode exactly once."""
    import pypdf.filters

    decode = pypdf.filters.decode_stream_data
    spent = 0
    why = f"its streams decompress to more than {limit // MIB} MiB in total"

    def counted(stream: Any) -> bytes:
        nonlocal spent
        if spent >= limit:
            raise OverBudget(why)
        data = decode(stream)
        spent += len(data)
        if spent > limit:
            raise OverBudget(why)
        return data

    pypdf.filters.decode_stream_data = counted  # type: ignore[assignment]


def _kids(node: Any) -> Iterator[Any]:
    from pypdf.generic import ArrayObject

    kids = node.get("/Kids")
    kids = kids.get_object() if kids is not None else None
    return iter(kids) if isinstance(kids, ArrayObject) else iter(())


def _walk_pages(reader: Any, budget: PdfBudget) -> Iterator[Any]:
    """The leaf pages in order, resolved one at a time (pypdf's `reader.pages` resolves the
    whole tree first: 100,000 pages take a minute). Cycles are skipped; the walk stops past
    MAX_TREE_DEPTH levels or budget.max_tree_nodes nodes."""
    from pypdf import PageObject
    from pypdf.generic import DictionaryObject, IndirectObject, NameObject

    root = reader.root_object.get("/Pages")
    root = root.get_object() if root is not None else None
    if not isinstance(root, DictionaryObject):
        raise ValueError("the PDF has no page tree")
    stack = [(_kids(root), _inherited({}, root), id(root))]
    ancestors = {id(root)}
    visited = 0
    while stack:
        kids, inherited, node_id = stack[-1]
        kid = next(kids, None)
        if kid is None:
            stack.pop()
            ancestors.discard(node_id)
            continue
        node = kid.get_object()
        if not isinstance(node, DictionaryObject) or not node or id(node) in ancestors:
            continue
        visited += 1
        if visited > budget.max_tree_nodes:
            raise OverBudget(f"its page tree has more than {budget.max_tree_nodes} nodes")
        kind = node.get("/Type")
        if kind == "/Pages" or (kind is None and "/Kids" in node):
            if len(stack) >= MAX_TREE_DEPTH:
                raise OverBudget(f"its page tree is nested more than {MAX_TREE_DEPTH} levels deep")
            ancestors.add(id(node))
            stack.append((_kids(node), _inherited(inherited, node), id(node)))
            continue
        page = PageObject(reader, kid if isinstance(kid, IndirectObject) else None)
        if not isinstance(kid, IndirectObject):
            page.update(node)
        for key, value in inherited.items():
            if key not in page:
                page[NameObject(key)] = value
        yield page


def _inherited(parent: dict[str, Any], node: Any) -> dict[str, Any]:
    values = dict(parent)
    for key in _INHERITABLE:
        if key in node:
            values[key] = node[key]
    return values


def _short(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__)[:160]


def _peak_rss() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        import resource

        scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale
    except ImportError:
        return 0


class _Writer:
    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def __call__(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._out.write(line + b"\n")
        self._out.flush()


def extract(path: str, budget: PdfBudget, emit: Callable[[dict[str, Any]], None]) -> None:
    """Read the PDF at `path` within `budget`, emitting records (see the module docstring)."""
    import pypdf
    from pypdf.errors import FileNotDecryptedError, LimitReachedError

    clock = _Clock(budget)
    _count_decoded_bytes(budget.max_decoded_bytes)
    with pypdf.apply_configuration(**budget.pypdf_limits()), open(path, "rb") as file:
        try:
            reader = clock.run(lambda: _open(pypdf, file), budget.seconds)
        except _Overtime:
            emit({"reject": f"the time budget of {budget.seconds:g} s ran out while opening it"})
            return
        except OverBudget as exc:
            emit({"reject": exc.why})
            return
        except MemoryError:
            emit({"reject": f"the memory budget of {budget.memory_mb} MiB ran out while opening it"})
            return
        except _Rejected as exc:
            emit({"reject": str(exc)})
            return
        except Exception as exc:  # pypdf raises many exception types on damaged files
            emit({"reject": f"the file is not a readable PDF ({_short(exc)})"})
            return
        stop = _read_pages(reader, budget, clock, emit, LimitReachedError, FileNotDecryptedError)
    emit({"done": {"stop": stop}})


class _Rejected(Exception):
    pass


def _open(pypdf: Any, file: IO[bytes]) -> Any:
    reader = pypdf.PdfReader(file, strict=False)
    if reader.is_encrypted and not reader.decrypt(""):
        raise _Rejected("the PDF is password-protected, so its text cannot be read")
    return reader


def _read_pages(
    reader: Any,
    budget: PdfBudget,
    clock: _Clock,
    emit: Callable[[dict[str, Any]], None],
    limit_error: type[Exception],
    not_decrypted: type[Exception],
) -> str | None:
    """Emit page and skip records; returns why reading stopped early (None: every page read)."""
    pages = _walk_pages(reader, budget)
    room = budget.max_text_chars
    number = 0
    while True:
        try:
            page = clock.run(lambda: next(pages, None), budget.page_seconds)
        except _Overtime:
            if clock.out_of_time():
                return f"the time budget of {budget.seconds:g} s ran out after page {number}"
            return f"finding page {number + 1} took longer than {budget.page_seconds:g} s"
        except OverBudget as exc:
            return exc.why
        except MemoryError:
            return f"the memory budget of {budget.memory_mb} MiB ran out"
        except Exception as exc:
            return f"its page tree could not be read ({_short(exc)})"
        if page is None:
            return None
        number += 1
        if number > budget.max_pages:
            return f"the PDF has more than {budget.max_pages} pages (the page limit)"
        try:
            text = clock.run(page.extract_text, budget.page_seconds)
        except _Overtime:
            if clock.out_of_time():
                return f"the time budget of {budget.seconds:g} s ran out at page {number}"
            emit({"skip": number, "why": f"reading it took longer than {budget.page_seconds:g} s"})
            continue
        except OverBudget as exc:
            return exc.why
        except MemoryError:
            return f"the memory budget of {budget.memory_mb} MiB ran out at page {number}"
        except not_decrypted:
            return "it is encrypted"
        except limit_error as exc:
            emit({"skip": number, "why": f"a size limit was reached ({_short(exc)})"})
            continue
        except Exception as exc:
            emit({"skip": number, "why": f"it could not be read ({_short(exc)})"})
            continue
        text = clean_text(text or "") + "\n"
        counter = WordCounter()
        counter.feed(text)
        kept = text[:room]
        room -= len(kept)
        emit({"page": number, "words": counter.count, "text": kept, "cut": len(kept) < len(text)})


def main(argv: list[str]) -> int:
    budget_json, path = argv
    budget = PdfBudget.from_json(budget_json)
    import logging
    import warnings

    import pypdf  # noqa: F401  (imported before the address-space limit applies)

    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    _limit_self(budget)
    emit = _Writer(sys.stdout.buffer)
    try:
        extract(path, budget, emit)
    except MemoryError:
        emit({"done": {"stop": f"the memory budget of {budget.memory_mb} MiB ran out"}})
    except OverBudget as exc:
        emit({"done": {"stop": exc.why}})
    emit({"peak_rss": _peak_rss()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
