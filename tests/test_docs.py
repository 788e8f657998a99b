"""The shell examples of README.md ("Using it") and docs/TESTING.md, run with bash against a live
`trigger-api serve`, with every answer compared to the one the docs show.

What the docs promise, and how this reads it:

- Every ```sh block is run, in document order, in one bash session (variables carry over), with
  the environment a reader has after pasting the keys `serve` printed. A block whose first line
  starts with `# not run by tests/test_docs.py` is skipped.
- Every command must exit with status 0.
- `# …` comment lines right under a command are that command's output: JSON when they start
  with `{` or `[`, otherwise lines of text.
- A ```http or ```text block right after a ```sh block is the whole block's output: an HTTP
  response as `curl -si` prints it (status line, the headers shown, the JSON body), or lines that
  must each appear in the output.
- `…` stands for a generated value. In JSON: a bare `…` is any value, a bare `…` member of an
  object allows more keys, a trailing `…` in a list allows more items, and `…` inside a string
  is any text. Elsewhere it is any text. Otherwise objects must have exactly the keys shown.
- The docs use the default address http://127.0.0.1:8000; the test substitutes its own server's,
  and runs `uv run X` as the virtualenv's `X` (no sync, no network).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DOCS_URL = "http://127.0.0.1:8000"
SKIP_MARK = "# not run by tests/test_docs.py"
ANY = "…"
STEP_MARK = "@@docs-step"
EXPORT = re.compile(r"^export (\w+)='([^']*)'$", re.MULTILINE)
FENCE = re.compile(r"^```(\S*)\s*$")
# Settings a reader's shell might hold that would change what the docs' commands do.
FOREIGN_SETTINGS = re.compile(r"^(API_|TENANT_|WORKER_|TRIGGER_|POLL_INTERVAL$)")
PREAMBLE = """exec 2>&1
uv() { if [ "$1" = run ]; then shift; "$@"; else command uv "$@"; fi; }
"""


@dataclass
class Command:
    text: str
    line: int
    expected: list[str] = field(default_factory=list)  # the `# …` lines under it


@dataclass
class Block:
    doc: str
    line: int
    commands: list[Command]
    runnable: bool
    answer: tuple[str, str] | None = None  # (http | text, body) of the block after it


@dataclass
class Fenced:
    line: int
    info: str
    body: str


# -- reading the docs ---------------------------------------------------------------------------


def fenced_blocks(markdown: str, first_line: int = 1) -> list[Fenced]:
    blocks: list[Fenced] = []
    current: Fenced | None = None
    lines: list[str] = []
    for number, line in enumerate(markdown.splitlines(), first_line):
        match = FENCE.match(line)
        if current is None and match:
            current, lines = Fenced(number + 1, match.group(1), ""), []
        elif current is not None and line.strip() == "```":
            current.body = "\n".join(lines)
            blocks.append(current)
            current = None
        elif current is not None:
            lines.append(line)
    return blocks


def commands_of(body: str, first_line: int) -> list[Command]:
    commands: list[Command] = []
    pending: Command | None = None  # a command continued with a trailing backslash
    after_command = False
    for number, line in enumerate(body.splitlines(), first_line):
        if pending is not None:
            pending.text += "\n" + line
            if not line.endswith("\\"):
                commands.append(pending)
                pending, after_command = None, True
            continue
        stripped = line.strip()
        if not stripped:
            after_command = False
        elif stripped.startswith("#"):
            if after_command:
                commands[-1].expected.append(stripped.removeprefix("#").strip())
        elif line.endswith("\\"):
            pending = Command(line, number)
        else:
            commands.append(Command(line, number))
            after_command = True
    assert pending is None, f"line {first_line}: a command ends with a backslash"
    return commands


def doc_blocks(doc: str, markdown: str, first_line: int = 1) -> list[Block]:
    blocks: list[Block] = []
    previous: Fenced | None = None
    for fenced in fenced_blocks(markdown, first_line):
        if fenced.info == "sh":
            runnable = not fenced.body.lstrip().startswith(SKIP_MARK)
            blocks.append(Block(doc, fenced.line, commands_of(fenced.body, fenced.line), runnable))
        elif fenced.info in ("http", "text") and previous is not None and previous.info == "sh":
            blocks[-1].answer = (fenced.info, fenced.body)
        previous = fenced
    return blocks


def read_doc(name: str, url: str) -> str:
    return (ROOT / name).read_text().replace(DOCS_URL, url)


def readme_blocks(url: str) -> list[Block]:
    text = read_doc("README.md", url)
    start = text.index("\n## Using it\n") + 1
    end = text.index("\n## ", start)
    return doc_blocks("README.md", text[start:end], text.count("\n", 0, start) + 1)


def walkthrough_blocks(url: str) -> list[Block]:
    return doc_blocks("docs/TESTING.md", read_doc("docs/TESTING.md", url))


# -- comparing answers --------------------------------------------------------------------------


def expected_json(text: str) -> Any:
    """JSON as the docs write it, with each bare `…` turned into a placeholder string."""
    out: list[str] = []
    nesting: list[str] = []
    last = ""  # the last significant character outside strings
    in_string = escaped = False
    for char in text:
        out.append(char)
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string, last = False, char
            continue
        if char == ANY:
            member = bool(nesting) and nesting[-1] == "{" and last in ("{", ",")
            out[-1] = f'"{ANY}": "{ANY}"' if member else f'"{ANY}"'
            char = '"'
        elif char == '"':
            in_string = True
        elif char in "{[":
            nesting.append(char)
        elif char in "}]":
            nesting.pop()
        if not char.isspace():
            last = char
    return json.loads("".join(out))


def text_pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in expected.split(ANY)), re.DOTALL)


def json_mismatches(expected: Any, actual: Any, path: str = "$") -> list[str]:
    if expected == ANY:
        return []
    if isinstance(expected, str) and ANY in expected:
        if isinstance(actual, str) and text_pattern(expected).fullmatch(actual):
            return []
    elif isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        keys = set(expected) - {ANY}
        problems = [f"{path}: missing {key!r}" for key in sorted(keys - set(actual))]
        if ANY not in expected:
            problems += [f"{path}: unexpected {key!r}" for key in sorted(set(actual) - keys)]
        for key in sorted(keys & set(actual)):
            problems += json_mismatches(expected[key], actual[key], f"{path}.{key}")
        return problems
    elif isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {actual!r}"]
        open_ended = bool(expected) and expected[-1] == ANY
        items = expected[:-1] if open_ended else expected
        if len(actual) < len(items) or (not open_ended and len(actual) != len(items)):
            return [f"{path}: expected {len(items)} items, got {len(actual)}: {actual!r}"]
        problems = []
        for index, (want, got) in enumerate(zip(items, actual, strict=False)):
            problems += json_mismatches(want, got, f"{path}[{index}]")
        return problems
    elif expected == actual and type(expected) is type(actual):
        return []
    return [f"{path}: expected {expected!r}, got {actual!r}"]


def body_mismatches(expected: str, actual: str) -> list[str]:
    if not expected.strip():
        return [] if not actual.strip() else [f"expected no body, got {actual!r}"]
    try:
        value = json.loads(actual)
    except ValueError:
        return [f"expected JSON, got {actual!r}"]
    return json_mismatches(expected_json(expected), value)


def text_mismatches(expected: str, actual: str) -> list[str]:
    lines = [line.rstrip("\r") for line in actual.splitlines()]
    return [
        f"no line matches {want!r}"
        for want in expected.splitlines()
        if want.strip() and not any(text_pattern(want).fullmatch(line) for line in lines)
    ]


def http_mismatches(expected: str, actual: str) -> list[str]:
    want_head, _, want_body = expected.partition("\n\n")
    head, _, body = actual.replace("\r\n", "\n").lstrip("\n").partition("\n\n")
    want_status, *want_headers = want_head.strip("\n").splitlines()
    status, *header_lines = head.splitlines() or [""]
    problems = [] if status == want_status else [f"status {status!r}, expected {want_status!r}"]
    headers = [line.partition(":")[::2] for line in header_lines]
    for want in want_headers:
        name, _, value = want.partition(":")
        if not any(
            got_name.lower() == name.lower() and text_pattern(value.strip()).fullmatch(got.strip())
            for got_name, got in headers
        ):
            problems.append(f"no header matches {want!r}")
    return problems + body_mismatches(want_body, body)


def answer_mismatches(kind: str, expected: str, actual: str) -> list[str]:
    if kind == "json":
        return body_mismatches(expected, actual)
    if kind == "http":
        return http_mismatches(expected, actual)
    return text_mismatches(expected, actual)


# -- running the docs ---------------------------------------------------------------------------


def reader_environment(server: Server, db: Path) -> dict[str, str]:
    """What a reader's shell holds after pasting the `export …` lines `serve` printed."""
    env = {name: value for name, value in os.environ.items() if not FOREIGN_SETTINGS.match(name)}
    env.update(EXPORT.findall(server.stdout))
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["TRIGGER_DB"] = str(db)  # where `trigger-api seed` finds the service's store
    return env


