"""mkdocs hook: pages that list the command line's options and the registries are
generated from the code (the argparse parser and the name registries), never typed twice."""

from __future__ import annotations

import argparse
import re


def _cli_reference() -> str:
    from spillover.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parts = []
    for name, sub in action.choices.items():
        sub.prog = f"spillover {name}"
        parts.append(f"## spillover {name}\n\n```text\n{sub.format_help()}```\n")
    return "\n".join(parts)


def _registries() -> str:
    from spillover.clustering import METHOD_OPTIONS
    from spillover.design import DESIGN_OPTIONS
    from spillover.estimate import METHODS
    from spillover.exposure import MAPPINGS
    from spillover.variance import DEFAULT_VCOV, VCOV_TYPES

    def options(table: dict) -> str:
        rows = [f"| `{name}` | {', '.join(f'`{k}={v!r}`' for k, v in opts.items()) or '-'} |"
                for name, opts in table.items()]
        return "| name | options (defaults) |\n|---|---|\n" + "\n".join(rows)

    return "\n\n".join([
        "### Clustering methods (`cluster(graph, method, **options)`)\n\n" + options(METHOD_OPTIONS),
        "### Designs (`design_from_spec({'design': name, ...})`, `spillover assign --design`)\n\n"
        + options(DESIGN_OPTIONS),
        "### Exposure mappings\n\n" + ", ".join(f"`{name}`" for name in MAPPINGS),
        "### Estimators (`estimate(..., method)`)\n\n" + ", ".join(f"`{name}`" for name in METHODS),
        "### Cluster-robust variances\n\n" + ", ".join(f"`{name}`" for name in VCOV_TYPES)
        + f" (default `{DEFAULT_VCOV}`)",
    ])


def _validity() -> str:
    from spillover.estimate import validity_table

    table = validity_table()
    rows = [f"| {r.design} | {r.mapping} | `{r.estimator}` | **{r.status}** | {f'`{r.instead}`' if r.instead else ''} | "
            f"{r.why} |" for r in table.itertuples()]
    return ("| design randomized | mapping | estimator | verdict | instead | why |\n|---|---|---|---|---|---|\n"
            + "\n".join(rows))


def on_pre_build(config) -> None:
    """Files the pages include, written from the code: the example experiment file."""
    from pathlib import Path

    from spillover.experiment import EXAMPLE

    folder = Path(config["docs_dir"]) / "_generated"
    folder.mkdir(exist_ok=True)
    (folder / "experiment.toml").write_text(EXAMPLE, encoding="utf-8")


def on_page_markdown(markdown: str, page, config, files) -> str:
    markdown = markdown.replace("<!-- cli-reference -->", _cli_reference()) if "cli-reference" in markdown else markdown
    markdown = re.sub(r"<!-- validity -->", lambda _: _validity(), markdown)
    return re.sub(r"<!-- registries -->", lambda _: _registries(), markdown)


_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):<code>~?([^<]*)</code>")


def on_page_content(html: str, page, config, files) -> str:
    """Docstrings name code with Sphinx roles (``:class:`~spillover.design.Assignment```);
    mkdocstrings renders them as raw text, so the rendered page shows the code name alone
    (the last part after ``~``, as Sphinx would)."""
    return _ROLE.sub(lambda m: f"<code>{m.group(1).rsplit('.', 1)[-1] if m.group(0).count('~') else m.group(1)}</code>",
                     html)
