"""The generated reference: directives that read the code, so the pages cannot drift from it.

``.. event-sinks-settings::``
    every ``EVENT_SINKS`` key from :class:`event_sinks.conf.settings.Settings` (default and documentation)
``.. event-sinks-commands::`` (or ``.. event-sinks-command:: NAME`` for one)
    every management command: its help and every option of its argparse parser
``.. event-sinks-cli::``
    the ``event-sinks`` command line: its usage text and the command aliases
``.. event-sinks-argparse:: MODULE:FUNCTION``
    every option of the parser a function returns (``event_sinks.aspects.__main__:parser``)
``.. event-sinks-schema::``
    every table and view with its columns: the built-in sinks, the ledger, the runs table, Aspects' tables
``.. event-sinks-api::``
    autodoc of every public name of ``event_sinks`` (its ``__all__``)
``.. event-sinks-demo-outline::``
    the bundled demo course as a tree, read from its OLX export
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pprint
from collections.abc import Iterable

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

#: Options every Django management command has; listed once, not per command.
DJANGO_COMMON = {"help", "version", "verbosity", "settings", "pythonpath", "traceback", "no_color", "force_color",
                 "skip_checks"}


def _cell(text: str) -> str:
    """Text for one cell of a list-table (one line, inline markup kept literal where it would break)."""
    return " ".join(str(text).split()) or "\\ "


def _literal(text: str) -> str:
    """An inline literal that holds any text (backquotes doubled are not needed: none of ours hold any)."""
    text = " ".join(str(text).split())
    return f"``{text}``" if text else "\\ "


class _Rst(SphinxDirective):
    """A directive whose output is reStructuredText built from the code, parsed in place."""

    def lines(self) -> Iterable[str]:  # pragma: no cover - each directive defines it
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        text = StringList(list(self.lines()), source=f"<{self.name}>")
        container = nodes.section() if self.allow_sections else nodes.container()
        container.document = self.state.document
        if self.allow_sections:
            from sphinx.util.nodes import nested_parse_with_titles

            nested_parse_with_titles(self.state, text, container)
        else:
            self.state.nested_parse(text, self.content_offset, container)
        return list(container.children)

    allow_sections = False


# -- settings ---------------------------------------------------------------------------------------


class SettingsDirective(_Rst):
    """Every key of ``EVENT_SINKS``: its default and its documentation, from the declaration."""

    def lines(self) -> Iterable[str]:
        from event_sinks.conf.settings import DEFAULTS, FIELDS

        for key, field in FIELDS.items():
            default = pprint.pformat(DEFAULTS[key], width=80, sort_dicts=False)
            yield f".. _setting-{key.lower().replace('_', '-')}:"
            yield ""
            yield f"``{key}``"
            yield f"    Default: ``{' '.join(default.split())}``"
            yield ""
            for line in field.metadata["doc"].splitlines():
                yield "    " + line
            yield ""


# -- commands ---------------------------------------------------------------------------------------


def _option_rows(parser: argparse.ArgumentParser, skip: set[str]) -> Iterable[tuple[str, str, str]]:
    """(option, value, help) of every action of ``parser`` but those whose ``dest`` is in ``skip``."""
    formatter = parser._get_formatter()  # noqa: SLF001 - argparse's own expansion of %(default)s
    for action in parser._actions:  # noqa: SLF001 - the parser's declared options
        if action.dest in skip or action.help == argparse.SUPPRESS:
            continue
        metavar = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
        many = " ..." if action.nargs in ("*", "+") else ""
        if not action.option_strings:  # a positional argument: its name is its value
            optional = " (optional)" if action.nargs in ("?", "*") else ""
            yield metavar + many, optional.strip(" ()"), formatter._expand_help(action) if action.help else ""  # noqa: SLF001
            continue
        name = ", ".join(action.option_strings)
        if action.choices is not None:
            value = " | ".join(str(c) for c in action.choices) + many
        elif action.nargs == 0:
            value = ""
        else:
            value = metavar + many
        expanded = formatter._expand_help(action) if action.help else ""  # noqa: SLF001
        yield name, value, expanded


def _options_table(parser: argparse.ArgumentParser, skip: set[str]) -> Iterable[str]:
    rows = list(_option_rows(parser, skip))
    if not rows:
        yield "No options of its own."
        yield ""
        return
    yield ".. list-table::"
    yield "   :header-rows: 1"
    yield "   :widths: 25 20 55"
    yield ""
    yield "   * - option"
    yield "     - value"
    yield "     - what it does"
    for name, value, text in rows:
        yield f"   * - {_literal(name)}"
        yield f"     - {_literal(value)}"
        yield f"     - {_cell(text)}"
    yield ""


class CommandDirective(_Rst):
    """One management command of ``event_sinks``: its help line, docstring and options."""

    required_arguments = 1
    allow_sections = True

    def lines(self) -> Iterable[str]:
        return self.command_lines(self.arguments[0])

    @staticmethod
    def command_lines(name: str) -> Iterable[str]:
        """The section of the command ``name``."""
        from django.core.management import load_command_class

        command = load_command_class("event_sinks", name)
        parser = command.create_parser("manage.py", name)
        yield name
        yield "-" * len(name)
        yield ""
        yield f"``manage.py {name}`` (or ``event-sinks {name}``): {command.help}"
        yield ""
        yield "::"
        yield ""
        for line in parser.format_usage().strip().splitlines():
            yield "    " + line
        yield ""
        doc = inspect.getmodule(type(command)).__doc__ or ""
        body = inspect.cleandoc(doc).partition("\n")[2].strip()
        if body:
            yield from body.splitlines()
            yield ""
        yield from _options_table(parser, DJANGO_COMMON)


class CommandsDirective(_Rst):
    """Every management command of ``event_sinks`` (the modules of ``event_sinks/management/commands``)."""

    allow_sections = True

    def lines(self) -> Iterable[str]:
        from pathlib import Path

        from django.core.management import find_commands

        import event_sinks.management

        for name in sorted(find_commands(str(Path(event_sinks.management.__file__).parent))):
            yield from CommandDirective.command_lines(name)


class ArgparseDirective(_Rst):
    """Every option of the parser that ``module:function`` returns."""

    required_arguments = 1

    def lines(self) -> Iterable[str]:
        module, _, function = self.arguments[0].partition(":")
        parser = getattr(importlib.import_module(module), function)()
        yield "::"
        yield ""
        for line in parser.format_usage().strip().splitlines():
            yield "    " + line
        yield ""
        yield from _options_table(parser, {"help"})


class CliDirective(_Rst):
    """The ``event-sinks`` command line's usage (it dispatches to the management commands) and its aliases."""

    def lines(self) -> Iterable[str]:
        from event_sinks import cli

        yield "::"
        yield ""
        for line in cli.USAGE.rstrip().splitlines():
            yield ("    " + line).rstrip()
        yield ""
        yield "Short names: " + ", ".join(f"``{short}`` = ``{full}``" for short, full in cli.ALIASES.items()) + "."
        yield ""