def run_blocks(blocks: list[Block], env: dict[str, str], cwd: Path) -> list[str]:
    """Run the runnable blocks as one bash script; return what went wrong, if anything."""
    runnable = [block for block in blocks if block.runnable]
    commands = [command for block in runnable for command in block.commands]
    assert commands, "no runnable shell blocks found"
    script = PREAMBLE + "".join(
        f"{command.text}\nprintf '\\n{STEP_MARK} %d\\n' $?\n" for command in commands
    )
    done = subprocess.run(
        ["bash", "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    pieces = re.split(rf"\n{STEP_MARK} (\d+)\n", done.stdout)
    outputs, statuses = pieces[:-1:2], [int(status) for status in pieces[1::2]]
    if len(statuses) < len(commands):
        stopped = commands[len(statuses)]
        return [f"the script stopped at line {stopped.line} ({stopped.text!r}):\n{pieces[-1]}"]
    problems: list[str] = []
    results = iter(zip(outputs, statuses, strict=True))
    for block in runnable:
        block_output = ""
        for command in block.commands:
            output, status = next(results)
            block_output += output
            where = f"{block.doc} line {command.line}: {command.text}"
            if status != 0:
                problems.append(f"{where}\n  exit status {status}; output:\n{output}")
            if command.expected:
                expected = "\n".join(command.expected)
                kind = "json" if expected[:1] in "{[" else "text"
                for problem in answer_mismatches(kind, expected, output.strip()):
                    problems.append(f"{where}\n  {problem}\n  output: {output.strip()}")
        if block.answer is not None:
            kind, expected = block.answer
            for problem in answer_mismatches(kind, expected, block_output):
                where = f"{block.doc} block at line {block.line}"
                problems.append(f"{where}\n  {problem}\n  output:\n{block_output}")
    return problems


@dataclass
class Live:
    server: Server
    db: Path
    tmp: Path

    def run(self, blocks: list[Block]) -> None:
        problems = run_blocks(blocks, reader_environment(self.server, self.db), self.tmp)
        assert not problems, "\n\n".join(problems)


def live_service(tmp: Path) -> Iterator[Live]:
    db = tmp / "docs.db"
    server = Server(tmp, "--db", str(db))
    try:
        yield Live(server, db, tmp)
    finally:
        server.stop()


# Each doc starts from an empty store, as its reader does: one service each.
@pytest.fixture(scope="module")
def readme_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from live_service(tmp_path_factory.mktemp("readme"))


@pytest.fixture(scope="module")
def walkthrough_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from live_service(tmp_path_factory.mktemp("testing"))


def test_readme_examples_give_the_answers_shown(readme_service: Live) -> None:
    blocks = readme_blocks(readme_service.server.url)
    assert any(not block.runnable for block in blocks)  # the worker that runs forever
    readme_service.run(blocks)


def test_testing_walkthrough_gives_the_answers_shown(walkthrough_service: Live) -> None:
    blocks = walkthrough_blocks(walkthrough_service.server.url)
    assert sum(block.answer is not None for block in blocks if block.runnable) >= 15
    walkthrough_service.run(blocks)


def test_testing_walkthrough_shows_what_serve_prints(walkthrough_service: Live) -> None:
    server = walkthrough_service.server
    (serve,) = [
        block
        for block in walkthrough_blocks(server.url)
        if any("scripts/serve" in command.text for command in block.commands)
    ]
    assert not serve.runnable
    assert serve.answer is not None
    printed = server.stdout + server.stdout_path.with_suffix(".err").read_text()
    assert text_mismatches(serve.answer[1], printed) == []


def test_placeholders_stand_only_for_generated_values() -> None:
    shown = '{"id": "evt_…", "created_at": …, "status": "undelivered", "payload": {…}}'
    actual = {"id": "evt_01", "created_at": 1, "status": "undelivered", "payload": {"a": [1]}}

    assert body_mismatches(shown, json.dumps(actual)) == []
    assert body_mismatches(shown, json.dumps({**actual, "id": "tk_01"}))
    assert body_mismatches(shown, json.dumps({**actual, "status": "delivered"}))
    assert body_mismatches(shown, json.dumps({**actual, "extra": None}))
    assert body_mismatches('{"events": [{"n": 1}, …]}', '{"events": []}')
    assert http_mismatches("HTTP/1.1 204 No Content\n", "HTTP/1.1 200 OK\r\n\r\n{}")
    assert text_mismatches('level=info msg="worker stopped" exit_status=0', "exit_status=1")
