"""An Aetherius filter plugin written in Python: drops events by reason.

It behaves like the built-in Rust plugin `builtin:reason-filter`, so the two
can be compared (docs/benchmarks.md):

    config: {"allow": [patterns], "deny": [patterns]}

with `*` and `?` wildcards; deny wins over allow; an empty (or absent)
`allow` allows every reason.

Build (README.md):

    componentize-py -d ../../wit -w filter componentize app -o reason_filter.wasm
"""

import json
import re
from fnmatch import translate

import wit_world
from componentize_py_types import Err
from wit_world.imports import batch, host
from wit_world.imports.types import LogLevel, Verdict_Drop, Verdict_Keep

KEEP = Verdict_Keep()

# The stage's config, set once by `init`: (pattern, compiled regex) pairs.
# Module state lives as long as the plugin instance (the host re-creates the
# instance, and calls `init` again, after a trap).
allow: list = []
deny: list = []


def patterns(config: dict, field: str) -> list:
    value = config.get(field) or []
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise Err(f"invalid config at `{field}`: expected a list of strings")
    # Compiled here, once: compiling a pattern costs far more fuel than
    # matching it, and `init` is not on the per-event budget.
    return [(pattern, re.compile(translate(pattern))) for pattern in value]


def decide(reason: str):
    for pattern, regex in deny:
        if regex.match(reason):
            return Verdict_Drop(f"reason `{reason}` matches deny pattern `{pattern}`")
    if allow and not any(regex.match(reason) for _, regex in allow):
        return Verdict_Drop(f"reason `{reason}` is not in the allow list")
    return KEEP


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        global allow, deny
        try:
            parsed = json.loads(config) if config.strip() else None
        except ValueError as error:
            raise Err(f"invalid config: {error}")
        parsed = parsed or {}
        if not isinstance(parsed, dict):
            raise Err("invalid config: expected a map with `allow` and `deny`")
        unknown = sorted(set(parsed) - {"allow", "deny"})
        if unknown:
            raise Err(f"invalid config: unknown field `{unknown[0]}`, expected `allow` or `deny`")
        allow, deny = patterns(parsed, "allow"), patterns(parsed, "deny")
        host.log(LogLevel.DEBUG, f"allow {[p for p, _ in allow]}, deny {[p for p, _ in deny]}")

    def filter(self, events: int) -> list:
        if not allow and not deny:
            # Nothing to check: don't copy any reason out of the host.
            return [KEEP] * events
        # One host call per event, for the one field this filter reads.
        return [decide(batch.reason(index)) for index in range(events)]