# -- schema -----------------------------------------------------------------------------------------


def _view_sql(view) -> str:
    """A view's statement as the library renders it for the default database (``DATABASE``: event_sinks)."""
    from event_sinks.clickhouse.ddl import Renderer

    return Renderer("event_sinks").create_view(view)


def _heading(title: str, comment: str) -> Iterable[str]:
    """A table's or view's section title and its comment, as a paragraph."""
    yield title
    yield "~" * len(title)
    yield ""
    if comment:
        yield comment + "."
        yield ""


def _table_lines(table, title: str) -> Iterable[str]:
    yield from _heading(title, table.comment)
    engine = table.engine + (f"({', '.join(table.engine_args)})" if table.engine_args else "")
    yield f"Table, engine ``{engine}`` (``Replicated*`` on a cluster), ``ORDER BY ({', '.join(table.order_by)})``."
    yield ""
    yield ".. list-table::"
    yield "   :header-rows: 1"
    yield "   :widths: 25 30 45"
    yield ""
    yield "   * - column"
    yield "     - type"
    yield "     - comment"
    for column in table.columns:
        yield f"   * - ``{column.name}``"
        yield f"     - ``{column.type}``"
        yield f"     - {_cell(column.comment)}"
    yield ""


def _view_lines(view, title: str, columns: tuple[str, ...] | None) -> Iterable[str]:
    yield from _heading(title, view.comment)
    if columns:
        yield "View; columns: " + ", ".join(f"``{c}``" for c in columns) + "."
        yield ""
    yield ".. code-block:: sql"
    yield ""
    for line in _view_sql(view).splitlines():
        yield "    " + line
    yield ""


def _schema_lines(schema, heading: str, intro: str) -> Iterable[str]:
    yield heading
    yield "-" * len(heading)
    yield ""
    if intro:
        yield intro
        yield ""
    tables = {t.name: t for t in schema.tables}
    for table in schema.tables:
        yield from _table_lines(table, f"``{table.name}``")
    for view in schema.views:
        # a current-rows view lists a table's columns: name them rather than repeat the table
        source = next((t for t in tables.values() if f".`{t.name}` FINAL" in view.select), None)
        selected = view.select.split("FROM", 1)[0]
        listed = tuple(c for c in source.column_names if f"`{c}`" in selected) if source else None
        yield from _view_lines(view, f"``{view.name}`` (view)", listed)


