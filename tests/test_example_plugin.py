"""The tutorial (docs/tutorial/index.rst) run as a reader runs it: its example plugin in a fresh virtualenv.

The tutorial's commands and what they print live in ``docs/tutorial/output/*.txt``, transcripts the
page includes: a line ``$ command`` and then the command's output, up to the next ``$`` line. These
tests copy the checkout (the library and ``examples/``) to a temporary directory, run every transcript
there in the tutorial's order in one shell-like session (a fresh venv, ``pip install``, the
``event-sinks`` command on the embedded engine, ``django-admin`` with the example's settings) and
compare what each command prints with the transcript, timings, rates and byte counts aside.

The installs (``python -m venv``, ``pip install``) print nothing the page shows: only their exit
status is checked. pip uses its configuration and cache as usual.

After changing the example or the library's output, write the transcripts again from a real run::

    EVENT_SINKS_TUTORIAL_WRITE=1 pytest tests/test_example_plugin.py

then read the diff: it is what the tutorial now shows.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "docs" / "tutorial" / "output"
EXAMPLE = REPO / "examples" / "event-sinks-example"
#: The transcripts in the tutorial's order; each test runs one, in the session the ones before it left.
TRANSCRIPTS = ("install", "demo", "install-example", "dump", "rows", "dump-again", "migrate", "loaddata", "flags",
               "backfill", "delete", "edit", "publish")
#: What the copied checkout's path reads as in the transcripts.
CHECKOUT = "/path/to/event-sinks"
WRITE = os.environ.get("EVENT_SINKS_TUTORIAL_WRITE") == "1"
#: Commands whose output the tutorial does not show (it varies with pip's cache and index).
UNCHECKED = re.compile(r"^(python -m venv|pip install) ")
INSTALL_TIMEOUT = 600
COMMAND_TIMEOUT = 120


def normalized(text: str) -> str:
    """Output with what varies from run to run replaced: timings, rates, byte counts.

    dump_sink prints a progress line when it is done and, off a terminal, every 5 seconds before:
    those depend on the machine's speed, so only the last (``N/N keys``) is compared.
    """
    text = "\n".join(line for line in text.split("\n") if not _early_progress(line))
    text = re.sub(r"\b\d[\d,]*(\.\d+)? rows/s\b", "N rows/s", text)
    text = re.sub(r"\b\d+ bytes\b", "N bytes", text)
    text = re.sub(r"\bin \d+(\.\d+)?s\b", "in Ns", text)
    return text


def _early_progress(line: str) -> bool:
    match = re.match(r"(\d+)/(\d+) keys, \d+ rows, .* - last: ", line)
    return match is not None and match[1] != match[2]


def parse(path: Path) -> list[tuple[str, str]]:
    """A transcript's (command, output) pairs."""
    pairs: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("$ "):
            pairs.append((line[2:], []))
        elif not pairs:
            raise AssertionError(f"{path}: the first line must be a command ('$ ...'), found {line!r}")
        else:
            pairs[-1][1].append(line)
    if not pairs:
        raise AssertionError(f"{path}: no command in it")
    return [(command, "\n".join(output)) for command, output in pairs]


