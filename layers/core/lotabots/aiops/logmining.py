"""Online log template mining (a Drain-style fixed-depth grouping with masking and caches).

Each message is first *masked*: every variable-looking run of characters between delimiters (one
that contains a digit, an absolute path, a long hex string) becomes `<*>`. Numbers, ids, IPs, hex,
UUIDs, timestamps and most paths all contain digits, so one generic rule covers them without a
per-source list. The masked message is split on whitespace and grouped by (token count, first
token); inside a group it joins the template sharing the most constant tokens when more than
`SIMILARITY` of the message's constant positions agree, and the positions that differ become `<*>`.
Three caches make the common case one or two dict lookups: the message with its digits read as "0"
(its *shape*), each distinct token's mask, and the masked token sequence.

The configuration is one set of constants (see docs/aiops-algorithms.md for why each value).
Template ids are a hash of the template a cluster was created with, so the same first template
gets the same id in every run, and the id survives later generalisation through the state.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lotabots.aiops.state import StateError, check_envelope, field, require

__all__ = ["Match", "StateError", "Template", "TemplateMiner", "parse_lines"]

WILDCARD = "<*>"
STATE_KIND = "lotabots.aiops.logmining"
STATE_VERSION = 1

# A message longer than this is mined on its first MAX_MESSAGE_CHARS characters: a template is a
# shape, and a 1 MB line must not cost 1 MB of state or a quadratic comparison.
MAX_MESSAGE_CHARS = 4096
# Share of the message's constant positions that must agree to join a template: more than half.
SIMILARITY = 0.5
# Bounded caches (entries); cleared when full, which only costs a re-computation.
CACHE_ENTRIES = 50_000

_DELIMS = r"\s,;:=()\[\]{}\"'<>|"
_RUN = rf"[^{_DELIMS}]"
_MASK = re.compile(
    rf"(?<!{_RUN})"  # start of a run
    rf"(?:"
    rf"<\*>"  # already a wildcard
    rf"|[^{_DELIMS}\d]*+\d{_RUN}*+"  # any run with a digit: numbers, ids, IPs, hex, UUIDs, times
    rf"|/[^{_DELIMS}/]*+/{_RUN}*+"  # absolute paths (two slashes or more)
    rf"|[0-9a-fA-F]{{8,}}+(?!{_RUN})"  # long hex strings without a digit
    rf")"
)
_VARIABLE_RUN = re.compile(rf"[^{_DELIMS}\d]*+\d{_RUN}*+")
_HEX = re.compile(r"[0-9a-fA-F]+")
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Match:
    template_id: str
    template: str
    is_new: bool


@dataclass
class Template:
    template_id: str
    template: str
    count: int


class _Cluster:
    __slots__ = ("count", "match", "template_id", "tokens")

    def __init__(self, template_id: str, tokens: list[str], count: int) -> None:
        self.template_id = template_id
        self.tokens = tokens
        self.count = count
        self.match = Match(template_id, " ".join(tokens), False)  # reused while the template holds

    @property
    def template(self) -> str:
        return self.match.template

    def generalise(self, tokens: tuple[str, ...]) -> None:
        """Positions where `tokens` differ become wildcards."""
        changed = False
        for index, (have, new) in enumerate(zip(self.tokens, tokens, strict=True)):
            if have != new and have != WILDCARD:
                self.tokens[index] = WILDCARD
                changed = True
        if changed:
            self.match = Match(self.template_id, " ".join(self.tokens), False)


def mask(message: str) -> str:
    """The message with every variable-looking token replaced by `<*>` (whitespace normalised)."""
    return " ".join(_MASK.sub(WILDCARD, message).split())


def _mask_token(token: str) -> str:
    """`mask` of one whitespace-free token, with cheap paths for the two commonest shapes."""
    if not token.isprintable():
        # Lone surrogates (undecodable bytes) would break hashing and JSON: make them "?", and
        # control characters too, so a template is always printable.
        token = _CONTROL.sub("?", token.encode("utf-8", "replace").decode("utf-8"))
    if token.isascii() and token.isalnum():  # a plain word or number: one run, no delimiter
        if not token.isalpha() or (len(token) >= 8 and _HEX.fullmatch(token)):
            return WILDCARD
        return token
    if _VARIABLE_RUN.fullmatch(token):  # one run holding a digit (ids, IPs, versions)
        return WILDCARD
    return _MASK.sub(WILDCARD, token)


def _template_id(tokens: list[str]) -> str:
    return hashlib.blake2b(" ".join(tokens).encode("utf-8"), digest_size=8).hexdigest()


class TemplateMiner:
    """Online template miner; one generic configuration (module constants)."""

    def __init__(self) -> None:
        self._groups: dict[tuple[int, str], list[_Cluster]] = {}
        self._by_id: dict[str, _Cluster] = {}
        self._shapes: dict[bytes, _Cluster] = {}
        self._masked: dict[tuple[str, ...], _Cluster] = {}
        self._token_cache: dict[str, str] = {}

    def add(self, message: str) -> Match:
        """Assign `message` to a template (creating one when nothing is similar enough)."""
        cluster, is_new = self._add(message)
        return Match(cluster.template_id, cluster.template, True) if is_new else cluster.match

    def _add(self, message: str) -> tuple[_Cluster, bool]:
        """The message's cluster and whether it is new; the hot path is flat on purpose."""
        message = message[:MAX_MESSAGE_CHARS]
        # Every digit read as "0" masks alike (a run holding a digit stays one), so messages that
        # differ only in their digits (ids, counters, addresses) share one cache entry.
        shape = message.encode("utf-8", "surrogatepass").translate(_DIGITS_AS_ZERO)
        cluster = self._shapes.get(shape)
        if cluster is not None:
            cluster.count += 1
            return cluster, False
        # Whitespace is a delimiter of the mask, so masking token by token equals masking the
        # line; each distinct token is masked once, later it costs a dict lookup.
        get, miss = self._token_cache.get, self._mask_token
        tokens = tuple([get(token) or miss(token) for token in message.split()])
        cluster = self._masked.get(tokens)
        is_new = False
        if cluster is None:
            cluster, is_new = self._place(tokens)
        cluster.count += 1
        if len(self._shapes) >= CACHE_ENTRIES:
            self._shapes.clear()
        self._shapes[shape] = cluster
        return cluster, is_new

    def _place(self, tokens: tuple[str, ...]) -> tuple[_Cluster, bool]:
        """The most similar template of the bucket, generalised to the tokens, or a new one."""
        key = (len(tokens), tokens[0] if tokens else "")
        group = self._groups.setdefault(key, [])
        cluster = _best(group, tokens)
        is_new = cluster is None
        if cluster is None:
            cluster = self._create(list(tokens), 0)
            group.append(cluster)
        else:
            cluster.generalise(tokens)
        if len(self._masked) >= CACHE_ENTRIES:
            self._masked.clear()
        self._masked[tokens] = cluster
        return cluster, is_new

    def _mask_token(self, token: str) -> str:
        if len(self._token_cache) >= CACHE_ENTRIES:
            self._token_cache.clear()
        masked = self._token_cache[token] = _mask_token(token)
        return masked

    def _create(self, tokens: list[str], count: int, template_id: str | None = None) -> _Cluster:
        base = template_id or _template_id(tokens)
        unique, suffix = base, 1
        while unique in self._by_id:
            suffix += 1
            unique = f"{base}-{suffix}"
        cluster = _Cluster(unique, tokens, count)
        self._by_id[unique] = cluster
        return cluster

    def templates(self) -> list[Template]:
        """Every template, most frequent first."""
        clusters = sorted(self._by_id.values(), key=lambda c: (-c.count, c.template_id))
        return [Template(c.template_id, c.template, c.count) for c in clusters]

    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable, versioned snapshot (the caches are rebuilt, not stored)."""
        return {
            "kind": STATE_KIND,
            "version": STATE_VERSION,
            "templates": [
                {"id": c.template_id, "tokens": list(c.tokens), "count": c.count}
                for c in self._by_id.values()
            ],
        }

    @classmethod
    def from_state(cls, state: Any) -> TemplateMiner:
        """Rebuild a miner from `to_state()`'s output; StateError when it is not one."""
        body = check_envelope(state, STATE_KIND, STATE_VERSION)
        entries = field(body, "templates")
        require(isinstance(entries, list), "templates is not a list")
        miner = cls()
        for entry in entries:
            require(isinstance(entry, dict), "a template is not an object")
            template_id, tokens, count = entry.get("id"), entry.get("tokens"), entry.get("count")
            require(isinstance(template_id, str) and bool(template_id), "a template id is not a string")
            require(
                isinstance(tokens, list) and all(isinstance(t, str) and t and t == t.strip() for t in tokens),
                "template tokens are not a list of non-empty strings",
            )
            require(
                isinstance(count, int) and not isinstance(count, bool) and count >= 0,
                "a template count is not a non-negative integer",
            )
            require(template_id not in miner._by_id, f"template id {template_id} appears twice")
            cluster = _Cluster(template_id, list(tokens), count)
            miner._by_id[template_id] = cluster
            key = (len(tokens), tokens[0] if tokens else "")
            miner._groups.setdefault(key, []).append(cluster)
        return miner


def _best(group: list[_Cluster], tokens: tuple[str, ...]) -> _Cluster | None:
    """The most similar template in the bucket, or None when none is similar enough.

    Similarity is Drain's (the share of positions holding the same constant token), measured only
    where the message has a constant: a masked message token is a variable and says nothing about
    whether the two are the same event. A `<*>` in the template facing a message word is not
    agreement. More than `SIMILARITY` of those positions must agree (a strict majority); a message
    with no constant position joins the bucket's best (first) template.
    """
    if not group:
        return None
    constant = [i for i, token in enumerate(tokens) if WILDCARD not in token]
    if not constant:
        return group[0]
    best: _Cluster | None = None
    best_agree = -1
    for cluster in group:
        have = cluster.tokens
        agree = 0
        for i in constant:
            if have[i] == tokens[i]:
                agree += 1
        if agree > best_agree:
            best, best_agree = cluster, agree
    return best if best_agree > SIMILARITY * len(constant) else None


def parse_lines(lines: Iterable[str]) -> list[str]:
    """The final template of each line's cluster, in input order (the CLI and benchmarks)."""
    miner = TemplateMiner()
    clusters = [miner._add(line)[0] for line in lines]
    return [cluster.template for cluster in clusters]
