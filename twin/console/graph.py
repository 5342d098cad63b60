"""The state machine as a graph: nodes and edges read from the ASL, laid out later by dagre in the page.

The graph is built here (not in JavaScript) so the API returns it and the tests can check it: every
state is a node, a Map and its item processor's states share a box, and every way out of a state is an
edge of one kind: ``next``, ``choice``, ``default``, ``catch`` (labelled with its errors) or ``iterate``.
"""

from __future__ import annotations

from typing import Any

START = "__start__"
END = "__end__"


def build_graph(definition: dict[str, Any]) -> dict[str, Any]:
    """Nodes and edges of an ASL definition (JSONPath), Map item processors included.

    Parameters
    ----------
    definition
        The parsed ASL document.

    Returns
    -------
    dict
        ``{"nodes": [{"id", "type", "comment", "parent", "retries"}],
        "edges": [{"source", "target", "kind", "label"}]}``; the synthetic ``__start__`` and ``__end__``
        nodes mark where runs begin and end, and each Map gets an ``Iterations`` box (its ``parent``).
    """
    nodes: list[dict[str, Any]] = [{"id": START, "type": "Start", "comment": "", "parent": None}]
    edges: list[dict[str, Any]] = [_edge(START, definition["StartAt"], "next")]
    _add_states(definition["States"], None, nodes, edges)
    nodes.append({"id": END, "type": "End", "comment": "", "parent": None})
    return {"nodes": nodes, "edges": edges}


def _add_states(
    states: dict[str, Any], parent: str | None, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]
) -> None:
    for name, state in states.items():
        processor = state.get("ItemProcessor") or state.get("Iterator")
        # dagre cannot route edges to a cluster, so a Map is a plain node that shares a cluster box
        # with its item processor's states, and an `iterate` edge leads into them.
        box = cluster_id(name) if processor else parent
        if processor:
            nodes.append({"id": box, "type": "Iterations", "comment": "", "parent": parent, "retries": False})
        nodes.append(
            {
                "id": name,
                "type": state["Type"],
                "comment": state.get("Comment", ""),
                "parent": box,
                "retries": bool(state.get("Retry")),
            }
        )
        edges.extend(_exits(name, state, parent))
        if processor:
            edges.append(_edge(name, processor["StartAt"], "iterate", "each item"))
            _add_states(processor["States"], box, nodes, edges)


def cluster_id(map_state: str) -> str:
    """The id of the box drawn around a Map state and the states of its iterations."""
    return f"{map_state} · iterations"


def _exits(name: str, state: dict[str, Any], parent: str | None) -> list[dict[str, Any]]:
    exits = []
    if "Next" in state:
        exits.append(_edge(name, state["Next"], "next"))
    for choice in state.get("Choices", []):
        exits.append(_edge(name, choice["Next"], "choice", _choice_label(choice)))
    if "Default" in state:
        exits.append(_edge(name, state["Default"], "default", "default"))
    for catcher in state.get("Catch", []):
        exits.append(_edge(name, catcher["Next"], "catch", ", ".join(catcher["ErrorEquals"])))
    ends = state.get("End") or state["Type"] in ("Succeed", "Fail")
    if ends and parent is None:
        exits.append(_edge(name, END, "next"))
    return exits


def _choice_label(choice: dict[str, Any]) -> str:
    """A short label for a Choice rule: the comparison that decides it (``status.S == SENT``)."""
    rules = choice.get("And") or choice.get("Or") or [choice]
    for rule in rules:
        for key, value in rule.items():
            if key.startswith("String") or key.startswith("Numeric") or key.startswith("Boolean"):
                return f"{rule['Variable'].removeprefix('$.')} {key} {value}"
    return "choice"


def _edge(source: str, target: str, kind: str, label: str = "") -> dict[str, Any]:
    return {"source": source, "target": target, "kind": kind, "label": label}