class Session:
    """A shell session of the tutorial: a working directory and an environment that commands change."""

    def __init__(self, root: Path):
        self.root = root
        self.cwd = root
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("DJANGO_", "EVENT_SINKS", "PYTHON", "VIRTUAL_ENV"))}
        # `python` is the interpreter running the tests until the tutorial activates its venv.
        self.env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), self.env.get("PATH", "")])
        self.env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr interleaved as a terminal shows them
        self.env["COLUMNS"] = "200"
        self.done: list[str] = []

    def run(self, command: str) -> tuple[int, str]:
        """Run one command of a transcript; ``cd``, ``export`` and ``. venv/bin/activate`` change the session."""
        words = shlex.split(command)
        if words[0] == "cd" and len(words) == 2:
            target = (self.cwd / words[1]).resolve()
            if not target.is_dir():
                return 1, f"cd: {words[1]}: no such directory"
            self.cwd = target
            return 0, ""
        if words[0] == "export" and len(words) == 2 and "=" in words[1]:
            name, _, value = words[1].partition("=")
            self.env[name] = value
            return 0, ""
        if words[0] == "." and len(words) == 2 and words[1].endswith("/bin/activate"):
            venv = (self.cwd / words[1]).parent.parent
            if not (venv / "bin" / "python").exists():
                return 1, f".: {words[1]}: no virtualenv there"
            self.env["VIRTUAL_ENV"] = str(venv)
            self.env["PATH"] = os.pathsep.join([str(venv / "bin"), self.env["PATH"]])
            return 0, ""
        timeout = INSTALL_TIMEOUT if UNCHECKED.match(command) else COMMAND_TIMEOUT
        try:
            done = subprocess.run(["bash", "-c", command], cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            return -1, f"timed out after {timeout}s:\n{exc.output or ''}"
        return done.returncode, done.stdout.replace(str(self.root), CHECKOUT).rstrip("\n")

    def transcript(self, name: str) -> None:
        """Run transcript ``name``; fail on the first command that fails or prints something else."""
        path = OUTPUT / f"{name}.txt"
        written = []
        for command, expected in parse(path):
            status, output = self.run(command)
            unchecked = bool(UNCHECKED.match(command))
            if status != 0:
                pytest.fail(f"{path.name}: `{command}` exited with {status} in {self.cwd}:\n{output}")
            written.append(f"$ {command}" + ("" if unchecked or not output else f"\n{output}"))
            if not WRITE and not unchecked:
                assert normalized(output) == normalized(expected), (
                    f"{path.name}: `{command}` printed something else than the tutorial shows "
                    f"(EVENT_SINKS_TUTORIAL_WRITE=1 writes it; see the docstring)"
                )
        if WRITE:
            path.write_text("\n".join(written) + "\n", encoding="utf-8")
        self.done.append(name)


def _copy_checkout(target: Path) -> Path:
    """The files a reader's checkout holds that the tutorial uses: the library and the example."""
    target.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "event_sinks_data", "*.sqlite3", ".venv")
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        shutil.copy2(REPO / name, target / name)
    shutil.copytree(REPO / "event_sinks", target / "event_sinks", ignore=ignore)

    def example_ignore(folder: str, names: list[str]) -> set[str]:
        # a reader's run of the tutorial in the checkout leaves its copy of the demo course there
        return set(ignore(folder, names)) | ({"course"} if Path(folder) == EXAMPLE else set())

    shutil.copytree(EXAMPLE, target / "examples" / EXAMPLE.name, ignore=example_ignore)
    return target


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """One session for the module: the venv is made once, and each transcript continues the last."""
    if shutil.which("bash") is None:
        pytest.fail("these tests run the tutorial's commands with bash, which is not on PATH")
    root = _copy_checkout(tmp_path_factory.mktemp("tutorial") / "event-sinks")
    return Session(root)


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_tutorial_transcript(session, name):
    for before in TRANSCRIPTS[:TRANSCRIPTS.index(name)]:  # a test selected alone needs the steps before it
        if before not in session.done:
            session.transcript(before)
    session.transcript(name)


def test_every_transcript_is_run_and_included():
    """No transcript is left out of the tests, and the page includes each one."""
    on_disk = {p.stem for p in OUTPUT.glob("*.txt")}
    assert on_disk == set(TRANSCRIPTS)
    page = (REPO / "docs" / "tutorial" / "index.rst").read_text(encoding="utf-8")
    missing = [name for name in TRANSCRIPTS if f"output/{name}.txt" not in page]
    assert not missing, f"docs/tutorial/index.rst does not include {missing}"
    # code and outputs are included from files, never written in the page
    written = [line for line in page.splitlines()
               if re.match(r"\s*\.\. (code-block|code|sourcecode)::", line)
               or (line.rstrip().endswith("::") and not line.lstrip().startswith(".."))]
    assert not written, f"docs/tutorial/index.rst has literal blocks of its own: {written}"


def test_only_what_varies_is_normalized():
    """Timings, rates, byte counts and the progress lines before the last differ; nothing else may."""
    first = ("1/2 keys, 1 rows, 12 rows/s - last: 1\n2/2 keys, 2 rows, 1,234 rows/s - last: 2\n"
             "s: 2 dumped, 0 deleted, 0 skipped, 0 failed; 2 rows, 381 bytes in 0.03s (58 rows/s)")
    second = ("2/2 keys, 2 rows, 44 rows/s - last: 2\n"
              "s: 2 dumped, 0 deleted, 0 skipped, 0 failed; 2 rows, 0 bytes in 12.50s (7 rows/s)")
    assert normalized(first) == normalized(second)
    assert normalized("2/2 keys, 3 rows, 4 rows/s - last: 2") != normalized("2/2 keys, 2 rows, 4 rows/s - last: 2")
    assert normalized("1 dumped, 0 skipped") != normalized("0 dumped, 1 skipped")
