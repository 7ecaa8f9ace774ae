"""Results as HTML: the one table formatter that the HTML report and the notebook
display (``_repr_html_`` of :class:`~spillover.estimate.Effects`, clusterings,
assignments, design comparisons and plans) share. Nothing here computes statistics.
"""

from __future__ import annotations

import html
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["cell_html", "mapping_html", "notebook_html", "table_html"]


def cell_html(value: Any) -> str:
    """A value as a table cell shows it: four significant digits, thousands separated,
    a dash for missing, text escaped.

    Examples
    --------
    >>> cell_html(0.123456), cell_html(12345678.9), cell_html(float("nan")), cell_html("a<b")
    ('0.1235', '12,345,679', '&ndash;', 'a&lt;b')
    """
    if value is None:
        return "&ndash;"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else ""
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return "&ndash;"
        return f"{value:,.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    return html.escape(str(value))


def table_html(frame: pd.DataFrame) -> str:
    """``frame`` as a plain HTML table (no index), cells by :func:`cell_html`.

    Examples
    --------
    >>> table_html(pd.DataFrame({"n": [1200]}))
    '<table><thead><tr><th>n</th></tr></thead><tbody><tr><td>1,200</td></tr></tbody></table>'
    """
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{cell_html(v)}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))  # display only: tables of a few rows
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def notebook_html(title: str, frame: pd.DataFrame, notes: Iterable[str] = ()) -> str:
    """A titled table and its notes, as a notebook shows a result object.

    Examples
    --------
    >>> page = notebook_html("Effects", pd.DataFrame({"estimate": [0.2]}), ["a note"])
    >>> page.startswith("<div") and "<li>a note</li>" in page
    True
    """
    items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
    notes_html = f"<ul style='margin:.3rem 0;color:#555'>{items}</ul>" if items else ""
    return (f"<div><div style='font-weight:bold;margin-bottom:.3rem'>{html.escape(title)}</div>"
            f"{table_html(frame)}{notes_html}</div>")


def mapping_html(title: str, values: Mapping[str, Any], notes: Iterable[str] = ()) -> str:
    """A ``name -> value`` summary (a result's ``to_dict()``) as a two-column table.

    Examples
    --------
    >>> "<td>n_units</td><td>10</td>" in mapping_html("Assignment", {"n_units": 10})
    True
    """
    scalars = {k: v for k, v in values.items() if not isinstance(v, (dict, list, tuple, np.ndarray))}
    return notebook_html(title, pd.DataFrame({"": list(scalars), "value": list(scalars.values())}), notes)
