"""Writing the small TOML files we generate (agent.toml): tomllib reads, nothing writes."""

from __future__ import annotations

import json
from typing import Any


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # JSON string escapes are valid TOML basic strings


def render_config(sections: dict[str, dict[str, Any]], header: str = "") -> str:
    """TOML text for ``sections`` (what ``device-install`` writes)."""
    lines = [f"# {line}" for line in header.splitlines()]
    for section, values in sections.items():
        lines += ["", f"[{section}]"]
        lines += [f"{key} = {toml_value(v)}" for key, v in values.items() if v is not None]
    return "\n".join(lines).lstrip("\n") + "\n"