class SchemaDirective(_Rst):
    """Every table and view: the built-in sinks', the ledger's, the runs table, Aspects' tables."""

    allow_sections = True

    def lines(self) -> Iterable[str]:
        from event_sinks.aspects.ddl import TABLES
        from event_sinks.core.visibility import ledger_schema
        from event_sinks.dumping.backfills import runs_schema
        from event_sinks.registry import all_sinks, registry

        yield from _schema_lines(ledger_schema(), "The ledger", "Shared by every sink: one row per complete dump.")
        yield from _schema_lines(runs_schema(), "Backfill runs", "Written by ``dump_sink`` runs, read by ``--resume``.")
        for sink in all_sinks():
            entry = registry.entry(sink.name)
            if not entry.distribution.startswith("openedx-event-sinks"):
                continue  # a plugin installed beside the package: not ours to document
            doc = inspect.getdoc(type(sink)) or ""
            yield from _schema_lines(sink.schema(), f"Sink ``{sink.name}``", doc.split("\n\n", 1)[0])
        yield "Aspects' tables"
        yield "---------------"
        yield ""
        yield ("Created in ``EVENT_SINKS['ASPECTS']['DATABASE']`` only when the Aspects compatibility is on and they "
               "are absent (:doc:`/aspects`); their shape is tutor-contrib-aspects'.")
        yield ""
        for table in TABLES:
            title = f"``{table.name}`` (Aspects)"
            yield title
            yield "~" * len(title)
            yield ""
            yield (f"``PRIMARY KEY ({', '.join(table.primary_key)})``, "
                   f"``ORDER BY ({', '.join(table.order_by)})``.")
            yield ""
            yield ".. list-table::"
            yield "   :header-rows: 1"
            yield ""
            yield "   * - column"
            yield "     - type"
            yield "     - default"
            for column in table.columns:
                yield f"   * - ``{column.name}``"
                yield f"     - ``{column.type}``"
                yield f"     - {_literal(column.default)}"
            yield ""


# -- API --------------------------------------------------------------------------------------------


class ApiDirective(_Rst):
    """autodoc of every name in ``event_sinks.__all__``, grouped as the package's exports are."""

    allow_sections = True

    def lines(self) -> Iterable[str]:
        import event_sinks

        groups = {"Writing sinks": [], "Using sinks": [], "Errors": []}
        for name in sorted(event_sinks.__all__, key=str.lower):
            value = getattr(event_sinks, name)
            if inspect.isclass(value) and issubclass(value, Exception):
                groups["Errors"].append(name)
            elif event_sinks._EXPORTS[name] in ("event_sinks.core", "event_sinks.modelsinks",  # noqa: SLF001
                                                "event_sinks.sinks.course_sink", "event_sinks.courses"):
                groups["Writing sinks"].append(name)
            else:
                groups["Using sinks"].append(name)
        for title, names in groups.items():
            yield title
            yield "-" * len(title)
            yield ""
            for name in names:
                value = getattr(event_sinks, name)
                if inspect.isclass(value):
                    yield f".. autoclass:: event_sinks.{name}"
                    if not issubclass(value, Exception):
                        yield "   :members:"
                elif inspect.isfunction(value):
                    yield f".. autofunction:: event_sinks.{name}"
                else:
                    yield f".. py:data:: event_sinks.{name}"
                    yield ""
                    yield f"   {(inspect.getdoc(type(value)) or '').splitlines()[0]}"
                yield ""


# -- the demo course --------------------------------------------------------------------------------


class DemoOutlineDirective(SphinxDirective):
    """The demo course's tree: block type, title, url name, read from the bundled OLX export."""

    def run(self) -> list[nodes.Node]:
        from event_sinks.cli import DEMO_COURSE
        from event_sinks.courses.olx.reader import read_olx

        course = read_olx(DEMO_COURSE)
        lines = []
        for block in course.blocks():
            if not block.detached:  # static tabs and about pages sit outside the tree
                title = block.display_name or "(no display name)"
                lines.append("    " * block.depth + f"{title}  [{block.block_type} {block.block_id}]")
        lines.append(f"key: {course.course_key}")
        text = "\n".join(lines)
        return [nodes.literal_block(text, text)]


def setup(app: Sphinx) -> dict[str, object]:
    """Register the directives (Sphinx calls it for ``extensions = [..., "event_sinks_docs"]``)."""
    app.add_directive("event-sinks-settings", SettingsDirective)
    app.add_directive("event-sinks-command", CommandDirective)
    app.add_directive("event-sinks-commands", CommandsDirective)
    app.add_directive("event-sinks-argparse", ArgparseDirective)
    app.add_directive("event-sinks-cli", CliDirective)
    app.add_directive("event-sinks-schema", SchemaDirective)
    app.add_directive("event-sinks-api", ApiDirective)
    app.add_directive("event-sinks-demo-outline", DemoOutlineDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


__all__ = ["setup"]
